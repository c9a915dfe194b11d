"""Pull-request previews of an app: the recorded pull requests, and a person's approval of a held head commit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from starforge_dag.core.previews import MAX_PR_NUMBER
from starforge_dag.store import ChangeRefused
from starforge_dag.store.previews import PreviewRecord

from .actors import request_actor
from .apps import find_app, live_app
from .deps import WORKSPACE, PrincipalDep, StoreDep, access, require_token
from .schemas import BuildSummary, Problem

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    503: {"model": Problem},
    404: {"model": Problem, "description": "No such app"},
}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_ERRORS)
Number = Annotated[int, PathParam(ge=1, le=MAX_PR_NUMBER, description="The pull request's number.")]


class PreviewView(BaseModel):
    number: int
    environment: str = Field(description="pr-<number>")
    state: str = Field(description="open or closed")
    head_sha: str
    head_ref: str | None
    head_repo: str | None = Field(description="owner/name of the head repository, as the pull request named it.")
    head_repo_id: int | None
    fork: bool = Field(description="The head repository is not the app's: its previews never get secrets.")
    author: str | None
    author_association: str | None
    held: bool = Field(description="The head commit waits for a person's approval; nothing builds until then.")
    held_reason: str | None
    approved_sha: str | None = Field(description="The commit an approval covers (only that one).")
    approved_by: str | None
    approved_at: datetime | None
    build_id: int | None = Field(description="The latest preview build queued.")
    desired_build_id: int | None = Field(description="What the environment runs; None before a build or after close.")
    updated_at: datetime

    @classmethod
    def of(cls, p: PreviewRecord) -> PreviewView:
        return cls(
            number=p.number,
            environment=p.environment,
            state=p.state,
            head_sha=p.head_sha,
            head_ref=p.head_ref,
            head_repo=p.head_repo_full_name,
            head_repo_id=p.head_repo_id,
            fork=p.fork,
            author=p.author,
            author_association=p.author_association,
            held=p.held,
            held_reason=p.held_reason if p.held else None,
            approved_sha=p.approved_sha,
            approved_by=p.approved_by,
            approved_at=p.approved_at,
            build_id=p.build_id,
            desired_build_id=p.desired_build_id,
            updated_at=p.updated_at,
        )


class Approval(BaseModel):
    by: str | None = Field(default=None, max_length=100, description="Who approves (recorded as the actor api:<by>).")


class Approved(BaseModel):
    preview: PreviewView
    build: BuildSummary


@router.get("/apps/{workspace}/{app}/previews", response_model=list[PreviewView], openapi_extra=access(WORKSPACE))
def list_previews(workspace: str, app: str, store: StoreDep, principal: PrincipalDep) -> list[PreviewView]:
    """The app's pull requests, open and closed, and where each stands: held, approved, built, torn down."""
    target = find_app(store, workspace, app, principal)
    return [PreviewView.of(p) for p in store.previews_of(target.id)]


@router.post(
    "/apps/{workspace}/{app}/previews/{number}/approve",
    response_model=Approved,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"model": Problem, "description": "Nothing waits: unknown or closed pull request, or no held commit"},
        422: {"model": Problem, "description": "number is not a pull request number (1 to 2^31-1)"},
    },
    openapi_extra=access(WORKSPACE),
)
def approve_preview(
    workspace: str, app: str, number: Number, store: StoreDep, principal: PrincipalDep, body: Approval | None = None
) -> Approved:
    """Approve the held head commit of a pull request: its preview build is queued. The approval covers that
    commit only; a fork's preview never gets the app's secrets, approved or not."""
    target = live_app(store, workspace, app, principal)
    actor = request_actor(body.by if body else None)
    try:
        build, found = store.approve_preview(target, number, actor)
    except ChangeRefused as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"approval of {target.workspace}/{target.name}#{number} refused: {exc}"
        ) from None
    return Approved(preview=PreviewView.of(found), build=BuildSummary.of(build))
