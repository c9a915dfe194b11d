"""GitHub deployments of desired-state changes: which environment a change is for and what GitHub is told.

Every change of an environment's desired state becomes one GitHub deployment of its commit, reported
`in_progress` and then `success` (desired state points at the build's pushed image) or `failure` (the image
was deleted before the deployment was reported); the deployment it replaced, and a closed preview's last
one, become `inactive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRODUCTION = "production"
TEARDOWN_REASONS: frozenset[str] = frozenset({"preview_closed"})
MAX_DESCRIPTION = 140

# The steps of one outbox row, in order; a row is done after its last.
CREATE, IN_PROGRESS, FINAL, INACTIVATE = "create", "in_progress", "final", "inactivate"
CHANGE_STEPS = (CREATE, IN_PROGRESS, FINAL, INACTIVATE)
TEARDOWN_STEPS = (INACTIVATE,)


def environment_of(change: object) -> str:
    """The environment a desired-state change is for: its `environment` when it has one, else production."""
    value = getattr(change, "environment", None)
    return value if isinstance(value, str) and value else PRODUCTION


def is_teardown(reason: str) -> bool:
    return reason in TEARDOWN_REASONS


def steps_of(reason: str) -> tuple[str, ...]:
    return TEARDOWN_STEPS if is_teardown(reason) else CHANGE_STEPS


def next_step(reason: str, step: str) -> str | None:
    """The step after `step`, or None when the row is done."""
    steps = steps_of(reason)
    at = steps.index(step)
    return steps[at + 1] if at + 1 < len(steps) else None


@dataclass(frozen=True)
class Change:
    """What a deployment reports: one desired-state change of an app's environment."""

    workspace: str
    app: str
    environment: str
    revision: int
    build_id: int | None  # none for a teardown
    commit_sha: str
    reason: str


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def deployment_request(change: Change) -> dict[str, Any]:
    """The body of `POST /repos/{owner}/{repo}/deployments` for a change."""
    preview = change.environment != PRODUCTION
    return {
        "ref": change.commit_sha,
        "task": "deploy",
        "auto_merge": False,
        "required_contexts": [],
        "environment": change.environment,
        "description": _cut(f"{change.workspace}/{change.app}: {change.reason} to build {change.build_id}"),
        "transient_environment": preview,
        "production_environment": not preview,
        "payload": {
            "starforge": {
                "workspace": change.workspace,
                "app": change.app,
                "revision": change.revision,
                "build_id": change.build_id,
                "reason": change.reason,
            }
        },
    }


def is_deployment_of(deployment: Any, change: Change) -> bool:
    """Whether a deployment GitHub lists is the one created for this change (an earlier attempt whose answer
    was lost)."""
    if not isinstance(deployment, dict) or not isinstance(deployment.get("id"), int):
        return False
    payload = deployment.get("payload")
    ours = payload.get("starforge") if isinstance(payload, dict) else None
    return (
        isinstance(ours, dict)
        and deployment.get("environment") == change.environment
        and ours.get("workspace") == change.workspace
        and ours.get("app") == change.app
        and ours.get("revision") == change.revision
    )


def status_of(step: str, change: Change, *, image_kept: bool = True) -> tuple[str, str]:
    """(deployment status state, description) a step reports."""
    if step == IN_PROGRESS:
        return "in_progress", _cut(
            f"Moving {change.environment} of {change.workspace}/{change.app} to build {change.build_id}"
        )
    if step == FINAL:
        if not image_kept:
            return "failure", _cut(f"The image of build {change.build_id} was deleted before it was deployed")
        return "success", _cut(f"{change.environment} of {change.workspace}/{change.app} runs build {change.build_id}")
    if step == INACTIVATE:
        if is_teardown(change.reason):
            return "inactive", _cut(f"Preview {change.environment} closed")
        return "inactive", _cut(f"Replaced by build {change.build_id}")
    raise ValueError(f"step {step!r} reports no deployment status")
