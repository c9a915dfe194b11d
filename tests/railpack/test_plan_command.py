"""`starforge plan DIR` output and its failure message, via plan_command and the `starforge` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from starforge_dag.cli.plan import plan_command

REPO = Path(__file__).resolve().parents[2]


def test_plan_command_prints_the_plan(fixture_app, capsys) -> None:
    assert plan_command(str(fixture_app("python-flask")), info=False, env={}) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["deploy"]["startCommand"] == "gunicorn --bind 0.0.0.0:${PORT:-8000} main:app"


def test_plan_command_info(fixture_app, capsys) -> None:
    assert plan_command(str(fixture_app("go-cmd")), info=True, env={"RAILPACK_GO_VERSION": "1.20"}) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["detectedProviders"] == ["golang"]
    assert info["resolvedPackages"]["go"] == {
        "name": "go",
        "requestedVersion": "1.20",
        "resolvedVersion": "1.20",
        "source": "RAILPACK_GO_VERSION",
    }


def test_plan_command_fails_with_a_helpful_message(make_app, capsys) -> None:
    root = make_app({"README.md": "# nothing to build\n", "docs/notes.txt": ""})
    assert plan_command(str(root), info=False, env={}) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    for expected in (
        "package.json",
        "requirements.txt",
        "go.mod",
        "Cargo.toml",
        "Dockerfile",
        "RAILPACK_BUILD_CMD",
        "railpack.json",
        "docs/, README.md",
    ):
        assert expected in captured.err


def test_plan_command_warns_on_stderr_when_no_start_command(make_app, capsys) -> None:
    assert plan_command(str(make_app({"package.json": "{}"})), info=False, env={}) == 0
    assert "No start command" in capsys.readouterr().err


def test_plan_command_reads_railpack_options_from_the_process_environment(fixture_app, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RAILPACK_START_CMD", "python -m flask run")
    monkeypatch.setenv("HOME_SECRETISH", "not-a-build-variable")
    assert plan_command(str(fixture_app("python-flask")), info=False) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["deploy"]["startCommand"] == "python -m flask run"
    assert "secrets" not in plan


def _starforge_plan(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAILPACK_")}
    return subprocess.run(
        [sys.executable, "-m", "starforge_dag.cli", "plan", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_starforge_plan_prints_plan_and_info(fixture_app) -> None:
    root = fixture_app("shell-busybox")
    plan = _starforge_plan(str(root))
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["deploy"]["startCommand"] == "sh start.sh"
    info = _starforge_plan(str(root), "--info")
    assert json.loads(info.stdout)["detectedProviders"] == ["shell"]


def test_starforge_plan_exits_1_on_unplannable_dir(make_app) -> None:
    result = _starforge_plan(str(make_app({"notes.txt": ""})))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Dockerfile" in result.stderr


def test_starforge_plan_env_option_sets_build_variables(fixture_app) -> None:
    result = _starforge_plan(
        str(fixture_app("python-pip")), "--env", "RAILPACK_START_CMD=python -m app", "--env", "API_KEY=abc"
    )
    plan = json.loads(result.stdout)
    assert plan["deploy"]["startCommand"] == "python -m app"
    assert plan["secrets"] == ["API_KEY"]
    assert "abc" not in result.stdout
