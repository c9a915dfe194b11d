"""The build job on the real BuildKit (dockerd) and registry: webhook → pushed image → desired state."""

from __future__ import annotations

import pytest
from support.images import image_config
from support.pipeline import Pipeline, services_settings

from starforge_dag.core.models import ImageRef
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.resources.buildkit_service import BuildKitBuildService
from starforge_dag.settings import Settings
from starforge_dag.store import open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, services) -> Settings:
    return services_settings(tmp_path / "home", services, build_backend="buildkit", api_token="token")


def test_dockerfile_app_is_built_pushed_and_deployed(settings, pipeline: Pipeline, git_repo, base_image):
    store = open_store(settings.resolved_database_url)
    repo = git_repo("shop")
    sha = repo.commit(
        {
            "Dockerfile": f"FROM {base_image}\nWORKDIR /srv\nCOPY . .\nRUN echo compiled > /srv/out && cat /srv/out\n"
            'CMD ["cat", "/srv/out"]\n',
            ".dockerignore": "secret.txt\n",
            "secret.txt": "do not ship",
        }
    )
    app = store.add_app("acme", "shop", repo.url, "main", repo_full_name="acme/shop")
    resources = pipeline.resources()
    assert isinstance(resources["build_service"], BuildKitBuildService)

    build_id = pipeline.push(repo.url, "acme/shop", sha)["builds"][0]
    (result,) = pipeline.drain(resources)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED
    registry_digest = resources["registry"].manifest_digest(ImageRef.parse(build.image_ref))
    assert build.image_digest == registry_digest
    desired = store.desired_state(app.id)
    assert desired.image_digest == registry_digest and desired.commit_sha == sha
    assert image_config(f"{build.image_ref}@{registry_digest}")["config"]["Cmd"] == ["cat", "/srv/out"]
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        lines = logs.read(build.id)
    texts = [line.text for line in lines]
    assert "compiled" in texts
    assert [line.seq for line in lines] == list(range(len(lines)))
    assert texts.index("compiled") < max(i for i, t in enumerate(texts) if t.startswith("pushed"))


def test_app_without_dockerfile_is_planned_and_solved_as_llb(settings, pipeline: Pipeline, git_repo):
    store = open_store(settings.resolved_database_url)
    repo = git_repo("tool")
    sha = repo.commit(
        {
            "start.sh": "#!/bin/sh\necho serving\n",
            "railpack.json": '{"deploy": {"variables": {"GREETING": "hi"}}}\n',
        }
    )
    app = store.add_app("acme", "tool", repo.url, "main", repo_full_name="acme/tool")

    pipeline.push(repo.url, "acme/tool", sha)
    (result,) = pipeline.drain()

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    spec = result.output_for_node("railpack_frontend")
    assert spec.frontend == "llb"
    desired = store.desired_state(app.id)
    config = image_config(f"{desired.image_ref}@{desired.image_digest}")["config"]
    assert "GREETING=hi" in config["Env"]
    assert "start.sh" in " ".join(config.get("Cmd") or config.get("Entrypoint") or [])


def test_failing_run_step_fails_the_build_with_the_step(settings, pipeline: Pipeline, git_repo, base_image):
    store = open_store(settings.resolved_database_url)
    repo = git_repo("bad")
    sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo about to fail && exit 3\n"})
    app = store.add_app("acme", "bad", repo.url, "main", repo_full_name="acme/bad")

    build_id = pipeline.push(repo.url, "acme/bad", sha)["builds"][0]
    (result,) = pipeline.drain()

    assert not result.success
    build = store.get_build(build_id)
    assert build.status == BuildState.FAILED
    assert "exit code: 3" in build.error and "RUN echo about to fail" in build.error_step
    assert store.desired_state(app.id) is None
