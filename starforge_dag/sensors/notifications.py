"""The notification sender: delivers the outbox to workspaces' webhook endpoints, signed, in order per endpoint."""

from __future__ import annotations

import time

import dagster as dg

from ..core.models import utcnow
from ..notify import send_notifications
from ..resources.build_store import BuildStoreResource
from ..resources.notifications import NotificationsResource

# Seconds a tick may start deliveries for: with the requests then in flight (timeout_s each at most) it still ends
# inside the daemon's 60 s sensor timeout; what is left waits for the next tick.
TICK_BUDGET_S = 20.0


@dg.sensor(
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers workspace notifications (build and desired-state events) to their webhook endpoints, "
    "in order per endpoint, with backoff; disables an endpoint after repeated failure.",
)
def notification_sensor(
    context: dg.SensorEvaluationContext, build_store: BuildStoreResource, notifications: NotificationsResource
):
    box = notifications.box()
    deadline = time.monotonic() + TICK_BUDGET_S
    report = send_notifications(
        build_store.store(),
        box.open,
        notifications.addresses(),
        utcnow,
        policy=notifications.policy(),
        deadline=deadline,
    )
    if report.delivered or report.failed or report.disabled or report.left:
        context.log.info(str(report))
    for error in report.errors[:20]:
        context.log.warning(error)
    return dg.SkipReason(f"notifications: {report}")
