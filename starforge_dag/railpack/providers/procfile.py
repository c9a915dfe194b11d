"""The Procfile: not a provider of its own, it only sets the start command of whatever else planned the app."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext


def plan_procfile(ctx: GenerateContext) -> None:
    """The web process, else the worker, else the first process with a command."""
    if not ctx.source.has_file("Procfile"):
        return
    data = ctx.source.read_yaml("Procfile")
    if not isinstance(data, dict):
        ctx.warn("Procfile could not be parsed; it is ignored")
        return
    processes = {str(k): str(v) for k, v in data.items() if v is not None}
    command = processes.get("web") or processes.get("worker") or next((v for v in processes.values() if v), "")
    if command:
        ctx.deploy.start_command = command
