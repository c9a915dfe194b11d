"""The `starforge` command: API server, apps, builds, logs, status, planning and the demo."""

from __future__ import annotations

import click

from . import apps, build_dir, builds, desired, github, plan, serve, tools, vars


@click.group()
def main() -> None:
    """Starforge: git push → pushed, verified image → desired state."""


for command in (
    serve.api,
    apps.apps,
    builds.build,
    builds.logs,
    builds.status,
    desired.rollback,
    desired.pin,
    desired.unpin,
    desired.desired_state_command,
    desired.gc,
    build_dir.build_dir_cli,
    plan.plan,
    tools.demo,
    tools.depot_emulator,
    serve.up,
    serve.worker,
    github.github,
    serve.dagster_home,
    vars.vars_group,
    vars.secrets_group,
):
    main.add_command(command)
