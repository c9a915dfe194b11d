"""Desired state for the deployer: current state of every app, the change feed with long-poll, rollback and pins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from starforge_dag.core.inputs import InvalidInput, check_text
from starforge_dag.core.models import PRODUCTION, App, ChangeReason, DesiredChange, DesiredState
from starforge_dag.deploy.operations import rollback as rollback_to
from starforge_dag.deploy.registry import RegistryUnavailable
from starforge_dag.store import BuildStore, ChangeRefused

from ..builders.wiring import registry_auth
from .actors import request_actor
from .builds import _app
from .deps import LISTING, WORKSPACE, Principal, PrincipalDep, SettingsDep, StoreDep, access, require_token
from .schemas import Problem

POLL_S = 0.1
MAX_WAIT_S = 60.0

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    503: {"model": Problem},
    404: {"model": Problem},
}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_ERRORS)


class ChangeView(BaseModel):
    revision: int = Field(description="Global, gap-free, strictly increasing.")
    app: str = Field(description="workspace/app")
    workspace: str
    environment: str = Field(
        default=PRODUCTION, description="`production` (the app's branch) or `pr-<number>` (a pull request's preview)."
    )
    image: str | None = Field(description="The image pinned by digest: repo@sha256:…; None for a teardown.")
    image_ref: str | None = Field(description="The tag it was pushed as.")
    image_digest: str | None
    commit_sha: str
    build_id: int | None = Field(description="None for a teardown (`preview_closed`): the environment is gone.")
    reason: ChangeReason
    note: str
    actor: str
    pinned: bool = Field(description="Whether the app is pinned after this change.")
    at: datetime

    @classmethod
    def of(cls, c: DesiredChange) -> ChangeView:
        return cls(
            revision=c.revision,
            app=f"{c.workspace}/{c.app}",
            workspace=c.workspace,
            environment=c.environment,
            image=c.pinned_image,
            image_ref=c.image_ref,
            image_digest=c.image_digest,
            commit_sha=c.commit_sha,
            build_id=c.build_id,
            reason=c.reason,
            note=c.note,
            actor=c.actor,
            pinned=c.pinned,
            at=c.at,
        )


class DesiredView(BaseModel):
    app: str = Field(description="workspace/app")
    workspace: str
    environment: str = Field(default=PRODUCTION, description="`production`, or `pr-<number>` for a preview.")
    image: str = Field(description="The image pinned by digest: repo@sha256:…")
    image_ref: str
    image_digest: str
    commit_sha: str
    build_id: int
    revision: int | None = Field(description="Revision of the last change (None: unchanged since before the feed).")
    reason: str | None
    note: str | None
    actor: str | None
    pinned: bool
    held_build_id: int | None = Field(description="A newer successful build the pin holds back (desired on unpin).")
    updated_at: datetime

    @classmethod
    def of(cls, d: DesiredState) -> DesiredView:
        return cls(
            app=f"{d.workspace}/{d.app}",
            workspace=d.workspace,
            environment=d.environment,
            image=d.pinned_image,
            image_ref=d.image_ref,
            image_digest=d.image_digest,
            commit_sha=d.commit_sha,
            build_id=d.build_id,
            revision=d.revision,
            reason=d.reason,
            note=d.note,
            actor=d.actor,
            pinned=d.pinned,
            held_build_id=d.held_build_id,
            updated_at=d.updated_at,
        )


class DesiredStateList(BaseModel):
    revision: int = Field(description="The latest revision: read the feed with after=revision from here.")
    apps: list[DesiredView] = Field(description="Production: what each app's branch should run.")
    previews: list[DesiredView] = Field(
        default_factory=list, description="What each open pull request's preview environment should run."
    )


class ChangePage(BaseModel):
    after: int
    revision: int = Field(description="Pass as `after` next time: the last change returned, else `after`.")
    changes: list[ChangeView]


class Rollback(BaseModel):
    build_id: int = Field(ge=1, description="An earlier succeeded build of this app whose image is still kept.")
    note: str | None = Field(default=None, max_length=500, description="Why, for the record.")
    by: str | None = Field(default=None, max_length=100, description="Who asks (recorded as the actor api:<by>).")


class Hold(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="Why, for the record.")
    by: str | None = Field(default=None, max_length=100, description="Who asks (recorded as the actor api:<by>).")


class FeedWatcher:
    """One poll of the latest revision per API process and database, shared by every waiting request.

    A query every POLL_S while someone waits works on SQLite and Postgres and across API processes (each sees
    the others' commits); waiters wake within POLL_S of a commit.
    """

    def __init__(self, store: BuildStore):
        self.store = store
        self.latest = -1
        self._waiters = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _poll(self) -> None:
        try:
            while self._waiters:
                latest = await run_in_threadpool(self.store.latest_revision)
                if latest != self.latest:
                    self.latest = latest
                    self._changed.set()
                    self._changed = asyncio.Event()
                await asyncio.sleep(POLL_S)
        finally:
            self._task = None

    async def wait_beyond(self, after: int, timeout: float) -> None:
        """Return once a revision above `after` is committed, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters += 1
        try:
            if self._task is None:
                self._task = asyncio.create_task(self._poll())
            while self.latest <= after:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._waiters -= 1


def _watcher(request: Request, store: BuildStore) -> FeedWatcher:
    watchers: dict[str, FeedWatcher] = request.app.state.__dict__.setdefault("feed_watchers", {})
    key = str(store.engine.url)
    if key not in watchers:
        watchers[key] = FeedWatcher(store)
    return watchers[key]


_FEED_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "A workspace token asked for another workspace's feed"},
    409: {"model": Problem, "description": "`after` is beyond the latest revision"},
}


@router.get(
    "/desired-state",
    response_model=DesiredStateList | ChangePage,
    responses=_FEED_ERRORS,
    openapi_extra=access(LISTING),
)
async def desired_state_feed(
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    workspace: Annotated[
        str | None,
        Query(max_length=100, description="Only this workspace's apps and changes (a workspace token: its own)."),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description="Return the changes after this revision (the feed); omit for current state."),
    ] = None,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_S, description="With `after`: wait up to this many seconds for a change.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    environment: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^(production|all|pr-[1-9][0-9]{0,9})$",
            description="With `after`: this environment's changes (`production`, the default, so a deployer that "
            "knows only production sees only production; `pr-<number>`), or `all` for every environment's.",
        ),
    ] = None,
) -> DesiredStateList | ChangePage:
    """Without `after`: every app's desired state and the latest revision. With it: the changes after it, oldest
    first, waiting up to `wait` seconds when there are none yet.

    A workspace token reads its own workspace's apps and changes; revisions stay global, so gaps between the
    revisions it sees are other workspaces' changes.
    """
    if workspace is not None and not principal.reaches(workspace):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a workspace token reads its own workspace's feed only")
    scope = workspace or principal.workspace
    if after is None:
        states, revision = await run_in_threadpool(store.all_desired)
        apps = [DesiredView.of(s) for s in states if scope is None or s.workspace == scope]
        previews = [
            DesiredView.of(s) for s in await run_in_threadpool(store.preview_states) if scope in (None, s.workspace)
        ]
        return DesiredStateList(revision=revision, apps=apps, previews=previews)
    latest = await run_in_threadpool(store.latest_revision)
    if after > latest:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"after={after} is beyond the latest revision {latest}: read current state (GET /desired-state) again",
        )
    wanted = None if environment == "all" else environment or PRODUCTION
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        changes = await run_in_threadpool(store.changes_after, after, limit, None, scope, wanted)
        remaining = deadline - loop.time()
        if changes or remaining <= 0:
            break
        # Changes up to `latest` were looked at (for a workspace, others' may be among them): wait for newer ones.
        await _watcher(request, store).wait_beyond(latest, remaining)
        latest = await run_in_threadpool(store.latest_revision)
    return ChangePage(
        after=after, revision=changes[-1].revision if changes else after, changes=[ChangeView.of(c) for c in changes]
    )


def _note(note: str | None) -> str | None:
    try:
        return None if note is None else check_text(note, "note", max_chars=500)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


_REFUSED: dict[int | str, dict[str, Any]] = {409: {"model": Problem, "description": "The change cannot be made"}}


def _refused(action: str, target: App, exc: ChangeRefused) -> HTTPException:
    """A refused change as the 409 the caller reads: which change of which app, and why."""
    return HTTPException(status.HTTP_409_CONFLICT, f"{action} of {target.workspace}/{target.name} refused: {exc}")


def _hold_change(
    store: BuildStore,
    app: str,
    principal: Principal,
    body: Hold | None,
    action: str,
    change: Callable[[int, str, str | None], DesiredChange],
) -> ChangeView:
    """Pin and unpin: the same checks of the caller's input, one store call apart."""
    target = _app(store, app, principal)
    actor, note = request_actor(body.by if body else None), _note(body.note if body else None)
    try:
        return ChangeView.of(change(target.id, actor, note))
    except ChangeRefused as exc:
        raise _refused(action, target, exc) from None


@router.post(
    "/apps/{app:path}/rollback", response_model=ChangeView, responses=_REFUSED, openapi_extra=access(WORKSPACE)
)
def rollback(app: str, body: Rollback, store: StoreDep, settings: SettingsDep, principal: PrincipalDep) -> ChangeView:
    """Move desired state to an earlier succeeded build's image, once the registry confirms it still has it."""
    target = _app(store, app, principal)
    actor, note = request_actor(body.by), _note(body.note)
    try:
        build = store.check_rollback(target.id, body.build_id)
        change = rollback_to(store, target, build.id, actor, registry_auth(settings), note=note)
    except ChangeRefused as exc:
        raise _refused("rollback", target, exc) from None
    except RegistryUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot check the image: {exc}") from None
    return ChangeView.of(change)


@router.post("/apps/{app:path}/pin", response_model=ChangeView, responses=_REFUSED, openapi_extra=access(WORKSPACE))
def pin(app: str, store: StoreDep, principal: PrincipalDep, body: Hold | None = None) -> ChangeView:
    """Hold the app on its current image: successful builds are recorded but do not move it until unpin."""
    return _hold_change(store, app, principal, body, "pin", store.pin)


@router.post("/apps/{app:path}/unpin", response_model=ChangeView, responses=_REFUSED, openapi_extra=access(WORKSPACE))
def unpin(app: str, store: StoreDep, principal: PrincipalDep, body: Hold | None = None) -> ChangeView:
    """Release the pin; desired state moves to the newest build held meanwhile, if any."""
    return _hold_change(store, app, principal, body, "unpin", store.unpin)
