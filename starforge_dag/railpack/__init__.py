"""A Railpack-compatible planner: detect an app's language and framework, emit a Railpack build plan, render it as BuildKit LLB or a Dockerfile."""

from starforge_dag.railpack.config import railpack_options
from starforge_dag.railpack.generate import PlanError, PlanResult, generate_plan
from starforge_dag.railpack.plan import BuildPlan
from starforge_dag.railpack.resolver import OfflineVersionResolver, VersionResolver

__all__ = [
    "BuildPlan",
    "OfflineVersionResolver",
    "PlanError",
    "PlanResult",
    "VersionResolver",
    "generate_plan",
    "railpack_options",
]
