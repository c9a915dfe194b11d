"""A planned (Railpack) build, on BuildKit and through Depot, reads a plain variable and a secret; the secret drives its cache."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from support.files import write_files
from support.images import image_config, image_files, registry_manifest

from starforge_dag.buildkit.builder import BuildKitBuilder
from starforge_dag.core.models import BuildSpec, ImageRef, ProgressLine
from starforge_dag.depot.builder import DepotBuilder, DepotConfig
from starforge_dag.depot.projects import MemoryProjectStore
from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.llb import plan_to_llb

pytestmark = pytest.mark.integration

BUILD_CMD = 'printf %s "$NPM_TOKEN" | sha256sum | cut -d" " -f1 > token.sha && printf %s "$GREETING" > greeting.txt'
Builder = BuildKitBuilder | DepotBuilder


@pytest.fixture(params=["buildkit", "depot"])
def builder(request: pytest.FixtureRequest, buildkit_addr: str) -> Builder:
    """The local daemon directly, and through the Depot emulator (Depot's build flow in front of the same daemon)."""
    if request.param == "buildkit":
        return BuildKitBuilder(buildkit_addr)
    emulator = request.getfixturevalue("depot_emulator")
    return DepotBuilder(DepotConfig(api_url=emulator.url, token=emulator.token), MemoryProjectStore())


def _build(builder: Builder, app: Path, image: str, variables: dict[str, str], base: str) -> list[ProgressLine]:
    """Plan with the app's variables, convert, and build with the same values served as the session's secrets."""
    plan = generate_plan(
        app, env=variables, secrets=["NPM_TOKEN"], platform_options={"RAILPACK_START_CMD": "sh start.sh"}
    ).plan
    graph = plan_to_llb(plan, builder_image=base, runtime_image=base, network="none", secret_values=variables)
    for value in (variables["NPM_TOKEN"], variables["GREETING"]):
        assert value.encode() not in graph.definition
    spec = BuildSpec(
        build_id=1,
        context_dir=str(app),
        image=ImageRef.parse(image),
        frontend="llb",
        llb_definition=graph.definition,
        image_config=graph.image_config,
        secrets=list(plan.secrets),
        workspace="acme",
    )
    lines: list[ProgressLine] = []
    builder.run(builder.submit(spec), lines.append, secrets=variables)
    return lines


def _build_step_cached(lines: list[ProgressLine]) -> bool:
    """Whether BuildKit answered the build command's vertex from its cache (the status stream says CACHED)."""
    mine = [line for line in lines if line.stream == "system" and "sha256sum" in (line.vertex or "")]
    assert mine, [line.text for line in lines]
    return any(line.text.startswith("CACHED ") for line in mine)


def test_the_build_step_gets_the_variable_and_the_secret_and_a_changed_secret_re_runs_it(
    builder: Builder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    app = write_files(tmp_path / "app", {"start.sh": "#!/bin/sh\ncat greeting.txt\n"})
    greeting = f"hello-{uuid.uuid4().hex[:8]}"  # fresh for this run, so the first build cannot be a cached one
    token = f"npm_{uuid.uuid4().hex}"
    variables = {"GREETING": greeting, "NPM_TOKEN": token, "RAILPACK_BUILD_CMD": BUILD_CMD}
    images = [image_name.replace(":v1", f":v{n}") for n in (1, 2, 3)]

    first = _build(builder, app, images[0], variables, base_image)
    files = image_files(images[0])
    assert files["/app/greeting.txt"] == greeting.encode()
    assert files["/app/token.sha"].strip() == hashlib.sha256(token.encode()).hexdigest().encode()
    assert not _build_step_cached(first)

    again = _build(builder, app, images[1], variables, base_image)
    assert _build_step_cached(again), "nothing changed, so the step comes from the cache"

    rotated = f"npm_{uuid.uuid4().hex}"
    changed = _build(builder, app, images[2], {**variables, "NPM_TOKEN": rotated}, base_image)
    assert not _build_step_cached(changed), "a changed secret re-runs the step that uses it"
    assert image_files(images[2])["/app/token.sha"].strip() == hashlib.sha256(rotated.encode()).hexdigest().encode()

    for image in images:
        _, manifest, _ = registry_manifest(image)
        pushed = repr(image_config(image)).encode() + manifest + b"".join(image_files(image).values())
        assert token.encode() not in pushed and rotated.encode() not in pushed
