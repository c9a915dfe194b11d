"""`starforge plan DIR`: print the build plan (or the info object) as JSON."""

from __future__ import annotations

import json
import sys

import click


def plan_command(dir: str, info: bool, env: dict[str, str] | None = None) -> int:
    """Print the plan (or info) for DIR on stdout; on failure print why on stderr and return 1.

    `env` holds the build's variables; the process's RAILPACK_* options are platform defaults under them, and the
    shell's other variables (PATH, HOME, ...) never turn into build secrets.
    """
    from ..railpack.generate import PlanError, generate_plan
    from ..settings import railpack_environ

    try:
        result = generate_plan(dir, env=env or {}, platform_options=railpack_environ())
    except PlanError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    if info:
        print(json.dumps(result.info, indent=2))
    else:
        print(result.plan.to_json())
    for warning in result.info["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--info", is_flag=True, help="Print what was detected instead of the plan.")
@click.option(
    "--env",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="A build variable (repeatable); RAILPACK_* options are also read from the environment.",
)
def plan(directory: str, info: bool, variables: tuple[str, ...]) -> None:
    """Print the Railpack build plan of DIRECTORY as JSON."""
    env: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--env")
        env[key] = value
    sys.exit(plan_command(directory, info, env))
