"""GitHub deployments: the sender that drains the deployment outbox, step by step and in order per environment.

Rows are written in the transaction of the desired-state change they report. Per app and environment only the
oldest unsent row is worked on, so GitHub sees the changes in the order they were made: its deployment is
created (an earlier attempt whose answer was lost is found by its payload instead of created twice), reported
`in_progress`, then `success` or `failure`, and then the deployment it replaced is set `inactive` (GitHub's
`auto_inactive` leaves production and transient environments alone). A teardown only sets the environment's
last deployment `inactive`. Each step done is stored, so a retry resumes where GitHub stopped answering.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from starforge_dag.core.deployments import (
    CREATE,
    FINAL,
    INACTIVATE,
    deployment_request,
    is_deployment_of,
    next_step,
    status_of,
)
from starforge_dag.store.deployments import DeploymentRow, DeploymentStore

from .app import GitHubApp, GitHubAppError
from .statuses import SendReport, StatusStyle, failure_outcome, routes_of, tally, target_url


def page_url(style: StatusStyle, build_id: int, now: datetime) -> str | None:
    """The build's page (a signed link when the style signs them), else its Dagster-less public page, else none."""
    if style.links is not None and style.links.base_url:
        return style.links.url(build_id, now)
    return target_url(build_id, None, style.public_url, None)


def send_deployments(
    outbox: DeploymentStore,
    app: GitHubApp,
    style: StatusStyle,
    now: Callable[[], datetime],
    *,
    limit: int = 1000,
    workers: int = 8,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> SendReport:
    """One pass: the oldest unsent row of each app's environment, once due, taken through its remaining steps.

    No call to GitHub starts once `clock()` reaches `deadline`; what is left stays unsent for the next pass.
    """
    report = SendReport()
    heads: dict[tuple[int, str], DeploymentRow] = {}
    for row in outbox.unsent(limit):  # oldest first
        heads.setdefault(row.key, row)
    moment = now()
    due = [row for row in heads.values() if row.next_attempt_at <= moment]
    report.deferred = len(heads) - len(due)
    routes = routes_of(outbox, [row.repo_id for row in due])
    blocked: dict[int, float] = {}  # installations rate limited in this pass: seconds GitHub asked to wait

    def send(row: DeploymentRow) -> str:
        installation_id, full_name = routes[row.repo_id] or (None, "")
        if installation_id is None:
            outbox.mark(row.id, "dropped", "the App is not installed for this repository")
            return "given_up"
        step: str | None = row.step
        deployment_id = row.deployment_id
        retrying = row.attempts > 0  # the step this row is at may have taken effect, its answer lost
        try:
            while step is not None:
                if clock() >= deadline:
                    return "left"
                if installation_id in blocked:
                    wait = blocked[installation_id]
                    outbox.retry_later(
                        row.id, now() + timedelta(seconds=wait), "installation rate limited", failed=False
                    )
                    return "deferred"
                route = (installation_id, full_name)
                deployment_id = _take(outbox, app, style, now, row, step, deployment_id, route, retrying)
                retrying = False
                step = next_step(row.change.reason, step)
                if step is not None:
                    outbox.advance(row.id, step, deployment_id=deployment_id)
        except GitHubAppError as exc:  # a step taken in this pass reset the row's count of failed attempts

            def give_up(error: str) -> None:
                outbox.mark(row.id, "failed", error)

            attempts = row.attempts if retrying else 0
            return failure_outcome(exc, attempts, row.id, outbox, give_up, (installation_id, blocked), now)
        outbox.mark(row.id, "sent")
        return "sent"

    return tally(report, send, due, workers)


def _take(
    outbox: DeploymentStore,
    app: GitHubApp,
    style: StatusStyle,
    now: Callable[[], datetime],
    row: DeploymentRow,
    step: str,
    deployment_id: int | None,
    route: tuple[int, str],
    retrying: bool,
) -> int | None:
    """One step of a row against GitHub; the deployment id the row has after it. A retried step looks first
    whether its earlier attempt took effect, so nothing is created or reported twice."""
    change = row.change
    installation_id, full_name = route
    if step == CREATE:
        found = None
        if retrying:
            listed = app.deployments(installation_id, full_name, ref=change.commit_sha, environment=change.environment)
            found = next((d["id"] for d in listed if is_deployment_of(d, change)), None)
        if found is None:
            found = app.create_deployment(installation_id, full_name, deployment_request(change))
        outbox.advance(row.id, step, deployment_id=found)
        return int(found)
    if step == INACTIVATE:
        target = outbox.replaced(row)
        if target is not None and target != deployment_id:
            state, description = status_of(step, change)
            if not (retrying and _latest(app, route, target) == state):
                app.create_deployment_status(installation_id, full_name, target, state, description=description)
        return deployment_id
    if deployment_id is None or change.build_id is None:
        raise GitHubAppError(f"deployment of change {change.revision} has no GitHub id or no build", status=422)
    kept = outbox.image_kept(change.build_id) if step == FINAL else True
    state, description = status_of(step, change, image_kept=kept)
    link = page_url(style, change.build_id, now())
    if not (retrying and _latest(app, route, deployment_id) == state):
        app.create_deployment_status(
            installation_id,
            full_name,
            deployment_id,
            state,
            description=description,
            log_url=link,
            environment_url=link,
        )
    if step == FINAL:
        outbox.advance(row.id, step, deployment_id=deployment_id, final_state=state)
    return deployment_id


def _latest(app: GitHubApp, route: tuple[int, str], deployment_id: int) -> str | None:
    states = app.deployment_states(route[0], route[1], deployment_id)
    return states[0] if states else None
