"""A workspace's webhook endpoints over HTTP: register (the signing secret is shown once), list, remove, and read
the delivery log. Endpoint URLs must lead to public addresses (checked again at every send)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from starforge_dag.core.app_settings import check_name
from starforge_dag.core.inputs import InvalidInput
from starforge_dag.core.notifications import EVENTS
from starforge_dag.notify import UnsafeUrl, check_endpoint_url, new_secret, resolve_checked
from starforge_dag.store.notifications import Attempt, Endpoint

from .deps import WORKSPACE, Principal, PrincipalDep, RowId, SettingsDep, StoreDep, access, require_token
from .schemas import Problem

_Responses = dict[int | str, dict[str, Any]]
_ERRORS: _Responses = {
    401: {"model": Problem},
    404: {"model": Problem, "description": "No such endpoint in the workspace"},
    503: {"model": Problem},
}
router = APIRouter(tags=["apps"], dependencies=[Depends(require_token)], responses=_ERRORS)
MAX_ENDPOINTS = 20


class EndpointCreate(BaseModel):
    url: str = Field(max_length=2000, description="An https:// (or http://) URL whose host has public addresses.")
    events: list[str] = Field(
        min_length=1, max_length=len(EVENTS), description=f"Events to send: any of {', '.join(EVENTS)}."
    )


class EndpointView(BaseModel):
    id: int
    workspace: str
    url: str
    events: list[str]
    created_at: datetime
    enabled: bool = Field(description="False once disabled after repeated failed deliveries.")
    disabled_at: datetime | None = None
    disabled_reason: str | None = Field(default=None, description="Why it was disabled, with the last error.")
    failures: int = Field(description="Failed deliveries in a row.")

    @classmethod
    def of(cls, e: Endpoint) -> EndpointView:
        return cls(
            id=e.id,
            workspace=e.workspace,
            url=e.url,
            events=list(e.events),
            created_at=e.created_at,
            enabled=e.disabled_at is None,
            disabled_at=e.disabled_at,
            disabled_reason=e.disabled_reason,
            failures=e.failures,
        )


class EndpointCreated(EndpointView):
    secret: str = Field(
        description="The signing secret (`whsec_…`), shown this once: verify `webhook-signature` with it."
    )


class DeliveryView(BaseModel):
    message_id: str = Field(description="The `webhook-id` header: the same on every attempt of one message.")
    event: str
    at: datetime
    status_code: int | None = Field(description="The endpoint's HTTP status; None when it did not answer.")
    error: str | None
    duration_ms: int
    outcome: str | None = Field(description="delivered, dropped (endpoint disabled or removed), or None: pending.")

    @classmethod
    def of(cls, a: Attempt) -> DeliveryView:
        return cls(
            message_id=a.message_id,
            event=a.event,
            at=a.at,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
            outcome=a.outcome,
        )


def _workspace(workspace: str, principal: Principal) -> str:
    try:
        checked = check_name(workspace, "workspace")
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    principal.check_workspace(checked)
    return checked


def _events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"events: unknown {unknown[:5]}; known: {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(events))


@router.post(
    "/workspaces/{workspace}/webhooks",
    response_model=EndpointCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"model": Problem, "description": f"The workspace already has {MAX_ENDPOINTS} endpoints"},
        422: {"model": Problem, "description": "The URL is malformed, does not resolve or is not public"},
    },
    openapi_extra=access(WORKSPACE),
)
def create_endpoint(
    workspace: str, body: EndpointCreate, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> EndpointCreated:
    """Send the given events to the URL, signed per Standard Webhooks with a secret of its own."""
    ws = _workspace(workspace, principal)
    events = _events(body.events)
    try:
        resolve_checked(check_endpoint_url(body.url), settings.webhook_addresses)
    except UnsafeUrl as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"url: {exc}") from None
    if len(store.endpoints(ws)) >= MAX_ENDPOINTS:
        raise HTTPException(status.HTTP_409_CONFLICT, f"workspace {ws!r} already has {MAX_ENDPOINTS} endpoints")
    secret = new_secret()
    made = store.add_endpoint(ws, body.url, events, settings.secret_box().seal(secret))
    return EndpointCreated(**EndpointView.of(made).model_dump(), secret=secret)


@router.get("/workspaces/{workspace}/webhooks", response_model=list[EndpointView], openapi_extra=access(WORKSPACE))
def list_endpoints(workspace: str, store: StoreDep, principal: PrincipalDep) -> list[EndpointView]:
    """The workspace's endpoints, disabled ones with the reason; never a secret."""
    return [EndpointView.of(e) for e in store.endpoints(_workspace(workspace, principal))]


@router.delete(
    "/workspaces/{workspace}/webhooks/{endpoint_id}", response_model=EndpointView, openapi_extra=access(WORKSPACE)
)
def remove_endpoint(workspace: str, endpoint_id: RowId, store: StoreDep, principal: PrincipalDep) -> EndpointView:
    """Stop at once: undelivered messages are dropped; the delivery log stays readable until then."""
    return EndpointView.of(store.remove_endpoint(_workspace(workspace, principal), endpoint_id))


@router.get(
    "/workspaces/{workspace}/webhooks/{endpoint_id}/deliveries",
    response_model=list[DeliveryView],
    openapi_extra=access(WORKSPACE),
)
def endpoint_deliveries(
    workspace: str,
    endpoint_id: RowId,
    store: StoreDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryView]:
    """Every attempt, newest first: status, error and time taken."""
    return [DeliveryView.of(a) for a in store.deliveries(_workspace(workspace, principal), endpoint_id, limit)]
