"""Build, app and log endpoints; all need a bearer token, and a workspace token reaches its own workspace only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from starforge_dag.core.inputs import InvalidInput, check_branch, check_commit_id, check_repo_url, check_text
from starforge_dag.core.models import App, Build, DesiredState, LogLine, Trigger, utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.git.refs import RefError, RefNotFound, resolve_ref
from starforge_dag.github.app import GitHubApp, GitHubAppError
from starforge_dag.logs import follow_log, open_log_store
from starforge_dag.pages.explain import build_masker, explain_build
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, NotFound
from starforge_dag.store.github import AppRepo
from starforge_dag.variables.crypto import SecretsKeyError

from .deps import LISTING, WORKSPACE, Principal, PrincipalDep, SettingsDep, StoreDep, access, require_token
from .schemas import AppView, BuildDetail, BuildSummary, EnqueueResult, ManualBuild, Problem

_Responses = dict[int | str, dict[str, Any]]
_AUTH: _Responses = {401: {"model": Problem}, 503: {"model": Problem}}
_NOT_FOUND: _Responses = {404: {"model": Problem}}
builds_router = APIRouter(tags=["builds"], dependencies=[Depends(require_token)], responses=_AUTH)
apps_router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_AUTH)


@builds_router.get("/builds", response_model=list[BuildSummary], responses=_NOT_FOUND, openapi_extra=access(LISTING))
def list_builds(
    store: StoreDep,
    principal: PrincipalDep,
    app: Annotated[str | None, Query(description="workspace/app, or app when unique")] = None,
    build_status: Annotated[list[BuildState] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[BuildSummary]:
    """Newest first; a workspace token lists its own workspace's builds."""
    app_id = _app(store, app, principal).id if app else None
    builds = store.list_builds(app_id=app_id, limit=limit, statuses=build_status, workspace=principal.workspace)
    return [BuildSummary.of(b) for b in builds]


def scoped_build(store: BuildStore, build_id: int, principal: Principal) -> Build:
    """The build, if the caller reaches its workspace; another workspace's build answers 404 like a missing one."""
    return principal.check_build(store.get_build(build_id))


@builds_router.get(
    "/builds/{build_id}", response_model=BuildDetail, responses=_NOT_FOUND, openapi_extra=access(WORKSPACE)
)
def get_build(
    build_id: int, store: StoreDep, settings: SettingsDep, request: Request, principal: PrincipalDep
) -> BuildDetail:
    """Status, phases with timestamps, error and failing step, image, why it failed, and its page."""
    build = scoped_build(store, build_id, principal)
    explanation = None
    if build.status.terminal and build.status != BuildState.SUCCEEDED:
        try:
            masker = build_masker(store, build_id, settings.secret_box())
        except SecretsKeyError:
            masker = None  # without the secrets nothing read from the log may be shown
        if masker is not None:
            with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
                explanation = explain_build(store, logs, build_id, settings.build_network, masker)
    page_url = settings.page_links(str(request.base_url)).url(build_id, utcnow())
    return BuildDetail.of_build(build, store.transitions(build_id), store.cancel_state(build_id), explanation, page_url)


@builds_router.get(
    "/builds/{build_id}/logs",
    response_model=list[LogLine],
    responses={
        **_NOT_FOUND,
        200: {"content": {"application/x-ndjson": {}}, "description": "JSON list, or NDJSON lines with follow=true"},
    },
    openapi_extra=access(WORKSPACE),
)
def get_logs(
    build_id: int,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(description="Only lines with a greater seq")] = -1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    follow: Annotated[bool, Query(description="Stream NDJSON until the build ends")] = False,
) -> list[LogLine] | StreamingResponse:
    scoped_build(store, build_id, principal)  # 404 for an unknown build rather than an empty log
    if follow:
        return StreamingResponse(_follow(store, settings, build_id, after), media_type="application/x-ndjson")
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        return logs.read(build_id, after_seq=after, limit=limit)


def _follow(store: BuildStore, settings: Settings, build_id: int, after: int) -> Iterator[str]:
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        ended = lambda: store.get_build(build_id).status.terminal  # noqa: E731
        for line in follow_log(logs, build_id, after=after, ended=ended):
            yield line.model_dump_json() + "\n"


@builds_router.post(
    "/builds/{build_id}/cancel",
    response_model=BuildSummary,
    responses={
        **_NOT_FOUND,
        202: {"model": BuildSummary, "description": "Running build asked to stop"},
        409: {"model": Problem, "description": "Build already ended"},
    },
    openapi_extra=access(WORKSPACE),
)
def cancel_build(build_id: int, store: StoreDep, response: Response, principal: PrincipalDep) -> BuildSummary:
    """A queued build is canceled at once (200); a running one is asked to stop (202) and ends canceled."""
    scoped_build(store, build_id, principal)
    build = store.request_cancel(build_id, actor="api", reason="canceled via API")
    if not build.status.terminal:
        response.status_code = status.HTTP_202_ACCEPTED
    return BuildSummary.of(build)


@apps_router.get("/apps", response_model=list[AppView], openapi_extra=access(LISTING))
def list_apps(store: StoreDep, principal: PrincipalDep) -> list[AppView]:
    """Every app; a workspace token lists its own workspace's."""
    links = {link.app_id: link for link in store.github().app_repos()}
    return [
        AppView.of(a, links[a.id].repo_id, links[a.id].paused_reason) if a.id in links else AppView.of(a)
        for a in store.list_apps()
        if principal.reaches(a.workspace)
    ]


@apps_router.post(
    "/apps/{app:path}/builds",
    response_model=EnqueueResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_NOT_FOUND,
        200: {"model": EnqueueResult, "description": "An active build of this commit already exists"},
        400: {"model": Problem, "description": "Not a branch name or full commit id, or a NUL/surrogate in it"},
        409: {"model": Problem, "description": "The app was removed or is paused"},
        422: {"model": Problem, "description": "The app's repository URL is not allowed by the git policy"},
        502: {"model": Problem, "description": "The repository could not be asked for the branch"},
    },
    openapi_extra=access(WORKSPACE),
)
def manual_build(
    app: str,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    principal: PrincipalDep,
    body: ManualBuild | None = None,
) -> EnqueueResult:
    """Queue a build of a branch head or an exact commit; a commit already building is joined, not rebuilt."""
    target = _app(store, app, principal)
    if target.archived:
        raise HTTPException(status.HTTP_409_CONFLICT, f"app {target.workspace}/{target.name} was removed")
    link = store.github().app_repo(target.id)
    if link is not None and link.paused_reason:
        raise HTTPException(status.HTTP_409_CONFLICT, f"app {target.workspace}/{target.name} is {link.paused_reason}")
    try:
        requested = check_text(body.ref, "ref", max_chars=255) if body and body.ref is not None else None
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    if link is not None and link.installation_id is not None and settings.github_app_configured:
        ref, sha = _resolve_through_app(link, requested or target.branch, settings)
    else:
        ref, sha = _resolve(target, requested or target.branch, settings)
    outcome = store.enqueue(
        target, ref, sha, trigger=Trigger.MANUAL, actor="api", no_cache=bool(body and body.no_cache)
    )
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return EnqueueResult(created=outcome.created, build=BuildSummary.of(outcome.build))


def _app(store: BuildStore, name: str, principal: Principal) -> App:
    """`workspace/app`, or `app` alone when unique (for a workspace token: in its workspace).

    Names come from the URL: a NUL or lone surrogate is the client's mistake, not a database error.
    """
    try:
        check_text(name, "app name", max_chars=201)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    if principal.platform:
        return store.get_app(name)
    workspace, _, short = name.rpartition("/")
    if workspace and not principal.reaches(workspace):
        raise NotFound(f"no app named {short!r} in workspace {workspace!r}")
    return principal.check_app(store.get_app(short, principal.workspace))


def _resolve_through_app(link: AppRepo, ref: str, settings: Settings) -> tuple[str, str]:
    """A private repository's branch head, asked of GitHub as the App's installation (no token-bearing git URL)."""
    try:
        return check_commit_id(ref), ref
    except InvalidInput:
        pass
    try:
        branch = check_branch(ref.removeprefix("refs/heads/"))
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    app = GitHubApp(
        settings.github_app_id or 0, settings.github_app_private_key.get_secret_value(), settings.github_api_url
    )
    try:
        head = app.branch_head(link.installation_id or 0, link.full_name or "", branch)
    except GitHubAppError as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"GitHub could not be asked for branch {branch!r}: {exc}"
        ) from None
    if head is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch!r} not found in {link.full_name}")
    return branch, head


def _resolve(app: App, ref: str, settings: Settings) -> tuple[str, str]:
    policy = settings.git_policy
    try:
        check_repo_url(app.repo_url, policy)
    except InvalidInput as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"app {app.workspace}/{app.name} cannot be built: {exc}"
        ) from None
    try:
        return resolve_ref(app.repo_url, ref, policy, settings.git_timeout_s, settings.git_host_env)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    except RefNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except RefError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None


@apps_router.get(
    "/apps/{app:path}/desired-state",
    response_model=DesiredState,
    responses=_NOT_FOUND,
    openapi_extra=access(WORKSPACE),
)
def desired_state(app: str, store: StoreDep, principal: PrincipalDep) -> DesiredState:
    """The image the deployer should run: the newest commit built successfully."""
    target = _app(store, app, principal)
    state = store.desired_state(target.id)
    if state is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"app {target.workspace}/{target.name} has no successful build yet"
        )
    return state
