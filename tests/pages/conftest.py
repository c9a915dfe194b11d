"""Build page fixtures: the builds of one app, and the signed path of a build's page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.build_pages import Builds

from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore


@pytest.fixture
def builds(build_store: BuildStore, settings: Settings) -> Builds:
    app = build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main", repo_full_name="acme/web")
    return Builds(build_store, settings, app)


@pytest.fixture
def page_path(settings: Settings) -> Callable[[int], str]:
    """The path of a build's page, signed as GET /builds/{id} signs it."""
    from starforge_dag.core.models import utcnow

    return lambda build_id: "/page/" + settings.page_links().token(build_id, utcnow())
