"""The main job on embedded defaults: a sample app goes from a signed push webhook to desired state."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import uuid
import warnings
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..settings import Settings, child_environ, get_settings

SAMPLE_FILES = {
    "Dockerfile": (
        "FROM {base}\n"
        "WORKDIR /app\n"
        "COPY . /app\n"
        'RUN echo "built at $(date -u)" > /app/BUILD_INFO && cat /app/BUILD_INFO\n'
        'CMD ["sh", "/app/start.sh"]\n'
    ),
    "start.sh": "#!/bin/sh\nwhile true; do echo 'hello from starforge'; sleep 60; done\n",
    "README.md": "Sample app built by `starforge demo`.\n",
}


def _git(cwd: Path, *args: str) -> str:
    env = child_environ(
        {
            "GIT_AUTHOR_NAME": "Starforge Demo",
            "GIT_AUTHOR_EMAIL": "demo@starforge.invalid",
            "GIT_COMMITTER_NAME": "Starforge Demo",
            "GIT_COMMITTER_EMAIL": "demo@starforge.invalid",
        }
    )
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_sample_repo(root: Path, base_image: str) -> tuple[Path, str]:
    """A bare repo with one new commit per demo run; returns (bare repo path, new sha)."""
    bare, work = root / "hello.git", root / "hello-work"
    if not bare.exists():
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git(bare.parent, "init", "--bare", "-b", "main", str(bare))
        _git(bare.parent, "clone", str(bare), str(work))
    for name, text in SAMPLE_FILES.items():
        (work / name).write_text(text.format(base=base_image))
    (work / "VERSION").write_text(uuid.uuid4().hex + "\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-m", "demo change")
    _git(work, "push", "origin", "HEAD:main")
    return bare, _git(work, "rev-parse", "HEAD")


def push_payload(repo_url: str, sha: str, before: str = "0" * 40) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": sha,
        "created": False,
        "deleted": False,
        "repository": {"full_name": "demo/hello", "clone_url": repo_url, "html_url": repo_url},
        "head_commit": {"id": sha, "message": "demo change", "added": ["VERSION"], "modified": [], "removed": []},
        "commits": [{"id": sha, "message": "demo change", "added": ["VERSION"], "modified": [], "removed": []}],
        "pusher": {"name": "demo"},
    }


def run_demo(settings: Settings | None = None) -> int:
    """On the depot backend without a token, a Depot emulator in front of the local dockerd stands in for Depot."""
    settings = settings or get_settings()
    from ..builders.wiring import resolve_backend

    if resolve_backend(settings) != "depot" or settings.depot_token.get_secret_value():
        return _run_demo(settings)
    from ..emulators.depot import DepotEmulator

    with DepotEmulator(docker_addr=settings.buildkit_addr) as emulator:
        # Resources take the Depot token by its variable's name (an EnvVar), as in production: hand it over that way.
        os.environ["STARFORGE_DEPOT_TOKEN"] = emulator.token
        print(f"Depot emulator at {emulator.url} (organization {emulator.organization_id})", flush=True)
        code = _run_demo(
            settings.model_copy(update={"depot_api_url": emulator.url, "depot_token": SecretStr(emulator.token)})
        )
        for build in emulator.builds():
            outcome = build.result or ("expired" if build.expired else "running")
            print(
                f"  Depot build {build.build_id} (project {build.project_id}): {outcome},"
                f" {build.health_reports} health reports, released={build.released}"
                + (f", error: {build.error}" if build.error else "")
            )
        return code


def _run_demo(settings: Settings) -> int:
    import dagster as dg

    with warnings.catch_warnings():  # starlette's notice about its own httpx use says nothing about the demo
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from ..api import create_app
    from ..builders.wiring import resolve_backend
    from ..definitions import resources_for
    from ..github.signature import sign
    from ..store import NotFound, open_store
    from .instance import prepare_dagster_home
    from .runner import drain_queue

    if not settings.github_webhook_secret.get_secret_value():
        settings = settings.model_copy(update={"github_webhook_secret": SecretStr(secrets.token_hex(16))})
    if not settings.env_var("git_allowed_schemes"):
        settings = settings.model_copy(update={"git_allowed_schemes": "https,file"})  # the sample repo is a local one
    dagster_home = prepare_dagster_home(settings)
    backend = resolve_backend(settings)
    print(f"starforge demo: home {settings.resolved_home}, backend {backend}", flush=True)

    bare, sha = make_sample_repo(settings.resolved_home / "demo", settings.builder_image)
    store = open_store(settings.resolved_database_url)
    try:
        app = store.get_app("hello", "demo")
    except NotFound:
        app = store.add_app("demo", "hello", f"file://{bare}", "main", repo_full_name="demo/hello")
    print(f"app {app.workspace}/{app.name} tracks {app.repo_url} ({app.branch}); pushed {sha[:12]}", flush=True)

    body = json.dumps(push_payload(app.repo_url, sha)).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(settings.github_webhook_secret.get_secret_value().encode(), body),
        "Content-Type": "application/json",
    }
    with TestClient(create_app(settings)) as client:
        answer = client.post("/webhooks/github", content=body, headers=headers)
    print(f"webhook answered {answer.status_code}: {answer.text}", flush=True)
    if answer.status_code != 202:
        return 1

    print("build output:", flush=True)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = drain_queue(instance, resources_for(settings), log_level="INFO")
    build = store.list_builds(app_id=app.id, limit=1)[0]
    desired = store.desired_state(app.id)
    print(f"build {build.id}: {build.status.value}" + (f" ({build.error})" if build.error else ""))
    if build.backend_build_id:
        print(f"  backend build: {build.backend_build_id}" + (f"  {build.backend_url}" if build.backend_url else ""))
    for transition in store.transitions(build.id):
        print(f"  {transition.at:%H:%M:%S.%f} {transition.to_state.value:<10} {transition.reason}")
    if desired:
        print(
            f"desired state of demo/hello: {desired.image_ref} @ {desired.image_digest} (commit {desired.commit_sha[:12]})"
        )
    print("where to look:")
    print(f"  build log:     starforge logs {build.id}")
    print(f"  build status:  starforge status {build.id}")
    print(
        f"  Dagster UI:    DAGSTER_HOME={dagster_home} .venv/bin/dagster-webserver -w workspace.yaml  (run {runs[-1].run_id if runs else '?'})"
    )
    print(f"  build store:   {settings.resolved_database_url}")
    ok = build.status.value == "succeeded" and desired is not None and desired.commit_sha == sha
    if not ok:
        return 1
    from .demo_github import run_github_demo

    return run_github_demo(settings, str(bare))
