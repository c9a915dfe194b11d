"""Depot API client pieces that need no server: where it connects, how it refuses bad settings."""

from __future__ import annotations

import pytest

from starforge_dag.core.errors import PermanentBuildError
from starforge_dag.depot.api import DepotAPI, _target
from starforge_dag.depot.builder import DepotConfig, dashboard_url


def test_https_is_tls_on_443_by_default_and_http_needs_a_port():
    assert _target("https://api.depot.dev") == ("api.depot.dev:443", True)
    assert _target("https://depot.internal:8443") == ("depot.internal:8443", True)
    assert _target("http://127.0.0.1:4500") == ("127.0.0.1:4500", False)
    for bad in ("http://127.0.0.1", "grpc://api.depot.dev", "api.depot.dev:443"):
        with pytest.raises(ValueError):
            _target(bad)


def test_a_missing_token_names_the_setting():
    with pytest.raises(PermanentBuildError, match="STARFORGE_DEPOT_TOKEN"):
        DepotAPI("https://api.depot.dev", "")


def test_the_token_is_not_in_the_config_repr_and_platforms_are_checked():
    assert "secret-token" not in repr(DepotConfig(api_url="http://127.0.0.1:1", token="secret-token"))
    with pytest.raises(ValueError, match="amd64 or arm64"):
        DepotConfig(api_url="http://127.0.0.1:1", token="t", platform="s390x")  # type: ignore[arg-type]


def test_dashboard_links_need_the_organization():
    assert dashboard_url("org1", "p1", "b1") == "https://depot.dev/orgs/org1/projects/p1/builds/b1"
    assert dashboard_url(None, "p1", "b1") is None
