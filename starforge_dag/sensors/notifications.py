"""The notification sender: delivers the outbox to workspaces' webhook endpoints, signed, in order per endpoint."""

from __future__ import annotations

import threading
import time
from typing import Any

import dagster as dg

from ..core.links import PageLinks
from ..core.models import utcnow
from ..logs import LogStoreBackend
from ..notify import send_notifications
from ..notify.sender import BuildLinks
from ..pages.explain import explain_build
from ..resources.build_store import BuildStoreResource
from ..resources.log_store import LogStoreResource
from ..resources.notifications import NotificationsResource
from ..store import BuildStore

# Seconds a tick may start deliveries for: with the requests then in flight (timeout_s each at most) it still ends
# inside the daemon's 60 s sensor timeout; what is left waits for the next tick.
TICK_BUDGET_S = 20.0


class StoredBuildLinks(BuildLinks):
    """A message's page link (when the API has a public URL) and, for a build that did not succeed, its explanation."""

    def __init__(self, store: BuildStore, logs: LogStoreBackend, links: PageLinks | None):
        self._store, self._logs, self._links = store, logs, links
        self._reading = threading.Lock()  # the sender's threads share one log store connection

    def page_url(self, build_id: int) -> str | None:
        return self._links.url(build_id, utcnow()) if self._links else None

    def explanation(self, build_id: int) -> Any:
        with self._reading:
            found = explain_build(self._store, self._logs, build_id)
        return found.model_dump(mode="json") if found else None


@dg.sensor(
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers workspace notifications (build and desired-state events) to their webhook endpoints, "
    "in order per endpoint, with backoff; disables an endpoint after repeated failure.",
)
def notification_sensor(
    context: dg.SensorEvaluationContext,
    build_store: BuildStoreResource,
    log_store: LogStoreResource,
    notifications: NotificationsResource,
):
    box = notifications.box()
    deadline = time.monotonic() + TICK_BUDGET_S
    store = build_store.store()
    with log_store.open() as logs:
        report = send_notifications(
            store,
            box.open,
            notifications.addresses(),
            utcnow,
            policy=notifications.policy(),
            links=StoredBuildLinks(store, logs, notifications.links()),
            deadline=deadline,
        )
    if report.delivered or report.failed or report.disabled or report.left:
        context.log.info(str(report))
    for error in report.errors[:20]:
        context.log.warning(error)
    return dg.SkipReason(f"notifications: {report}")
