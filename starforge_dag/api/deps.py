"""Request dependencies: settings (read lazily, once per app), the build store and bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from starforge_dag.settings import Settings, get_settings
from starforge_dag.store import BuildStore, open_store

_bearer = HTTPBearer(auto_error=False, description="STARFORGE_API_TOKEN")


def settings_dep(request: Request) -> Settings:
    """The settings given to create_app, else the environment as read on the first request."""
    state = request.app.state
    if state.settings is None:
        state.settings = get_settings()
    return state.settings


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def store_dep(settings: SettingsDep) -> BuildStore:
    return open_store(settings.resolved_database_url)


StoreDep = Annotated[BuildStore, Depends(store_dep)]


def require_token(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Without a configured token the API refuses everything rather than running open."""
    expected = settings.api_token.get_secret_value()
    if not expected:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the API has no token configured: set STARFORGE_API_TOKEN"
        )
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <STARFORGE_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
