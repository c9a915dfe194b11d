"""Classified build errors become Dagster failures: retried when transient, else the build ends with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import dagster as dg

from ..core.errors import BuildCanceled, BuildError, ErrorKind
from ..core.explain import Explanation, FailureFacts, explain
from ..core.models import LogLine
from ..core.states import BuildState
from ..pages.ansi import plain
from ..pages.explain import read_tail
from ..resources.build_store import BuildStoreResource
from ..resources.log_store import LogStoreResource
from ..store.retry import is_connectivity_error
from .phases import STOPPED, actor, db, stop_run

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextmanager
def failing_build(
    context: dg.OpExecutionContext,
    store: BuildStoreResource,
    build_id: int,
    log_store: LogStoreResource | None = None,
) -> Iterator[None]:
    """Turn classified errors into Dagster failures, ending the build unless a retry will follow; the failure's
    metadata explains it (from the build's log too, given the log store)."""
    try:
        yield
    except BuildError as exc:
        _build_error(context, store, build_id, exc, log_store)
    except dg.Failure:
        raise  # already explained (e.g. the build was canceled between phases)
    except Exception as exc:
        _unclassified(context, store, build_id, exc)


def masked(store: BuildStoreResource, build_id: int, text: str) -> str:
    """An error text with the build's secret values masked, before the build record or Dagster's log keeps it.

    When the secrets cannot be read to mask it, the text is withheld rather than risked.
    """
    try:
        return store.build_variables(build_id).masker().mask(text)
    except Exception as exc:
        return f"(message withheld: the build's secrets could not be read to mask it: {type(exc).__name__})"


def _build_error(
    context: dg.OpExecutionContext,
    store: BuildStoreResource,
    build_id: int,
    exc: BuildError,
    log_store: LogStoreResource | None,
) -> NoReturn:
    who, run_id, step = actor(context), context.run_id, context.op.name
    text = masked(store, build_id, str(exc.message))
    retry = exc.kind == ErrorKind.TRANSIENT and context.retry_number < TRANSIENT_RETRY.max_retries
    state = BuildState.CANCELED if isinstance(exc, BuildCanceled) else BuildState.FAILED
    if not retry:
        message, where = text, exc.step or step
        ended = db(
            store, lambda s: s.finish(build_id, state, message, who, run_id=run_id, error_step=where), "end build"
        )
        final = ended or db(store, lambda s: s.get_build(build_id), "load build")
        if final.status in STOPPED:
            stop_run(context, build_id, final.status, final.error)
    facts = FailureFacts(state, text, exc.step or step, exc.kind.value, log=_tail(log_store, build_id))
    raise dg.Failure(
        description=f"{exc.kind.value} error in {exc.step or step}: {text}",
        metadata={
            "build_id": build_id,
            "error_kind": exc.kind.value,
            "step": exc.step or step,
            **_explanation_metadata(explain(facts)),
        },
        allow_retries=retry,
    ) from None


def _tail(log_store: LogStoreResource | None, build_id: int) -> list[LogLine]:
    """The log's last lines, colours dropped; none when the log store cannot be read (the failure still ends)."""
    if log_store is None:
        return []
    try:
        with log_store.open() as logs:
            return [line.model_copy(update={"text": plain(line.text)}) for line in read_tail(logs, build_id)]
    except Exception:
        return []


def _explanation_metadata(found: Explanation | None) -> dict[str, str]:
    if found is None:
        return {}
    metadata = {"explanation": found.title, "hint": found.hint, "failure_class": found.cls.value}
    if found.line:
        metadata["log_line"] = found.line if found.line_no is None else f"{found.line_no + 1}: {found.line}"
    return metadata


def _unclassified(context: dg.OpExecutionContext, store: BuildStoreResource, build_id: int, exc: Exception) -> NoReturn:
    who, run_id, step = actor(context), context.run_id, context.op.name
    if is_connectivity_error(exc):
        # The database stayed away past the retry budget: transient, so the op's retry policy may try again.
        retry = context.retry_number < TRANSIENT_RETRY.max_retries
        message = f"database unreachable: {type(exc).__name__}"
    else:
        # Unclassified means a bug, not a flaky dependency: fail now, never retry.
        retry, message = False, masked(store, build_id, f"unexpected {type(exc).__name__}: {exc}")
    if not retry:
        db(
            store,
            lambda s: s.finish(build_id, BuildState.FAILED, message, who, run_id=run_id, error_step=step),
            "end build",
        )
    raise dg.Failure(description=message, metadata={"build_id": build_id, "step": step}, allow_retries=retry) from None
