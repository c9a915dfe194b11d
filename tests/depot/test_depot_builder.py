"""DepotBuilder against the Depot emulator: the lifecycle, health reports, timeouts, expiry, auth, cancel."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from starforge_dag.core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from starforge_dag.core.models import BuildSpec, ImageRef, ProgressLine
from starforge_dag.depot.builder import DepotBuilder, DepotConfig
from starforge_dag.depot.projects import MemoryProjectStore
from starforge_dag.emulators.depot import DepotEmulator

pytestmark = pytest.mark.integration


def spec_for(tmp_path: Path, base_image: str, registry: str, run: str = "echo hi") -> BuildSpec:
    context = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    context.mkdir()
    nonce = uuid.uuid4().hex  # the shared daemon never has this step cached: it really runs
    (context / "Dockerfile").write_text(f"FROM {base_image}\nRUN {run} && : {nonce}\n")
    image = ImageRef.parse(f"{registry}/builder-{uuid.uuid4().hex[:10]}:v1")
    return BuildSpec(build_id=1, context_dir=str(context), image=image, workspace="acme")


def builder(emulator: DepotEmulator, **config) -> DepotBuilder:
    settings = {"api_url": emulator.url, "token": emulator.token, "health_interval_s": 0.2, **config}
    return DepotBuilder(DepotConfig(**settings), MemoryProjectStore())


@pytest.fixture
def spec(tmp_path, base_image, services) -> BuildSpec:
    return spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"])


def test_health_is_reported_while_waiting_for_the_builder_and_through_the_build(depot_emulator, spec):
    depot_emulator.faults.pending_messages = 1
    depot_emulator.faults.pending_delay_s = 1.0
    seen_during_pending: list[int] = []

    def pending_with_health(emulator: DepotEmulator) -> bool:
        builds = emulator.builds()
        if builds and builds[0].endpoint_requests and builds[0].endpoint is None and builds[0].health_reports >= 2:
            seen_during_pending.append(builds[0].health_reports)
            return True
        return False

    watcher = threading.Thread(target=lambda: depot_emulator.wait_for(pending_with_health, timeout=30))
    watcher.start()
    started = time.monotonic()
    result = builder(depot_emulator).build(spec, "acme")
    elapsed = time.monotonic() - started
    watcher.join()

    assert seen_during_pending, "no health reports while GetEndpoint was pending"
    build = depot_emulator.build(result.depot.build_id)
    # One report at the start, then one per interval (0.2 s) until the solve ended.
    assert elapsed / 0.2 * 0.5 <= build.health_reports <= elapsed / 0.2 + 2
    assert build.created_at <= build.endpoint_at <= build.released_at <= build.finished_at
    assert build.last_health_at <= build.released_at
    assert build.result == "success" and result.image.digest == build.solves[-1].digest
    assert set(result.timings) >= {"project", "create", "endpoint", "connect", "solve", "release", "finish"}


def test_a_builder_that_never_becomes_active_is_transient_and_the_build_is_finished(depot_emulator, spec):
    depot_emulator.faults.pending_messages = 1
    depot_emulator.faults.pending_delay_s = 5.0

    with pytest.raises(TransientBuildError, match=r"did not become active within 0.5s"):
        builder(depot_emulator, endpoint_timeout_s=0.5).build(spec, "acme")

    (build,) = depot_emulator.builds()
    assert build.finished and build.result == "error" and "did not become active" in build.error
    assert build.released


def test_an_expired_build_is_transient(depot_emulator, tmp_path, base_image, services):
    depot_emulator.health_timeout_s = 0.5
    spec = spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"], run="sleep 10")

    started = time.monotonic()
    with pytest.raises(TransientBuildError):
        builder(depot_emulator, health_interval_s=3.0).build(spec, "acme")

    assert time.monotonic() - started < 9, "the lost builder was not noticed before the step ended"
    (build,) = depot_emulator.builds()
    assert build.expired


def test_a_refused_token_is_permanent_and_names_the_setting(depot_emulator, spec):
    depot_emulator.faults.reject_tokens = True
    with pytest.raises(PermanentBuildError, match="STARFORGE_DEPOT_TOKEN") as caught:
        builder(depot_emulator).build(spec, "acme")
    assert "UNAUTHENTICATED" in caught.value.message


def test_a_token_of_another_organization_is_permanent(depot_emulator, spec):
    other = depot_emulator.add_organization("org-other")
    store = MemoryProjectStore()
    project = DepotBuilder(DepotConfig(api_url=depot_emulator.url, token=depot_emulator.token), store).project_for("a")
    intruder = DepotBuilder(DepotConfig(api_url=depot_emulator.url, token=other), store)
    assert intruder.project_for("a") == project  # known locally, but Depot refuses the build
    with pytest.raises(PermanentBuildError, match="PERMISSION_DENIED.*STARFORGE_DEPOT_TOKEN"):
        intruder.build(spec, "a")


def test_a_failing_step_is_a_user_error_naming_the_step(depot_emulator, tmp_path, base_image, services):
    spec = spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"], run="exit 7")
    lines: list[ProgressLine] = []
    with pytest.raises(UserBuildError) as caught:
        builder(depot_emulator).build(spec, "acme", on_progress=lines.append)
    assert "RUN exit 7" in (caught.value.step or "")
    (build,) = depot_emulator.builds()
    assert build.result == "error" and "exit code: 7" in build.error
    assert any(line.text.startswith("ERROR") and "exit 7" in line.text for line in lines)


def test_cancel_from_another_thread_stops_the_solve_within_seconds(depot_emulator, tmp_path, base_image, services):
    spec = spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"], run="sleep 120")
    depot = builder(depot_emulator)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            depot.build(spec, "acme")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert depot_emulator.wait_for(
        lambda e: any("sleep 120" in s.name and s.started_at for b in e.builds() for s in b.steps.values()), 60
    )
    canceled_at = time.monotonic()
    depot.cancel("superseded by a newer commit")
    thread.join(timeout=30)

    assert not thread.is_alive() and time.monotonic() - canceled_at < 10
    assert isinstance(errors[0], BuildCanceled)
    (build,) = depot_emulator.builds()
    assert build.result == "error" and build.error == "canceled: superseded by a newer commit"
    assert build.released


def test_cancel_while_waiting_for_the_builder(depot_emulator, spec):
    depot_emulator.faults.pending_delay_s = 30.0
    asked = threading.Event()
    threading.Timer(0.5, asked.set).start()

    started = time.monotonic()
    with pytest.raises(BuildCanceled):
        builder(depot_emulator).build(spec, "acme", should_cancel=asked.is_set)

    assert time.monotonic() - started < 5
    (build,) = depot_emulator.builds()
    assert build.result == "error" and build.error.startswith("canceled")


def test_a_terminated_run_finishes_its_depot_build_as_canceled(depot_emulator, tmp_path, base_image, services):
    """Dagster interrupts a terminated run's step with a BaseException; the Depot build still ends, as canceled."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    spec = spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"], run="echo step-output && sleep 60")

    def interrupt_on_output(line: ProgressLine) -> None:
        if line.text == "step-output":
            raise DagsterExecutionInterruptedError()

    started = time.monotonic()
    with pytest.raises(DagsterExecutionInterruptedError):
        builder(depot_emulator).build(spec, "acme", on_progress=interrupt_on_output)

    assert time.monotonic() - started < 30
    (build,) = depot_emulator.builds()
    assert build.result == "error" and build.error.startswith("canceled: DagsterExecutionInterruptedError")
    assert build.released


def test_a_health_stream_outage_is_reopened_and_the_build_goes_on(depot_emulator, tmp_path, base_image, services):
    depot_emulator.faults.unavailable_once = {"ReportHealth"}
    spec = spec_for(tmp_path, base_image, services["STARFORGE_REGISTRY"], run="sleep 1")

    result = builder(depot_emulator).build(spec, "acme")

    build = depot_emulator.build(result.depot.build_id)
    assert build.result == "success" and depot_emulator.calls("ReportHealth") >= 2
    assert build.health_reports >= 3  # reports kept arriving on the reopened stream


def test_create_build_unavailable_is_transient_and_leaves_no_depot_build(depot_emulator, spec):
    depot_emulator.faults.unavailable_once = {"CreateBuild"}
    depot = builder(depot_emulator)
    with pytest.raises(TransientBuildError, match="Depot unavailable during CreateBuild"):
        depot.build(spec, "acme")
    assert depot_emulator.builds() == []
    retried = builder(depot_emulator).build(spec, "acme")  # what the op's retry does
    assert depot_emulator.build(retried.depot.build_id).result == "success"
