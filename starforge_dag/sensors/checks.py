"""The checks reconciler: builds waiting for their commit's CI are settled even when no `check_suite` event came."""

from __future__ import annotations

import time

import dagster as dg

from ..github.checksuites import PASS_LIMIT, Policy, reconcile_waiting
from ..resources.build_store import BuildStoreResource
from ..resources.github import GitHubAppResource
from .github import TICK_BUDGET_S

INTERVAL_S = 10  # the grace period of commits without CI is measured against this tick


def checks_sensor_for(timeout_s: int, grace_s: int) -> dg.SensorDefinition:
    """The sensor with STARFORGE_CHECKS_TIMEOUT_S and STARFORGE_CHECKS_GRACE_S."""

    @dg.sensor(
        name="checks_sensor",
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Asks GitHub's checks API about up to {PASS_LIMIT} builds waiting for their commit's checks a "
        "tick and queues, refuses or times them out; the cursor is the last build checked.",
    )
    def checks_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource, github: GitHubAppResource):
        store = build_store.store()
        policy = Policy(timeout_s, grace_s, github.app_id)
        after = int(context.cursor) if context.cursor else 0
        deadline = time.monotonic() + TICK_BUDGET_S
        report = reconcile_waiting(store, build_store.github(), github.app(), policy, after_id=after, deadline=deadline)
        if report.last_build_id is not None:
            context.update_cursor(str(report.last_build_id))
        if report.checked:
            context.log.info(str(report))
        return dg.SkipReason(str(report))

    return checks_sensor
