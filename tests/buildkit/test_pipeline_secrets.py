"""Invariant 4 with every secret in use: a push to a registry that wants a password, a signed webhook, an API call.

Each secret has to travel its real path for the build to succeed, so its absence from run config, run tags, Dagster's
event log and the build log means something.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient
from support.deliveries import WEBHOOK_SECRET
from support.pipeline import Pipeline
from support.registries import PasswordRegistry, password_registry

from starforge_dag.api import create_app
from starforge_dag.core.models import ImageRef
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import open_store

pytestmark = pytest.mark.integration

API_TOKEN = "api-token-for-the-secrets-test"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[PasswordRegistry]:
    root = tmp_path / "registry"
    root.mkdir()
    with password_registry(root) as running:
        yield running


@pytest.fixture
def settings(tmp_path, services, registry: PasswordRegistry, monkeypatch) -> Settings:
    """Settings as a deployment reads them: every secret from the environment, none as a value."""
    for name, value in {
        "STARFORGE_HOME": str(tmp_path / "home"),
        "STARFORGE_DATABASE_URL": f"sqlite:///{tmp_path / 'home' / 'builds.db'}",
        "STARFORGE_BUILD_BACKEND": "buildkit",
        "STARFORGE_BUILDKIT_ADDR": services["STARFORGE_BUILDKIT_ADDR"],
        "STARFORGE_REGISTRY": f"{registry.host}/apps",
        "STARFORGE_REGISTRY_USERNAME": registry.username,
        "STARFORGE_REGISTRY_PASSWORD": registry.password,
        "STARFORGE_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STARFORGE_API_TOKEN": API_TOKEN,
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",  # the test's repository is a local one
    }.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_secrets_are_used_yet_stay_out_of_run_config_tags_and_logs(
    settings: Settings, pipeline: Pipeline, registry: PasswordRegistry, git_repo, base_image
) -> None:
    assert httpx.get(f"http://{registry.host}/v2/").status_code == 401  # nothing gets in without the password
    store = open_store(settings.resolved_database_url)
    repo = git_repo("secretive")
    sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN : {uuid.uuid4().hex}; echo built\n"})  # never cached
    store.add_app("acme", "secretive", repo.url, "main", repo_full_name="acme/secretive")
    resources = pipeline.resources()
    for resource in (resources["registry"], resources["build_service"].registry):
        assert resource.password == dg.EnvVar("STARFORGE_REGISTRY_PASSWORD")

    build_id = pipeline.push(repo.url, "acme/secretive", sha)["builds"][0]  # signed with the webhook secret
    (result,) = pipeline.drain(resources)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    run = pipeline.instance.get_run_by_id(result.run_id)
    assert run is not None
    events = "\n".join(e.message for e in pipeline.instance.all_logs(result.run_id))

    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED
    image = ImageRef.parse(build.image_ref or "")
    pulled = httpx.head(
        f"http://{registry.host}/v2/{image.repository}/manifests/{image.tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        auth=(registry.username, registry.password),
    )
    assert pulled.headers["Docker-Content-Digest"] == build.image_digest  # pushed with the password, verified with it
    with TestClient(create_app(settings)) as client:  # the API token at work
        answer = client.get(f"/builds/{build_id}/logs", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200 and "built" in [line["text"] for line in answer.json()]

    assert run.run_config["ops"] == {"load_build": {"config": {"build_id": build_id}}}
    assert not run.run_config.get("resources")
    stored = json.dumps(run.run_config) + json.dumps(run.tags)
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        build_log = "\n".join(line.text for line in logs.read(build_id))
    for secret in (registry.password, WEBHOOK_SECRET, API_TOKEN):
        assert secret not in stored and secret not in events and secret not in build_log
