"""`python -m starforge_dag.railpack DIR [--info]`."""

from __future__ import annotations

import argparse
import sys

from starforge_dag.railpack.cli import plan_command


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run plan_command with the process environment."""
    parser = argparse.ArgumentParser(prog="python -m starforge_dag.railpack", description="Print the Railpack build plan for an app directory.")
    parser.add_argument("dir", help="the app's source directory")
    parser.add_argument("--info", action="store_true", help="print detected providers, versions and warnings instead of the plan")
    args = parser.parse_args(argv)
    return plan_command(args.dir, args.info, None)


if __name__ == "__main__":
    sys.exit(main())
