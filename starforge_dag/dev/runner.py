"""Run the pipeline without a daemon: one sensor tick, then its runs in this process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from ..assets import APP_PARTITIONS_NAME
from ..jobs import build_job
from ..sensors.builds import build_queue_sensor, build_reconcile_sensor, reconcile


def tick_sensor(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: Mapping[str, Any]
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of a sensor, as the daemon would run it."""
    with dg.build_sensor_context(instance=instance, resources=dict(resources), sensor_name=sensor.name) as context:
        result = sensor(context)
    if not isinstance(result, dg.SensorResult | dg.SkipReason):
        raise TypeError(f"{sensor.name} answered {type(result).__name__}")
    return result


def tick_queue_sensor(instance: dg.DagsterInstance, resources: Mapping[str, Any]) -> dg.SensorResult | dg.SkipReason:
    """One tick of the sensor that claims queued builds."""
    return tick_sensor(build_queue_sensor, instance, resources)


def tick_reconcile_sensor(instance: dg.DagsterInstance, resources: Mapping[str, Any]) -> dg.SkipReason:
    """One tick of the sensor that keeps builds true to their runs."""
    result = tick_sensor(build_reconcile_sensor, instance, resources)
    if not isinstance(result, dg.SkipReason):
        raise TypeError(f"{build_reconcile_sensor.name} requested runs")
    return result


def drain_queue(
    instance: dg.DagsterInstance, resources: Mapping[str, Any], rounds: int = 3, log_level: str | None = None
) -> list[dg.ExecuteInProcessResult]:
    """Tick the reconcile and queue sensors and execute each requested run in process, until the queue is empty.

    `log_level` sets the console logger of those runs (e.g. INFO hides Dagster's per-event DEBUG lines).
    """
    loggers = {"loggers": {"console": {"config": {"log_level": log_level}}}} if log_level else {}
    results: list[dg.ExecuteInProcessResult] = []
    for _ in range(rounds):
        tick_reconcile_sensor(instance, resources)
        tick = tick_queue_sensor(instance, resources)
        if not isinstance(tick, dg.SensorResult) or not tick.run_requests:
            break
        for request in tick.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(APP_PARTITIONS_NAME, list(request.partition_keys or []))
        for run_request in tick.run_requests:
            results.append(
                build_job.execute_in_process(
                    run_config={**dict(run_request.run_config), **loggers},
                    tags=run_request.tags,
                    instance=instance,
                    resources=dict(resources),
                    raise_on_error=False,
                )
            )
    # Builds whose runs failed outside a classified error end now, not at the next tick.
    store = resources["build_store"].process_config_and_initialize()
    reconcile(store.store(), instance, store.build_timeout_s, actor="local")
    return results
