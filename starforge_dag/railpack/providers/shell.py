"""Apps started by a shell script, run with the interpreter its shebang names."""

from __future__ import annotations

from starforge_dag.railpack.providers.base import Context, ProviderPlan, build_layer, sh

DEFAULT_SCRIPT = "start.sh"
SUPPORTED_SHELLS = {"bash": "bash", "sh": "sh", "dash": "sh", "zsh": "zsh"}


class ShellProvider:
    """Apps with start.sh or RAILPACK_SHELL_SCRIPT."""

    name = "shell"

    def detect(self, ctx: Context) -> bool:
        """The script exists."""
        return ctx.app.has_file(_script(ctx))

    def start_command_help(self) -> str:
        """Shell apps start from their script."""
        return "add a start.sh or set RAILPACK_SHELL_SCRIPT"

    def plan(self, ctx: Context) -> ProviderPlan:
        """Make the script executable and run it with its shell."""
        script = _script(ctx)
        shell = _interpreter(ctx.app.read_text(script) or "")
        ctx.metadata["shell"] = shell
        plan = ProviderPlan()
        if shell == "zsh":
            plan.build_apt = ["zsh"]
            plan.deploy_apt = ["zsh"]
        plan.build = [sh(f"chmod +x {script}")]
        plan.start_command = f"{shell} {script}"
        plan.deploy_inputs = [build_layer(".")]
        return plan


def _script(ctx: Context) -> str:
    return (ctx.env.railpack("SHELL_SCRIPT") or DEFAULT_SCRIPT).lstrip("./") or DEFAULT_SCRIPT


def _interpreter(text: str) -> str:
    """The shell named by the shebang; sh without one, bash for shells that cannot be installed."""
    first = text.splitlines()[0] if text else ""
    if not first.startswith("#!"):
        return "sh"
    words = first[2:].split()
    if not words:
        return "sh"
    name = words[0].rsplit("/", 1)[-1]
    if name == "env" and len(words) > 1:
        name = words[1]
    return SUPPORTED_SHELLS.get(name, "bash")
