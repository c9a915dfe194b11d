"""Fix-ups of the finished plan of a Node app."""

from __future__ import annotations

import re

from starforge_dag.railpack.plan import BuildPlan

NODE_MODULES_CACHE = "/app/node_modules/.cache"
_NPM_CI = re.compile(r"(?i)\bnpm\s+ci\b")
_RM_NODE_MODULES = re.compile(r"(?i)\b(?:rm\s+-r[f]?|rmdir|rimraf)\s+(?:\S*/)?node_modules\b")


def cleanse_plan(plan: BuildPlan) -> None:
    """A step after install that deletes node_modules cannot have a cache mounted inside it."""
    key = next((k for k, c in plan.caches.items() if c.directory == NODE_MODULES_CACHE), None)
    if key is None:
        return
    for step in plan.steps:
        if step.name == "install":
            continue
        if any(_NPM_CI.search(c) or _RM_NODE_MODULES.search(c) for c in step.exec_commands()):
            step.caches = [c for c in step.caches if c and c != key]
