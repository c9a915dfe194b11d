"""Error taxonomy: retries and user-facing messages depend on the kind, never on the type name."""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    TRANSIENT = "transient"  # infrastructure hiccup: retrying may succeed
    PERMANENT = "permanent"  # our side is broken or misconfigured: retrying will not help
    USER = "user"  # the app's source or config is wrong: the user must change something


class BuildError(Exception):
    """A build failed; `kind` decides retry policy and `step` names where."""

    kind: ErrorKind = ErrorKind.PERMANENT

    def __init__(self, message: str, *, step: str | None = None, kind: ErrorKind | None = None):
        super().__init__(message)
        self.message = message
        self.step = step
        if kind is not None:
            self.kind = kind

    def __str__(self) -> str:
        return f"{self.message} (step: {self.step})" if self.step else self.message

    def __reduce__(self):
        return (_rebuild_error, (type(self), self.message, self.step, self.kind))


def _rebuild_error(cls, message, step, kind):
    return cls(message, step=step, kind=kind)


class TransientBuildError(BuildError):
    kind = ErrorKind.TRANSIENT


class PermanentBuildError(BuildError):
    kind = ErrorKind.PERMANENT


class UserBuildError(BuildError):
    kind = ErrorKind.USER


class BuildCanceled(BuildError):
    """The build was canceled while the backend was working on it."""

    kind = ErrorKind.PERMANENT


class IllegalTransition(Exception):
    """A build state change that the state machine forbids."""
