"""API test fixtures: a real repository with branches (the API client and build store are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitrepos import git


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A real repository with `main` and `feature` branches, served over file://."""
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "First")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "app.py").write_text("print('feature')\n")
    git(repo, "commit", "-q", "-am", "Feature")
    git(repo, "checkout", "-q", "main")
    return repo
