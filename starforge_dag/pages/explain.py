"""The explanation of a stored build: its record, transitions and log tail read, then `core.explain` applied."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.explain import TAIL_LINES, Explanation, FailureFacts, explain
from ..core.models import Build, LogLine, Transition
from ..core.states import BuildState
from ..logs.base import LogStoreBackend
from ..logs.masking import Masker
from ..store import BuildStore
from ..variables.crypto import SecretBox
from .ansi import plain


def read_tail(logs: LogStoreBackend, build_id: int, lines: int = TAIL_LINES) -> list[LogLine]:
    """The last `lines` stored lines of a build, oldest first."""
    last = logs.last_seq(build_id)
    if last < 0:
        return []
    return logs.read(build_id, after_seq=max(-1, last - lines), limit=lines)


def facts_of(
    build: Build,
    transitions: Sequence[Transition],
    tail: Sequence[LogLine],
    network: str | None = None,
    masker: Masker | None = None,
) -> FailureFacts:
    """Colours are dropped before the rules read a line (`\\x1b[31mnpm ERR!` is still npm's error), and secrets
    masked, so no title, hint or line quotes one."""
    mask = masker.mask if masker else (lambda text: text)
    return FailureFacts(
        state=build.status,
        error=mask(build.error) if build.error else build.error,
        error_step=build.error_step,
        transitions=tuple(transitions),
        log=tuple(line.model_copy(update={"text": mask(plain(line.text))}) for line in tail),
        network=network,
    )


def explain_build(
    store: BuildStore,
    logs: LogStoreBackend,
    build_id: int,
    network: str | None = None,
    masker: Masker | None = None,
) -> Explanation | None:
    """None for a build that succeeded or has not ended; the log is read only for one that ended otherwise."""
    build = store.get_build(build_id)
    if not build.status.terminal or build.status == BuildState.SUCCEEDED:
        return None
    return explain(facts_of(build, store.transitions(build_id), read_tail(logs, build_id), network, masker))


def build_masker(store: BuildStore, build_id: int, box: SecretBox) -> Masker:
    """Masks the secret values the build was queued with (SecretsKeyError when they cannot be opened)."""
    return Masker(v.value.get_secret_value() for v in store.build_variables(build_id, box) if v.secret)
