"""`starforge build-dir` on the depot backend: the workspace's project, one JSON object with the Depot build."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from starforge_dag.emulators.depot import DepotEmulator

pytestmark = pytest.mark.integration

STARFORGE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "starforge"


def build_dir(path: Path, image: str, env: dict[str, str], *extra: str) -> dict:
    result = subprocess.run(
        [str(STARFORGE), "build-dir", str(path), "--image", image, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    (line,) = result.stdout.splitlines()
    return json.loads(line)


def test_build_dir_builds_on_depot_in_the_named_or_default_workspace(
    tmp_path, depot_emulator: DepotEmulator, base_image, services
):
    app = tmp_path / "svc"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo from-build-dir\n")
    env = {
        **os.environ,
        "STARFORGE_HOME": str(tmp_path / "home"),
        "STARFORGE_BUILD_BACKEND": "depot",
        "STARFORGE_DEPOT_API_URL": depot_emulator.url,
        "STARFORGE_DEPOT_TOKEN": depot_emulator.token,
        "STARFORGE_DEFAULT_WORKSPACE": "tools",
    }
    image = f"{services['STARFORGE_REGISTRY']}/cli-{uuid.uuid4().hex[:8]}:dev"

    named = build_dir(app, image, env, "--workspace", "acme")
    default = build_dir(app, image, env)
    refused = build_dir(app, image, {**env, "STARFORGE_DEPOT_TOKEN": "not-a-token"}, "--workspace", "other")

    assert named["status"] == default["status"] == "succeeded", (named, default)
    builds = {b.build_id: b for b in depot_emulator.builds()}
    assert builds[named["backend_build_id"]].result == builds[default["backend_build_id"]].result == "success"
    assert named["digest"] == builds[named["backend_build_id"]].solves[-1].digest
    assert sorted(p.name for p in depot_emulator.projects()) == ["starforge-acme", "starforge-tools"]
    assert refused["status"] == "failed" and refused["error_kind"] == "permanent"
    assert "STARFORGE_DEPOT_TOKEN" in refused["error"] and "not-a-token" not in refused["error"]


def test_demo_on_the_depot_backend_runs_through_a_local_depot_emulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARFORGE_DEPOT_")}
    result = subprocess.run(
        [str(STARFORGE), "demo", "--backend", "depot"],
        capture_output=True,
        text=True,
        env={**env, "STARFORGE_HOME": str(tmp_path / "home")},
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Depot emulator at http://127.0.0.1:" in result.stdout
    assert "build 1: succeeded" in result.stdout
    assert "desired state of demo/hello: 127.0.0.1:5000/apps/demo/hello:" in result.stdout
    assert "backend build: " in result.stdout and "https://depot.dev/orgs/org-emulator/projects/" in result.stdout
    assert ": success, " in result.stdout and "released=True" in result.stdout
