"""`starforge plan DIR`: print the build plan (or the info object) as JSON."""

from __future__ import annotations

import json
import sys

from starforge_dag.railpack.generate import PlanError, generate_plan
from starforge_dag.settings import railpack_environ


def plan_command(dir: str, info: bool, env: dict[str, str] | None = None) -> int:
    """Print the plan (or info) for DIR on stdout; on failure print why on stderr and return 1.

    With `env=None` only the process's RAILPACK_* options are used, so the shell's own
    variables (PATH, HOME, ...) do not turn into build secrets.
    """
    if env is None:
        env = railpack_environ()
    try:
        result = generate_plan(dir, env=env)
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
