"""A Railpack-compatible planner: detect an app's language and framework, emit a Railpack build plan, render it as BuildKit LLB or a Dockerfile."""

from starforge_dag.railpack.generate import PlanError, PlanResult, generate_plan
from starforge_dag.railpack.plan import BuildPlan

__all__ = ["BuildPlan", "PlanError", "PlanResult", "generate_plan"]
