"""`python -m starforge_dag.railpack DIR [--info] [--env KEY=VALUE ...]`."""

from __future__ import annotations

import argparse
import sys

from starforge_dag.railpack.cli import plan_command
from starforge_dag.settings import railpack_environ


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run plan_command with the RAILPACK_* environment plus --env values."""
    parser = argparse.ArgumentParser(
        prog="python -m starforge_dag.railpack", description="Print the Railpack build plan for an app directory."
    )
    parser.add_argument("dir", help="the app's source directory")
    parser.add_argument(
        "--info", action="store_true", help="print detected providers, versions and warnings instead of the plan"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a build variable (repeatable); RAILPACK_* options are also read from the environment",
    )
    args = parser.parse_args(argv)
    env = railpack_environ()
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return plan_command(args.dir, args.info, env)


if __name__ == "__main__":
    sys.exit(main())
