"""Request dependencies: settings (read lazily, once per app), the build store, and who the bearer token is.

Two kinds of caller: the platform (STARFORGE_API_TOKEN) reaches everything; a workspace token reaches only its
workspace, where another workspace's resources answer 404 as if they did not exist, and platform-wide operations
answer 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from starforge_dag.core import tokens
from starforge_dag.core.models import App, Build, utcnow
from starforge_dag.settings import Settings, get_settings
from starforge_dag.store import BuildStore, NotFound, open_store

_bearer = HTTPBearer(auto_error=False, description="STARFORGE_API_TOKEN, or a workspace token (sfw_…)")

# How each endpoint treats a workspace token, declared in its OpenAPI operation as `x-starforge-access`.
ACCESS_KEY = "x-starforge-access"
WORKSPACE = "workspace"  # the path names a workspace's resource: another workspace's answers 404
LISTING = "listing"  # lists across workspaces: a workspace token sees its own workspace's entries only
PLATFORM = "platform"  # platform-wide: a workspace token answers 403
BODY = "body"  # the body names the workspace (creating an app): another workspace's answers 403


def access(kind: str) -> dict[str, Any]:
    """The operation's declared access, for `openapi_extra=`; the token matrix test holds every endpoint to it."""
    return {ACCESS_KEY: kind}


async def settings_dep(request: Request) -> Settings:
    """The settings given to create_app, else the environment as read on the first request.

    A coroutine, so no request waits for a worker thread only to be handed the settings.
    """
    state = request.app.state
    if state.settings is None:
        state.settings = get_settings()
    return state.settings


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def store_dep(settings: SettingsDep) -> BuildStore:
    return open_store(settings.resolved_database_url)


StoreDep = Annotated[BuildStore, Depends(store_dep)]
# A token's or an endpoint's id from the URL: 32-bit in the database, so a larger one is a 422, not a database error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass(frozen=True)
class Principal:
    """Who asks: the platform (workspace None) or one workspace's token."""

    workspace: str | None = None
    token_id: int | None = None

    @property
    def platform(self) -> bool:
        return self.workspace is None

    def reaches(self, workspace: str) -> bool:
        return self.workspace is None or self.workspace == workspace

    def require_platform(self, what: str) -> None:
        if not self.platform:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{what} needs the platform token (STARFORGE_API_TOKEN)")

    def check_workspace(self, workspace: str) -> None:
        """Another workspace is answered as if it did not exist."""
        if not self.reaches(workspace):
            raise NotFound(f"no workspace named {workspace!r}")

    def check_app(self, app: App) -> App:
        if not self.reaches(app.workspace):
            raise NotFound(f"no app named {app.name!r} in workspace {app.workspace!r}")
        return app

    def check_build(self, build: Build) -> Build:
        if not self.reaches(build.workspace):
            raise NotFound(f"no build with id {build.id}")
        return build


_UNAUTHORIZED = "missing or wrong bearer token (Authorization: Bearer <STARFORGE_API_TOKEN or a workspace token>)"


def require_token(
    settings: SettingsDep,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Without a configured platform token the API refuses everything rather than running open."""
    expected = settings.api_token.get_secret_value()
    if not expected:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the API has no token configured: set STARFORGE_API_TOKEN"
        )
    given = credentials.credentials if credentials else ""
    if hmac.compare_digest(given.encode(), expected.encode()):
        return Principal()
    if tokens.looks_like_token(given):
        found = store.live_token(tokens.token_hash(given))
        if found is not None and tokens.same_hash(found.token_hash, given):
            now = utcnow()
            if tokens.due_for_touch(found.last_used_at, now):
                store.touch_token(found.id, now)
            return Principal(workspace=found.workspace, token_id=found.id)
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, _UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


PrincipalDep = Annotated[Principal, Depends(require_token)]
