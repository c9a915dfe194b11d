"""Apps started by a shell script (start.sh or RAILPACK_SHELL_SCRIPT)."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext, local_layer, run, step_layer
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider

START_SCRIPT = "start.sh"
SHELLS = {"bash": "bash", "zsh": "zsh", "sh": "sh", "dash": "sh", "mksh": "bash", "ksh": "bash", "fish": "bash"}


def script_name(ctx: GenerateContext) -> str | None:
    """The start script, when it exists."""
    name = ctx.env.railpack("SHELL_SCRIPT") or START_SCRIPT
    return name if ctx.source.exists(name) else None


def interpreter(ctx: GenerateContext, script: str) -> str:
    """The shell the shebang names, mapped to one the runtime image has."""
    first = (ctx.source.read_text(script) or "").split("\n", 1)[0]
    if not first.startswith("#!"):
        return "sh"
    words = first[2:].split()
    if not words:
        return "sh"
    shell = words[1] if words[0].endswith("/env") and len(words) > 1 else words[0].rsplit("/", 1)[-1]
    if shell not in SHELLS:
        ctx.warn(f"Unknown shell {shell!r}; using sh")
        return "sh"
    if SHELLS[shell] != shell and shell != "dash":
        ctx.warn(f"Shell {shell!r} is not in the runtime image; using bash")
    return SHELLS[shell]


class ShellProvider(BaseProvider):
    """Runs a shell script."""

    name = "shell"
    looked_for = "start.sh (or RAILPACK_SHELL_SCRIPT)"

    def detect(self, ctx: GenerateContext) -> bool:
        """The start script exists."""
        return script_name(ctx) is not None

    def plan(self, ctx: GenerateContext) -> None:
        """Make the script executable and start it with its interpreter."""
        script = script_name(ctx) or START_SCRIPT
        shell = interpreter(ctx, script)
        ctx.deploy.start_command = f"{shell} {script}"
        ctx.set_metadata("detectedShellInterpreter", shell)
        if shell == "zsh":
            ctx.deploy.apt_packages.append("zsh")
        mise = ctx.mise
        base = Layer(step=mise.name)
        if "install" in ctx.config.steps:
            install = ctx.new_command_step("install")
            install.add_input(Layer(step=mise.name))
            install.add_input(local_layer())
            base = Layer(step=install.name)
        build = ctx.new_command_step("build")
        build.add_input(base)
        build.add_input(local_layer())
        build.add(run(f"chmod +x {script}"))
        ctx.deploy.inputs += [mise.layer(), step_layer(build.name, include=["."])]
