"""Classified build errors become Dagster failures: retried when transient, else the build ends with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import dagster as dg

from ..core.errors import BuildCanceled, BuildError, ErrorKind
from ..core.states import BuildState
from ..resources.build_store import BuildStoreResource
from ..store.retry import is_connectivity_error
from .phases import STOPPED, actor, db, stop_run

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextmanager
def failing_build(context: dg.OpExecutionContext, store: BuildStoreResource, build_id: int) -> Iterator[None]:
    """Turn classified errors into Dagster failures, ending the build unless a retry will follow."""
    try:
        yield
    except BuildError as exc:
        _build_error(context, store, build_id, exc)
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


def _build_error(context: dg.OpExecutionContext, store: BuildStoreResource, build_id: int, exc: BuildError) -> NoReturn:
    who, run_id, step = actor(context), context.run_id, context.op.name
    retry = exc.kind == ErrorKind.TRANSIENT and context.retry_number < TRANSIENT_RETRY.max_retries
    if not retry:
        state = BuildState.CANCELED if isinstance(exc, BuildCanceled) else BuildState.FAILED
        message, where = masked(store, build_id, str(exc.message)), exc.step or step
        ended = db(
            store, lambda s: s.finish(build_id, state, message, who, run_id=run_id, error_step=where), "end build"
        )
        final = ended or db(store, lambda s: s.get_build(build_id), "load build")
        if final.status in STOPPED:
            stop_run(context, build_id, final.status, final.error)
    raise dg.Failure(
        description=f"{exc.kind.value} error in {exc.step or step}: {masked(store, build_id, str(exc.message))}",
        metadata={"build_id": build_id, "error_kind": exc.kind.value, "step": exc.step or step},
        allow_retries=retry,
    ) from None


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
