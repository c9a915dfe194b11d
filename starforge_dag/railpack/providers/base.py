"""What every language provider is: detected, initialized, planned into the shared context, its plan cleansed."""

from __future__ import annotations

from typing import Protocol

from starforge_dag.railpack.context import GenerateContext
from starforge_dag.railpack.plan import BuildPlan


class Provider(Protocol):
    """A language provider: the first one whose `detect` is true plans the app."""

    name: str
    looked_for: str

    def detect(self, ctx: GenerateContext) -> bool:
        """True when the app is of this provider's language."""
        ...

    def initialize(self, ctx: GenerateContext) -> None:
        """Read what planning needs once the provider is chosen."""
        ...

    def plan(self, ctx: GenerateContext) -> None:
        """Add the steps that install, build and start the app."""
        ...

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """Fix up the finished plan (after the user's config is applied)."""
        ...

    def start_command_help(self) -> str:
        """How a user of this language sets a start command when none is found."""
        ...


class BaseProvider:
    """Defaults for the optional parts of a provider."""

    name = ""
    looked_for = ""

    def initialize(self, ctx: GenerateContext) -> None:
        """Nothing to read ahead."""

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """Nothing to fix up."""

    def start_command_help(self) -> str:
        """No provider-specific help."""
        return ""
