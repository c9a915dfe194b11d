"""App management over HTTP: register, read, change and remove apps; a workspace token manages its own."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from starforge_dag.core import app_settings as rules
from starforge_dag.core.inputs import InvalidInput, check_text
from starforge_dag.core.models import App
from starforge_dag.github.app import GitHubApp, GitHubAppError
from starforge_dag.settings import Settings
from starforge_dag.store import AppArchived, BuildStore, NotFound

from .app_schemas import AppCreate, AppPatch, AppRemoved, AppSettings
from .deps import BODY, WORKSPACE, Principal, PrincipalDep, SettingsDep, StoreDep, access, require_token
from .schemas import AppView, Problem

_Responses = dict[int | str, dict[str, Any]]
_AUTH: _Responses = {401: {"model": Problem}, 503: {"model": Problem}}
_NOT_FOUND: _Responses = {404: {"model": Problem, "description": "No such app"}}
_INVALID: _Responses = {422: {"model": Problem, "description": "A setting breaks a rule; the detail names it"}}
_REMOVED: _Responses = {409: {"model": Problem, "description": "The app was removed"}}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_AUTH)
_GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
NULLABLE = frozenset({"dockerfile_path", "target", "build_timeout_s", "preview_label"})


def invalid(what: str, exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}: {exc}")


def find_app(store: BuildStore, workspace: str, name: str, principal: Principal) -> App:
    """Names come from the URL: a NUL or lone surrogate is the client's mistake, not a database error."""
    try:
        check_text(workspace, "workspace", max_chars=100)
        check_text(name, "app name", max_chars=100)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    if not principal.reaches(workspace):
        raise NotFound(f"no app named {name!r} in workspace {workspace!r}")
    return store.get_app(name, workspace)


def live_app(store: BuildStore, workspace: str, name: str, principal: Principal) -> App:
    app = find_app(store, workspace, name, principal)
    if app.archived:
        raise HTTPException(status.HTTP_409_CONFLICT, f"app {workspace}/{name} was removed")
    return app


def checked_settings(body: AppSettings, settings: Settings) -> dict[str, Any]:
    """The settings the body gives, each validated; a null clears a setting that may be unset."""
    out: dict[str, Any] = {}
    for field in sorted(body.model_fields_set & set(AppSettings.model_fields)):
        value = getattr(body, field)
        if value is None:
            if field not in NULLABLE:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: may not be null")
            out[field] = None
            continue
        try:
            out[field] = rules.check_setting(field, value, settings.git_policy)
        except InvalidInput as exc:
            raise invalid(field, exc) from None
    return out


def view(store: BuildStore, app: App) -> AppView:
    link = store.github().app_repo(app.id)
    return AppView.of(app, link.repo_id, link.paused_reason) if link else AppView.of(app)


@router.post(
    "/apps",
    response_model=AppView,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_INVALID,
        409: {"model": Problem, "description": "An app of that name exists in the workspace"},
        502: {"model": Problem, "description": "GitHub could not be asked about github_repo"},
        403: {"model": Problem, "description": "A workspace token registers apps in its own workspace only"},
    },
    openapi_extra=access(BODY),
)
def create_app(body: AppCreate, store: StoreDep, settings: SettingsDep, principal: PrincipalDep) -> AppView:
    """Register an app so pushes to its repository build it: give exactly one of repo_url and github_repo."""
    if not principal.reaches(body.workspace):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a workspace token registers apps in its own workspace only")
    for what, value in (("workspace", body.workspace), ("name", body.name)):
        try:
            rules.check_name(value, what)
        except InvalidInput as exc:
            raise invalid(what, exc) from None
    if (body.repo_url is None) == (body.github_repo is None):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "repo_url: give exactly one of repo_url and github_repo"
        )
    link = _github_repo(body.github_repo, settings) if body.github_repo is not None else None
    if link is not None:
        body = body.model_copy(update={"repo_url": link[2]})
        body.model_fields_set.add("repo_url")
    fields = checked_settings(body, settings)
    fields.setdefault("branch", "main")
    try:
        app = store.add_app(
            body.workspace,
            body.name,
            fields.pop("repo_url"),
            fields.pop("branch"),
            repo_full_name=link[1] if link else None,
            **{k: v for k, v in fields.items() if v is not None},
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if link is not None:
        store.github().link_app(app.id, link[0], link[1], link[3])
    return view(store, app)


def _github_repo(full_name: str, settings: Settings) -> tuple[int, str, str, int]:
    """(repo id, full name, clone URL, installation id) of a repository the GitHub App is installed on."""
    if not _GITHUB_REPO.fullmatch(full_name):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "github_repo: must be owner/name")
    if not settings.github_app_configured:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "github_repo: needs the GitHub App (STARFORGE_GITHUB_APP_ID and STARFORGE_GITHUB_APP_PRIVATE_KEY)",
        )
    app = GitHubApp(
        settings.github_app_id or 0, settings.github_app_private_key.get_secret_value(), settings.github_api_url
    )
    try:
        installation_id = app.repo_installation(full_name)
        repo = app.repository(installation_id, full_name)
    except GitHubAppError as exc:
        if exc.status == 404:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"github_repo: the GitHub App is not installed on {full_name} (or it does not exist)",
            ) from None
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"GitHub could not be asked about {full_name}: {exc}"
        ) from None
    return repo.id, repo.full_name, repo.clone_url, installation_id


@router.get("/apps/{workspace}/{app}", response_model=AppView, responses=_NOT_FOUND, openapi_extra=access(WORKSPACE))
def get_app(workspace: str, app: str, store: StoreDep, principal: PrincipalDep) -> AppView:
    """A removed app still answers, with archived_at set."""
    return view(store, find_app(store, workspace, app, principal))


@router.patch(
    "/apps/{workspace}/{app}",
    response_model=AppView,
    responses={**_NOT_FOUND, **_INVALID, **_REMOVED},
    openapi_extra=access(WORKSPACE),
)
def update_app(
    workspace: str, app: str, body: AppPatch, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> AppView:
    """Change the given settings; builds already queued keep the settings they were queued with."""
    target = live_app(store, workspace, app, principal)
    changes = checked_settings(body, settings)
    try:
        return view(store, store.update_app(target.id, changes))
    except AppArchived as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.delete(
    "/apps/{workspace}/{app}", response_model=AppRemoved, responses=_NOT_FOUND, openapi_extra=access(WORKSPACE)
)
def remove_app(workspace: str, app: str, store: StoreDep, principal: PrincipalDep) -> AppRemoved:
    """Stop the app's queued and running builds and archive it; its builds, logs and desired state stay."""
    target = find_app(store, workspace, app, principal)
    removed, stopped = store.remove_app(target.id, actor="api")
    return AppRemoved(app=view(store, removed), stopped=[b.id for b in stopped])
