"""Real failing builds on the local BuildKit, each explained from what BuildKit, the step and the registry said.

Tiny busybox builds: a RUN step's exit code, a step killed like the out-of-memory killer does (SIGKILL, 137),
a full device (/dev/full gives ENOSPC), a Dockerfile syntax error, a missing base image, a step reaching for the
network it does not have, a registry that wants a password nobody gave, and a planned app with nothing to start.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from support.files import write_files
from support.registries import password_registry

from starforge_dag.core.errors import BuildError
from starforge_dag.core.explain import Explanation, FailureClass, FailureFacts, explain
from starforge_dag.core.models import BuildSpec, ImageRef, LogLine, ProgressLine
from starforge_dag.core.states import BuildState
from starforge_dag.resources.buildkit_service import BuildKitBuildService
from starforge_dag.resources.planner import PlannerResource
from starforge_dag.resources.registry import RegistryResource

pytestmark = pytest.mark.integration


def failed_build(
    buildkit_addr: str, context: Path, image: str, registry: RegistryResource | None = None
) -> tuple[BuildError, list[LogLine]]:
    """Build `context` and return the error and the log as the store keeps them (numbered lines)."""
    service = BuildKitBuildService(address=buildkit_addr, registry=registry).builder()
    spec = BuildSpec(build_id=1, context_dir=str(context), image=ImageRef.parse(image))
    progress: list[ProgressLine] = []
    with pytest.raises(BuildError) as failed:
        service.run(service.submit(spec), progress.append)
    lines = [
        LogLine(build_id=1, seq=seq, stream=p.stream, text=p.text, vertex=p.vertex) for seq, p in enumerate(progress)
    ]
    return failed.value, lines


def explained(error: BuildError, lines: list[LogLine], network: str = "none") -> Explanation:
    facts = FailureFacts(BuildState.FAILED, error.message, error.step, error.kind.value, log=lines, network=network)
    found = explain(facts)
    assert found is not None
    return found


def dockerfile_failure(buildkit_addr: str, tmp_path: Path, image_name: str, dockerfile: str) -> Explanation:
    write_files(tmp_path, {"Dockerfile": dockerfile})
    return explained(*failed_build(buildkit_addr, tmp_path, image_name))


def nonce() -> str:
    return uuid.uuid4().hex[:12]  # a fresh step every run, never a cached result


def test_a_failing_run_step(buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path) -> None:
    found = dockerfile_failure(
        buildkit_addr, tmp_path, image_name, f"FROM {base_image}\nRUN echo {nonce()} && exit 3\n"
    )
    assert found.cls == FailureClass.RUN_FAILED
    assert found.title.startswith("`echo ") and found.title.endswith("&& exit 3` failed with exit code 3")
    assert found.line is not None and found.line.startswith("ERROR [2/2] RUN") and found.line_no is not None


def test_a_step_killed_like_the_out_of_memory_killer_does(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    dockerfile = f"FROM {base_image}\nRUN : {nonce()}; sh -c 'kill -9 $$'; exit $?\n"
    found = dockerfile_failure(buildkit_addr, tmp_path, image_name, dockerfile)
    assert found.cls == FailureClass.OUT_OF_MEMORY
    assert "exit code: 137" in (found.line or "")


def test_a_full_device(buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path) -> None:
    dockerfile = f"FROM {base_image}\nRUN : {nonce()}; dd if=/dev/zero of=/dev/full bs=1k count=1\n"
    found = dockerfile_failure(buildkit_addr, tmp_path, image_name, dockerfile)
    assert found.cls == FailureClass.DISK_FULL
    assert "No space left on device" in (found.line or "")


def test_a_dockerfile_syntax_error_names_the_line(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    found = dockerfile_failure(buildkit_addr, tmp_path, image_name, f"FROM {base_image}\n\nRUNN echo {nonce()}\n")
    assert found.cls == FailureClass.DOCKERFILE_SYNTAX
    assert found.title == "The Dockerfile has an error on line 3: unknown instruction: RUNN"


def test_a_missing_base_image(buildkit_addr: str, services: dict[str, str], image_name: str, tmp_path: Path) -> None:
    missing = f"{services['STARFORGE_REGISTRY']}/base/missing-{nonce()}:latest"
    found = dockerfile_failure(buildkit_addr, tmp_path, image_name, f"FROM {missing}\nRUN true\n")
    assert found.cls == FailureClass.BASE_IMAGE
    assert found.title == f"The base image {missing} does not exist"


@pytest.mark.parametrize("command", ["wget -q -O- http://example.com/", "nslookup example.com"])
def test_a_step_reaching_for_the_network_it_does_not_have(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path, command: str
) -> None:
    found = dockerfile_failure(buildkit_addr, tmp_path, image_name, f"FROM {base_image}\nRUN : {nonce()}; {command}\n")
    assert found.cls == FailureClass.NETWORK_DISABLED
    assert "build steps have no network" in found.title


def test_a_registry_that_refuses_the_push(buildkit_addr: str, base_image: str, tmp_path: Path) -> None:
    (tmp_path / "registry").mkdir()
    (tmp_path / "app").mkdir()
    write_files(tmp_path / "app", {"Dockerfile": f"FROM {base_image}\nRUN echo {nonce()}\n"})
    with password_registry(tmp_path / "registry") as registry:
        wrong = RegistryResource(prefix=registry.host, username=registry.username, password="not-the-password")
        error, lines = failed_build(buildkit_addr, tmp_path / "app", f"{registry.host}/acme/web:v1", wrong)
    found = explained(error, lines)
    assert found.cls == FailureClass.PUSH_REFUSED
    assert "authentication required" in found.title and registry.password not in found.title


def test_a_planned_app_with_nothing_to_start(tmp_path: Path, base_image: str) -> None:
    write_files(tmp_path, {"notes.txt": "no code, no start command\n"})
    planner = PlannerResource(builder_image=base_image, runtime_image=base_image)
    with pytest.raises(BuildError) as failed:
        planner.plan(str(tmp_path))
    found = explained(failed.value, [])
    assert found.cls == FailureClass.NO_START_COMMAND
    assert "RAILPACK_START_CMD" in found.hint
