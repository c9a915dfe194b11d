"""Notifications a workspace's own systems subscribe to: which change is which event, what its message says,
and what a failed delivery leads to (retry later, or disable the endpoint). Facts in, decisions out, no I/O."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .models import Build, DesiredChange
from .states import WORKING, BuildState

BUILD_QUEUED = "build.queued"
BUILD_STARTED = "build.started"
BUILD_SUCCEEDED = "build.succeeded"
BUILD_FAILED = "build.failed"
BUILD_CANCELED = "build.canceled"
DESIRED_STATE_CHANGED = "desired_state.changed"
EVENTS = (BUILD_QUEUED, BUILD_STARTED, BUILD_SUCCEEDED, BUILD_FAILED, BUILD_CANCELED, DESIRED_STATE_CHANGED)

_ENDED: dict[BuildState, str] = {
    BuildState.SUCCEEDED: BUILD_SUCCEEDED,
    BuildState.FAILED: BUILD_FAILED,
    BuildState.TIMED_OUT: BUILD_FAILED,
    BuildState.CHECKS_FAILED: BUILD_FAILED,
    BuildState.CANCELED: BUILD_CANCELED,
    BuildState.SUPERSEDED: BUILD_CANCELED,
}


def build_event(current: BuildState | None, to: BuildState) -> str | None:
    """The event a build transition is, if any: phases between the first and the end are not events."""
    if to == BuildState.QUEUED:
        return BUILD_QUEUED
    if to in WORKING and (current is None or current == BuildState.QUEUED or current.terminal):
        return BUILD_STARTED  # a re-execution resuming a failed build starts it again
    return _ENDED.get(to)


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_data(build: Build, reason: str) -> dict[str, Any]:
    """What a build event says, as the build was in the transition's own transaction."""
    return {
        "build_id": build.id,
        "app": f"{build.workspace}/{build.app}",
        "workspace": build.workspace,
        "ref": build.ref,
        "commit_sha": build.commit_sha,
        "status": build.status.value,
        "trigger": build.trigger.value,
        "reason": reason,
        "error": build.error,
        "error_step": build.error_step,
        "image_ref": build.image_ref,
        "image_digest": build.image_digest,
        "created_at": _at(build.created_at),
        "updated_at": _at(build.updated_at),
    }


def desired_data(change: DesiredChange) -> dict[str, Any]:
    """What a desired-state event says: the feed entry, as the deployer reads it."""
    return {
        "revision": change.revision,
        "app": f"{change.workspace}/{change.app}",
        "workspace": change.workspace,
        "environment": change.environment,
        "build_id": change.build_id,
        "image": change.pinned_image,
        "image_ref": change.image_ref,
        "image_digest": change.image_digest,
        "commit_sha": change.commit_sha,
        "reason": change.reason,
        "note": change.note,
        "actor": change.actor,
        "pinned": change.pinned,
    }


def message_body(
    event: str, occurred_at: datetime, data: dict[str, Any], page_url: str | None, explanation: Any
) -> str:
    """The signed body, in the Standard Webhooks shape (type, timestamp, data); made once, sent as is on retries."""
    full = {**data, "page_url": page_url, "explanation": explanation}
    return json.dumps(
        {"type": event, "timestamp": occurred_at.isoformat(), "data": full}, separators=(",", ":"), ensure_ascii=False
    )


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard an endpoint is tried: per-request deadline, backoff, and when it is disabled."""

    timeout_s: float = 15.0
    first_backoff_s: float = 5.0
    max_backoff_s: float = 3600.0
    give_up_after: timedelta = timedelta(hours=24)
    max_consecutive_failures: int = 40


@dataclass(frozen=True)
class Retry:
    at: datetime


@dataclass(frozen=True)
class Disable:
    reason: str


def backoff_s(policy: DeliveryPolicy, failures: int, rng: random.Random | None = None) -> float:
    """Exponential with jitter, capped: first, 2×first, 4×first … up to max_backoff_s."""
    base = min(policy.first_backoff_s * 2.0 ** max(failures - 1, 0), policy.max_backoff_s)
    return (rng or random).uniform(base / 2, base)


def after_failure(
    policy: DeliveryPolicy,
    failures: int,
    failing_since: datetime,
    now: datetime,
    error: str,
    rng: random.Random | None = None,
) -> Retry | Disable:
    """`failures` in a row (this one counted), the first at `failing_since`: try again later, or give up on the
    endpoint once it failed for give_up_after or max_consecutive_failures times running."""
    span = now - failing_since
    if span >= policy.give_up_after or failures >= policy.max_consecutive_failures:
        hours = span.total_seconds() / 3600
        return Disable(f"disabled after {failures} failed deliveries in a row over {hours:.1f} h; last: {error}"[:2000])
    return Retry(now + timedelta(seconds=backoff_s(policy, failures, rng)))
