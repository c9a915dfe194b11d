"""GitHub sensors: the commit status and deployment senders, and the reconciler that catches missed pushes."""

from __future__ import annotations

import threading
import time

import dagster as dg

from ..core.models import utcnow
from ..github.deployments import send_deployments
from ..github.statuses import send_statuses
from ..github.sync import reconcile_heads, redeliver_failed
from ..pages.explain import explain_build
from ..resources.build_store import BuildStoreResource
from ..resources.github import GitHubAppResource
from ..resources.log_store import LogStoreResource
from ..store.deployments import DeploymentStore

# Why both sensors skip every tick until an App is configured.
NO_APP = "no GitHub App configured (STARFORGE_GITHUB_APP_ID, STARFORGE_GITHUB_APP_PRIVATE_KEY)"
# Seconds a tick may start GitHub calls for: with the calls then in flight (15 s each at most) it still ends
# inside the daemon's 60 s sensor timeout, so a slow GitHub cuts a tick short and it says so, instead of failing.
TICK_BUDGET_S = 20.0


@dg.sensor(
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends queued commit statuses to GitHub in order per commit, with backoff and rate-limit pauses.",
)
def commit_status_sensor(
    context: dg.SensorEvaluationContext,
    build_store: BuildStoreResource,
    github: GitHubAppResource,
    log_store: LogStoreResource,
):
    app = github.app()
    if app is None:
        return dg.SkipReason(NO_APP)
    deadline = time.monotonic() + TICK_BUDGET_S
    store = build_store.store()
    reading = threading.Lock()  # the sender's threads share one log store connection
    with log_store.open() as logs:

        def explain(build_id: int) -> str | None:
            with reading:
                found = explain_build(store, logs, build_id)
            return found.title if found else None

        report = send_statuses(build_store.github(), app, github.style(explain), utcnow, deadline=deadline)
    if report.sent or report.given_up or report.left:
        context.log.info(str(report))
    return dg.SkipReason(f"statuses: {report}")


@dg.sensor(
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends desired-state changes to GitHub as deployments with their statuses, in order per "
    "environment, with backoff and rate-limit pauses; without an App, queued ones are dropped.",
)
def deployment_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource, github: GitHubAppResource):
    outbox = DeploymentStore(build_store.store().engine)
    app = github.app()
    if app is None:
        dropped = outbox.drop_unsent(NO_APP)
        return dg.SkipReason(f"{NO_APP}; dropped {dropped} queued deployments" if dropped else NO_APP)
    deadline = time.monotonic() + TICK_BUDGET_S
    report = send_deployments(outbox, app, github.style(), utcnow, deadline=deadline)
    if report.sent or report.given_up or report.left:
        context.log.info(str(report))
    return dg.SkipReason(f"deployments: {report}")


def github_reconcile_sensor_every(interval_s: int) -> dg.SensorDefinition:
    """The reconciler, ticking every `interval_s` seconds (STARFORGE_GITHUB_RECONCILE_INTERVAL_S)."""

    @dg.sensor(
        name="github_reconcile_sensor",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Redelivers failed GitHub webhooks and queues builds (trigger reconcile) of heads never built; "
        "the cursor is the last app checked, where a pass cut short resumes.",
    )
    def github_reconcile_sensor(
        context: dg.SensorEvaluationContext, build_store: BuildStoreResource, github: GitHubAppResource
    ):
        app = github.app()
        if app is None:
            return dg.SkipReason(NO_APP)
        store = build_store.store()
        gh = build_store.github()
        deadline = time.monotonic() + TICK_BUDGET_S
        redelivered = redeliver_failed(gh, app, deadline=deadline)
        after = int(context.cursor) if context.cursor else 0
        reconciled = reconcile_heads(store, gh, app, after_app_id=after, deadline=deadline)
        if reconciled.last_app_id is not None:
            context.update_cursor(str(reconciled.last_app_id))
        for line in (str(redelivered), str(reconciled)):
            context.log.info(line)
        return dg.SkipReason(f"{redelivered}; {reconciled}")

    return github_reconcile_sensor
