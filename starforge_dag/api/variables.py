"""Variables and secrets of apps and workspaces over HTTP: list, set (with an optional rebuild), unset.

A secret's value goes in and never comes out: answers carry its name, fingerprint, version, time and actor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from starforge_dag.core.inputs import InvalidInput, check_text
from starforge_dag.core.models import App, Trigger
from starforge_dag.store import AppArchived, BuildStore, NewValue
from starforge_dag.variables.rules import InvalidVariable, TooManyVariables

from .actors import request_actor
from .app_schemas import VariableChange, VariableView, VariableWrite
from .apps import find_app, live_app
from .deps import WORKSPACE, Principal, PrincipalDep, SettingsDep, StoreDep, access, require_token
from .schemas import BuildSummary, EnqueueResult, Problem

_Responses = dict[int | str, dict[str, Any]]
_AUTH: _Responses = {401: {"model": Problem}, 503: {"model": Problem}}
_NOT_FOUND: _Responses = {404: {"model": Problem, "description": "No such app, workspace or variable"}}
_WRITE: _Responses = {
    **_NOT_FOUND,
    409: {"model": Problem, "description": "The app was removed, or the scope already holds 500 variables"},
    422: {"model": Problem, "description": "Name or value breaks a rule (the detail names it); nothing was written"},
}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_AUTH)
By = Annotated[str | None, Query(max_length=100, description="Who asks (recorded as the actor api:<by>).")]


def _workspace(workspace: str, principal: Principal) -> str:
    try:
        checked = check_text(workspace, "workspace", max_chars=100)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    principal.check_workspace(checked)
    return checked


def _set(
    store: BuildStore, settings: SettingsDep, workspace: str, app: str | None, name: str, body: VariableWrite
) -> list[VariableView]:
    try:
        written = store.set_variables(
            workspace,
            app,
            [NewValue(name, body.value, body.secret, body.for_previews)],
            request_actor(body.by),
            settings.secret_box(),
        )
    except InvalidVariable as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except (TooManyVariables, AppArchived) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return [VariableView.of(v) for v in written]


def rebuild(store: BuildStore, app: App, actor: str) -> EnqueueResult | None:
    """Queue a build of the app's current commit (its desired state's, else its latest build's); None without one."""
    desired = store.desired_state(app.id)
    if desired is not None:
        ref, sha = store.get_build(desired.build_id).ref, desired.commit_sha
    else:
        latest = [b for b in store.list_builds(app_id=app.id, limit=100) if not b.preview][:1]  # production's
        if not latest:
            return None
        ref, sha = latest[0].ref, latest[0].commit_sha
    outcome = store.enqueue(app, ref, sha, trigger=Trigger.MANUAL, actor=actor)
    return EnqueueResult(created=outcome.created, build=BuildSummary.of(outcome.build))


@router.get(
    "/apps/{workspace}/{app}/variables",
    response_model=list[VariableView],
    responses=_NOT_FOUND,
    openapi_extra=access(WORKSPACE),
)
def list_app_variables(workspace: str, app: str, store: StoreDep, principal: PrincipalDep) -> list[VariableView]:
    """The app's own variables (its workspace's are listed under /workspaces/{workspace}/variables)."""
    target = find_app(store, workspace, app, principal)
    return [VariableView.of(v) for v in store.variables(target.workspace, target.name)]


@router.put(
    "/apps/{workspace}/{app}/variables/{name}",
    response_model=VariableChange,
    responses=_WRITE,
    openapi_extra=access(WORKSPACE),
)
def set_app_variable(
    workspace: str,
    app: str,
    name: str,
    body: VariableWrite,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> VariableChange:
    """A new version of the variable; with rebuild: true, then a build of the app's current commit."""
    target = live_app(store, workspace, app, principal)
    (written,) = _set(store, settings, target.workspace, target.name, name, body)
    builds = []
    if body.rebuild and (queued := rebuild(store, target, request_actor(body.by))) is not None:
        builds.append(queued)
    return VariableChange(variable=written, builds=builds)


@router.delete(
    "/apps/{workspace}/{app}/variables/{name}",
    response_model=VariableView,
    responses=_WRITE,
    openapi_extra=access(WORKSPACE),
)
def unset_app_variable(
    workspace: str, app: str, name: str, store: StoreDep, principal: PrincipalDep, by: By = None
) -> VariableView:
    """Record the removal as the variable's newest version."""
    target = live_app(store, workspace, app, principal)
    return VariableView.of(store.unset_variable(target.workspace, target.name, name, request_actor(by)))


@router.get(
    "/workspaces/{workspace}/variables",
    response_model=list[VariableView],
    responses=_NOT_FOUND,
    openapi_extra=access(WORKSPACE),
)
def list_workspace_variables(workspace: str, store: StoreDep, principal: PrincipalDep) -> list[VariableView]:
    """Every app of the workspace gets these, unless it sets one of the same name."""
    return [VariableView.of(v) for v in store.variables(_workspace(workspace, principal))]


@router.put(
    "/workspaces/{workspace}/variables/{name}",
    response_model=VariableChange,
    responses=_WRITE,
    openapi_extra=access(WORKSPACE),
)
def set_workspace_variable(
    workspace: str, name: str, body: VariableWrite, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> VariableChange:
    """A new version of the workspace's variable; with rebuild: true, a build of every live app's current commit."""
    (written,) = _set(store, settings, _workspace(workspace, principal), None, name, body)
    builds = []
    if body.rebuild:
        for app in store.list_apps():
            if (
                app.workspace == workspace
                and not app.archived
                and (queued := rebuild(store, app, request_actor(body.by)))
            ):
                builds.append(queued)
    return VariableChange(variable=written, builds=builds)


@router.delete(
    "/workspaces/{workspace}/variables/{name}",
    response_model=VariableView,
    responses=_WRITE,
    openapi_extra=access(WORKSPACE),
)
def unset_workspace_variable(
    workspace: str, name: str, store: StoreDep, principal: PrincipalDep, by: By = None
) -> VariableView:
    return VariableView.of(store.unset_variable(_workspace(workspace, principal), None, name, request_actor(by)))
