"""The builder port: BuildKit, Depot and the fake build through it, inside Dagster and in `starforge build-dir`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine

ProgressSink = Callable[[ProgressLine], None]
CancelCheck = Callable[[], bool]


def never() -> bool:
    """The cancel check of a build nobody stops."""
    return False


class Builder(Protocol):
    """Submit a spec, then run it to the end while streaming progress.

    Builders raise the classified errors of `core.errors`: TransientBuildError (retry may help),
    UserBuildError (the app's Dockerfile or plan is wrong; the message names the failing step),
    PermanentBuildError, BuildCanceled (after `should_cancel` turned true).
    """

    def submit(self, spec: BuildSpec) -> BuildTicket:
        """Validate the spec and reserve the build with the backend; no build work yet."""
        ...

    def run(
        self,
        ticket: BuildTicket,
        on_progress: ProgressSink,
        should_cancel: CancelCheck = never,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Build and push; call on_progress for each line in order; return the pushed image.

        `secrets` are the values of the spec's secret names for this build only (never part of the ticket, which
        Dagster stores); a name missing from them falls back to the builder's own lookup.
        """
        ...
