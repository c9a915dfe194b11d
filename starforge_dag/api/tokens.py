"""Workspace tokens over HTTP: the platform makes, lists and revokes them; a token is shown once, when made."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from starforge_dag.core import tokens
from starforge_dag.core.app_settings import check_name
from starforge_dag.core.inputs import InvalidInput, check_text
from starforge_dag.store.tokens import WorkspaceToken

from .deps import PLATFORM, PrincipalDep, RowId, StoreDep, access, require_token
from .schemas import Problem

_Responses = dict[int | str, dict[str, Any]]
_ERRORS: _Responses = {
    401: {"model": Problem},
    403: {"model": Problem, "description": "Only the platform token manages workspace tokens"},
    503: {"model": Problem},
}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_ERRORS)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for (e.g. `ci`), for the list.")


class TokenView(BaseModel):
    id: int
    workspace: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Its latest use, to the minute.")
    revoked_at: datetime | None = Field(description="Set once revoked: the token then answers 401.")

    @classmethod
    def of(cls, token: WorkspaceToken) -> TokenView:
        return cls(
            id=token.id,
            workspace=token.workspace,
            name=token.name,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class TokenCreated(TokenView):
    token: str = Field(description="The bearer token: shown this once, kept only as its hash.")


def _workspace(workspace: str) -> str:
    try:
        return check_name(workspace, "workspace")
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


@router.post(
    "/workspaces/{workspace}/tokens",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=access(PLATFORM),
)
def create_token(workspace: str, body: TokenCreate, store: StoreDep, principal: PrincipalDep) -> TokenCreated:
    """A new token that reaches this workspace only: its apps, builds, logs, variables, desired state and feed."""
    principal.require_platform("making workspace tokens")
    try:
        name = check_text(body.name, "name", max_chars=100)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    secret = tokens.new_token()
    made = store.add_token(_workspace(workspace), name, tokens.token_hash(secret))
    return TokenCreated(**TokenView.of(made).model_dump(), token=secret)


@router.get("/workspaces/{workspace}/tokens", response_model=list[TokenView], openapi_extra=access(PLATFORM))
def list_tokens(workspace: str, store: StoreDep, principal: PrincipalDep) -> list[TokenView]:
    """The workspace's tokens, revoked ones too, oldest first; never a token itself."""
    principal.require_platform("listing workspace tokens")
    return [TokenView.of(t) for t in store.tokens(_workspace(workspace))]


@router.delete(
    "/workspaces/{workspace}/tokens/{token_id}",
    response_model=TokenView,
    responses={404: {"model": Problem, "description": "No such token in the workspace"}},
    openapi_extra=access(PLATFORM),
)
def revoke_token(workspace: str, token_id: RowId, store: StoreDep, principal: PrincipalDep) -> TokenView:
    """Revoke at once: the next request with it answers 401."""
    principal.require_platform("revoking workspace tokens")
    return TokenView.of(store.revoke_token(_workspace(workspace), token_id))
