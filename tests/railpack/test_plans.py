"""Whole plans of every fixture app, compared field by field with the expected plan files.

Each expected plan under tests/fixtures/railpack/plans/ was reviewed against Railpack's provider
logic: step names and order, every command with its `sh -c` wrapping, caches, variables, secrets,
mise packages and deploy inputs. Refresh one with `STARFORGE_WRITE_PLANS=1` after a deliberate change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from starforge_dag.railpack import generate_plan

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "railpack" / "plans"
WHOLE_PLAN_APPS = sorted(p.stem for p in PLANS.glob("*.json"))


def test_every_fixture_app_has_a_whole_plan(fixture_app_names: list[str]) -> None:
    assert fixture_app_names == WHOLE_PLAN_APPS


@pytest.mark.parametrize("name", WHOLE_PLAN_APPS)
def test_whole_plan(fixture_app, name: str) -> None:
    result = generate_plan(fixture_app(name))
    actual = json.loads(result.plan.to_json())
    path = PLANS / f"{name}.json"
    if os.environ.get("STARFORGE_WRITE_PLANS"):
        path.write_text(json.dumps(actual, indent=2) + "\n")
    assert actual == json.loads(path.read_text())


def test_every_ported_provider_has_a_whole_plan() -> None:
    prefixes = {name.split("-")[0] for name in WHOLE_PLAN_APPS}
    assert {
        "node",
        "python",
        "shell",
        "static",
        "staticfile",
        "procfile",
        "ruby",
        "go",
        "rust",
        "java",
        "php",
        "elixir",
        "dotnet",
        "cpp",
        "deno",
        "gleam",
    } <= prefixes
