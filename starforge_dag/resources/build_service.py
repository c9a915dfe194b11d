"""The BuildService port: every backend (Depot, BuildKit, fake) builds and pushes through it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import dagster as dg

from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine

LogSink = Callable[[ProgressLine], None]
CancelCheck = Callable[[], bool]


def _never() -> bool:
    return False


class BuildService(dg.ConfigurableResource, ABC):
    """Port: submit a spec, run it to the end while streaming progress, cancel it.

    Adapters raise the classified errors of `core.errors`: TransientBuildError (retry may
    help), UserBuildError (the app's Dockerfile/plan is wrong; message names the failing
    step), PermanentBuildError, BuildCanceled (after `should_cancel` turned true).
    """

    @abstractmethod
    def submit(self, spec: BuildSpec) -> BuildTicket:
        """Validate the spec and reserve the build with the backend; no build work yet."""

    @abstractmethod
    def run(self, ticket: BuildTicket, on_progress: LogSink, should_cancel: CancelCheck = _never) -> BuildResult:
        """Build and push; call on_progress for each line in order; return the pushed image."""

    @abstractmethod
    def cancel(self, ticket: BuildTicket) -> None:
        """Best-effort stop of a build started elsewhere (another process may be running it)."""
