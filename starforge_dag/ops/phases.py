"""The build record follows its run: each op enters a phase, and a stopped build ends the run as canceled."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import dagster as dg

from ..core.errors import IllegalTransition
from ..core.models import Build
from ..core.states import BuildState
from ..resources.build_store import BuildStoreResource
from ..store import BuildStore
from ..store.retry import Backoff, is_connectivity_error

T = TypeVar("T")
DB_RETRY = Backoff(first_s=0.1, max_s=2.0, deadline_s=120.0, jitter=0.2)
STOPPED = (BuildState.CANCELED, BuildState.SUPERSEDED)


def actor(context: dg.OpExecutionContext) -> str:
    return f"run:{context.run_id[:8]}/{context.op.name}"


def db(store: BuildStoreResource, call: Callable[[BuildStore], T], what: str) -> T:
    """A build store call that waits out a database blip (bounded) instead of failing the build."""
    return DB_RETRY.call(lambda: call(store.store()), retry_if=is_connectivity_error, what=what)


def stop_run(context: dg.OpExecutionContext, build_id: int, state: BuildState, why: str | None) -> NoReturn:
    """The build was canceled or superseded: end this run as canceled, not as a failure."""
    message = f"build {build_id} was {state.value}: {why or 'stopped on request'}"
    context.instance.report_run_canceling(context.dagster_run, message=message)
    raise dg.Failure(message, allow_retries=False)


def advance(
    context: dg.OpExecutionContext, store: BuildStoreResource, build_id: int, to: BuildState, reason: str
) -> Build:
    """Enter a phase; a re-executed run (it has a parent) may resume a failed build."""
    who, run_id = actor(context), context.run_id
    cancel = db(store, lambda s: s.cancel_state(build_id), "cancel check")
    if cancel is not None:
        ended = db(store, lambda s: s.finish(build_id, cancel, "stopped on request", who, run_id=run_id), "stop")
        stop_run(context, build_id, cancel, ended.error if ended else None)
    try:
        return db(
            store,
            lambda s: s.transition(
                build_id, to, reason, who, run_id=run_id, resume=context.run.parent_run_id is not None
            ),
            f"enter {to.value}",
        )
    except IllegalTransition as exc:
        build = db(store, lambda s: s.get_build(build_id), "load build")
        if build.status in STOPPED:
            stop_run(context, build_id, build.status, build.error)
        raise dg.Failure(f"build {build_id}: {exc}", allow_retries=False) from None
