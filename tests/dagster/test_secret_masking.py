"""A build whose output and error carry its secret: masked in the stored log, the step's output, the build's error,
its commit status, Dagster's failure and the API's answer, while the builder itself received the value."""

from __future__ import annotations

import json
from collections.abc import Mapping

import dagster as dg
from fastapi.testclient import TestClient
from support.pipeline import DOCKERFILE

from starforge_dag.api import create_app
from starforge_dag.builders.fake import FakeBuilder
from starforge_dag.builders.port import CancelCheck, ProgressSink, never
from starforge_dag.core.errors import UserBuildError
from starforge_dag.core.models import BuildResult, BuildTicket, ProgressLine
from starforge_dag.core.states import BuildState
from starforge_dag.github.statuses import commit_status
from starforge_dag.logs import open_log_store
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.store import NewValue

TOKEN = "npm_0123456789abcdef-secret-value"
received: list[Mapping[str, str]] = []


class LeakyBuilder(FakeBuilder):
    """Prints the secret it was handed and fails with it in the message, as a careless build step would."""

    def run(
        self,
        ticket: BuildTicket,
        on_progress: ProgressSink,
        should_cancel: CancelCheck = never,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        received.append(dict(secrets or {}))
        value = (secrets or {}).get("NPM_TOKEN", "")
        on_progress(ProgressLine(stream="stdout", text=f"npm notice using token {value}", vertex="RUN npm ci"))
        raise UserBuildError(f"npm ci failed: 401 for token {value}", step="RUN npm ci")


class LeakyBuildService(FakeBuildService):
    def builder(self) -> FakeBuilder:
        return LeakyBuilder()


def test_a_secret_in_build_output_and_errors_is_masked_everywhere_it_lands(
    settings, build_store, pipeline, git_repo, capfd
) -> None:
    repo = git_repo("web")
    sha = repo.commit(
        {"Dockerfile": DOCKERFILE.replace("RUN echo hello", "RUN --mount=type=secret,id=NPM_TOKEN npm ci")}
    )
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_store.set_variables("acme", "web", [NewValue("NPM_TOKEN", TOKEN, secret=True)], "test", settings.secret_box())
    received.clear()

    build_id = pipeline.push(repo.url, "acme/web", sha)["builds"][0]
    (result,) = pipeline.drain(pipeline.resources(build_service=LeakyBuildService()))

    assert received == [{"NPM_TOKEN": TOKEN}], "the builder itself gets the value"
    build = build_store.get_build(build_id)
    assert build.status == BuildState.FAILED
    assert build.error == "npm ci failed: 401 for token *****"
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        assert "npm notice using token *****" in [line.text for line in logs.read(build_id)]
    # A commit status says why from the reason the build ended with (the outbox row holds that reason).
    ended = build_store.transitions(build_id)[-1]
    state, description = commit_status(ended.to_state, ended.reason)
    assert state == "failure" and TOKEN not in description and "*****" in description
    failures = [e for e in result.all_events if e.is_failure]
    assert failures and all(TOKEN not in (e.message or "") for e in failures)
    assert TOKEN not in json.dumps([repr(e) for e in result.all_events])
    with TestClient(create_app(settings)) as client:
        answer = client.get(
            f"/builds/{build_id}", headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        )
    assert answer.status_code == 200 and TOKEN not in answer.text and "*****" in answer.text
    printed = capfd.readouterr()
    assert TOKEN not in printed.out + printed.err and "npm notice using token *****" in printed.out
    assert isinstance(result, dg.ExecuteInProcessResult)
