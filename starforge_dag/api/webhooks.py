"""`POST /webhooks/github`: verify, decide per app, record the delivery and enqueue; never clone here."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from starforge_dag.core.models import App
from starforge_dag.github.push import PushEvent
from starforge_dag.github.rules import decide
from starforge_dag.github.signature import verify_signature
from starforge_dag.store import open_store

from .deps import SettingsDep
from .schemas import IgnoredApp, Problem, WebhookResult

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
MAX_DELIVERY_ID = 100  # GitHub sends a GUID; the deliveries table keys on at most this many characters

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Missing header, malformed JSON or not a push payload"},
    401: {"model": Problem, "description": "Missing or wrong X-Hub-Signature-256"},
    413: {"model": Problem, "description": "Body larger than STARFORGE_MAX_BODY_BYTES"},
    503: {"model": Problem, "description": "No webhook secret configured"},
}


@router.post(
    "/webhooks/github",
    response_model=WebhookResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": WebhookResult, "description": "ping, ignored push or redelivery"}, **_ERRORS},
    summary="GitHub webhook receiver",
)
async def github_webhook(
    request: Request,
    response: Response,
    settings: SettingsDep,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> WebhookResult:
    """Answer fast: 202 with the queued builds, 200 when nothing is to build, 401 unless signed with our secret."""
    secret = settings.github_webhook_secret.get_secret_value().encode()
    if not secret:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "no webhook secret configured: set STARFORGE_GITHUB_WEBHOOK_SECRET",
        )
    body = await _read_body(request, settings.max_body_bytes)
    if not verify_signature(secret, body, x_hub_signature_256):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid X-Hub-Signature-256")
    if not x_github_event:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "missing X-GitHub-Event header")
    if x_github_event == "ping":
        response.status_code = status.HTTP_200_OK
        return WebhookResult(status="pong", event="ping", delivery=x_github_delivery)
    if x_github_event != "push":
        return WebhookResult(
            status="ignored",
            event=x_github_event,
            delivery=x_github_delivery,
            reason=f"event {x_github_event!r} is not handled; only push builds",
        )
    if not x_github_delivery or len(x_github_delivery) > MAX_DELIVERY_ID:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"missing X-GitHub-Delivery header or longer than {MAX_DELIVERY_ID} characters"
        )
    event = _parse_push(body)
    result = await run_in_threadpool(_handle_push, settings.resolved_database_url, x_github_delivery, event)
    if result.status != "queued":
        response.status_code = status.HTTP_200_OK
    return result


async def _read_body(request: Request, limit: int) -> bytes:
    """Refuse by Content-Length before reading, and again while reading in case the header lied or was absent."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid Content-Length header")
        if int(declared) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {limit} bytes")
    return bytes(body)


def _parse_push(body: bytes) -> PushEvent:
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed JSON body: {exc}") from None
    try:
        return PushEvent.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not a push payload: bad or missing {fields}") from None


def _handle_push(database_url: str, delivery: str, event: PushEvent) -> WebhookResult:
    """Every verified push delivery is recorded, so a redelivery is answered from the record and never re-queued.

    The store is opened here, after the signature check, so unsigned requests never reach the database.
    """
    store = open_store(database_url)
    apps = store.apps_for_repo(event.repository.full_name, _url_variants(event.repository.urls))
    wanted: list[tuple[App, str, str]] = []
    ignored: list[IgnoredApp] = []
    for app in apps:
        decision = decide(app, event)
        if decision.build:
            wanted.append((app, event.branch or event.ref, event.after))
        else:
            ignored.append(IgnoredApp(app=f"{app.workspace}/{app.name}", reason=decision.reason))
    outcome = store.record_delivery(delivery, "push", wanted, actor=event.actor)
    builds = [b.id for b in outcome.builds]
    common: dict[str, Any] = dict(event="push", delivery=delivery, builds=builds, ignored=ignored)
    if outcome.redelivery:
        return WebhookResult(status="redelivery", created=[], reason="delivery already processed", **common)
    if not wanted:
        reason = (
            "; ".join(f"{i.app}: {i.reason}" for i in ignored)
            if ignored
            else f"no app tracks repository {event.repository.full_name}"
        )
        return WebhookResult(status="ignored", reason=reason, **common)
    log.info("delivery %s queued builds %s (new: %s)", delivery, builds, outcome.created)
    return WebhookResult(status="queued", created=outcome.created, **common)


def _url_variants(urls: list[str]) -> list[str]:
    """Apps may store a repository URL with or without `.git` and a trailing slash."""
    variants: list[str] = []
    for url in urls:
        bare = url.rstrip("/").removesuffix(".git")
        variants += [url, bare, bare + ".git", bare + "/"]
    return list(dict.fromkeys(variants))
