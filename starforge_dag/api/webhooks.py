"""`POST /webhooks/github`: verify, decide per app, record the delivery and enqueue; never clone here."""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from starforge_dag.core.models import App
from starforge_dag.github.pull_request import PullRequestEvent, invalid_pull_request, parse_pull_request
from starforge_dag.github.push import PushEvent, UndecodablePush, invalid_push, parse_push
from starforge_dag.github.rules import decide
from starforge_dag.github.signature import verify_signature
from starforge_dag.github.sync import apply_installation_event, apps_for_push
from starforge_dag.store import open_store

from .deps import SettingsDep
from .schemas import IgnoredApp, Problem, WebhookResult
from .webhook_checks import handle_check_suite

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
INSTALLATION_EVENTS = ("installation", "installation_repositories")
MAX_DELIVERY_ID = 100  # GitHub sends a GUID; the deliveries table keys on at most this many characters
_DELIVERY_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_DELIVERY_ID}}}")
_EVENT = re.compile(r"[a-z_]{1,50}")
FORM = "application/x-www-form-urlencoded"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "Missing or invalid header, or a body that is not a readable push payload "
        "(malformed or too deeply nested JSON, wrong types, NUL or lone surrogates, over-long fields)",
    },
    401: {"model": Problem, "description": "Missing or wrong X-Hub-Signature-256"},
    413: {"model": Problem, "description": "Body larger than STARFORGE_MAX_BODY_BYTES"},
    415: {"model": Problem, "description": f"Content type other than application/json or {FORM}"},
    422: {
        "model": Problem,
        "description": "A push whose `after` is not a full commit id or whose `ref` is not a valid git ref, or a "
        "check_suite whose `head_sha` is not, or a pull request whose head is not a full commit id or whose base "
        "repository is not the event's; recorded as an ignored delivery, nothing queued",
    },
    503: {"model": Problem, "description": "No webhook secret configured"},
}


@router.post(
    "/webhooks/github",
    response_model=WebhookResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {
            "model": WebhookResult,
            "description": "pong, ignored (an event other than push, or a push that builds nothing), recorded "
            "(installation and check_suite events) or redelivery",
        },
        202: {"model": WebhookResult, "description": "push or pull request that queued or joined builds"},
        **_ERRORS,
    },
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
    """Answer fast: 202 with the queued builds, 200 when nothing is to build, 401 unless signed with our secret.

    JSON and form-encoded (`payload=<json>`) deliveries are both signed over the raw body, as GitHub signs them.
    """
    secret = settings.github_webhook_secret.get_secret_value().encode()
    if not secret:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "no webhook secret configured: set STARFORGE_GITHUB_WEBHOOK_SECRET",
        )
    body = await _read_body(request, settings.max_body_bytes)
    if not verify_signature(secret, body, x_hub_signature_256):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid X-Hub-Signature-256")
    if not x_github_event or not _EVENT.fullmatch(x_github_event):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "missing or invalid X-GitHub-Event header")
    delivery = x_github_delivery if x_github_delivery and _DELIVERY_ID.fullmatch(x_github_delivery) else None
    response.status_code = status.HTTP_200_OK
    if x_github_event == "ping":
        return WebhookResult(status="pong", event="ping", delivery=delivery)
    if x_github_event in INSTALLATION_EVENTS:
        text = _payload_text(body, request.headers.get("content-type"))
        return await run_in_threadpool(
            _handle_installation, settings.resolved_database_url, x_github_event, delivery, text
        )
    if x_github_event == "check_suite":
        if delivery is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "missing or invalid X-GitHub-Delivery header")
        try:
            text = _payload_text(body, request.headers.get("content-type"))
        except UndecodablePush as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return await run_in_threadpool(handle_check_suite, settings, delivery, text)
    if x_github_event not in ("push", "pull_request"):
        return WebhookResult(
            status="ignored",
            event=x_github_event,
            delivery=delivery,
            reason=f"event {x_github_event!r} is not handled; only push and pull_request build (check_suite releases waiting builds)",
        )
    if delivery is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"missing X-GitHub-Delivery header, or not 1-{MAX_DELIVERY_ID} characters of letters, digits, '.', '_', ':', '-'",
        )
    if x_github_event == "pull_request":
        result = await pull_request_webhook(settings.resolved_database_url, delivery, body, request)
        if result.status == "queued":
            response.status_code = status.HTTP_202_ACCEPTED
        return result
    try:
        event = parse_push(_payload_text(body, request.headers.get("content-type")))
    except UndecodablePush as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    problem = invalid_push(event)
    if problem is not None:
        await run_in_threadpool(_record_refused, settings.resolved_database_url, delivery)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"push names nothing to build: {problem}")
    result = await run_in_threadpool(_handle_push, settings.resolved_database_url, delivery, event)
    if result.status == "queued":
        response.status_code = status.HTTP_202_ACCEPTED
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


async def pull_request_webhook(database_url: str, delivery: str, body: bytes, request: Request) -> WebhookResult:
    """A signed pull_request delivery: decoded, checked, then recorded and acted on for every app of the repository."""
    try:
        event = parse_pull_request(_payload_text(body, request.headers.get("content-type")))
    except UndecodablePush as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    problem = invalid_pull_request(event)
    if problem is not None:
        await run_in_threadpool(_record_refused, database_url, delivery, "pull_request")
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"pull request names nothing to build: {problem}")
    return await run_in_threadpool(handle_pull_request, database_url, delivery, event)


def _payload_text(body: bytes, content_type: str | None) -> str:
    """The JSON text of a delivery: the body itself, or the single `payload` field of a form-encoded body."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media not in ("application/json", FORM):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"content type {media[:60]!r}: use application/json or {FORM}"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UndecodablePush("body is not UTF-8") from None
    if media == "application/json":
        return text
    try:
        fields = parse_qs(text, strict_parsing=True, errors="strict", max_num_fields=10)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UndecodablePush(f"malformed form body: {str(exc)[:200]}") from None
    payload = fields.get("payload", [])
    if len(payload) != 1:
        raise UndecodablePush("form-encoded delivery needs exactly one `payload` field")
    return payload[0]


def _record_refused(database_url: str, delivery: str, event: str = "push") -> None:
    """A signed push that names nothing buildable is kept as an ignored delivery (no builds), for the record."""
    open_store(database_url).record_delivery(delivery, event, [])


def _handle_push(database_url: str, delivery: str, event: PushEvent) -> WebhookResult:
    """Every verified push delivery is recorded, so a redelivery is answered from the record and never re-queued.

    The store is opened here, after the signature check, so unsigned requests never reach the database.
    """
    store = open_store(database_url)
    repo = event.repository
    lookup = store.lookup_push(delivery, repo.full_name, _url_variants(repo.urls), repo.id, event.after)
    targets = apps_for_push(lookup, repo.id, event.after)
    removed = [app for app in targets.apps if app.archived]
    if removed and len(removed) == len(targets.apps):
        names = ", ".join(f"{app.workspace}/{app.name}" for app in removed)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"app {names} was removed: pushes no longer build it")
    targets.apps = [app for app in targets.apps if not app.archived]
    targets.left_out += [(app, "the app was removed") for app in removed]
    wanted: list[tuple[App, str, str]] = []
    seen: list[tuple[int, str, str]] = []
    ignored = [IgnoredApp(app=f"{app.workspace}/{app.name}", reason=why) for app, why in targets.left_out]
    for app in targets.apps:
        decision = decide(app, event)
        if not event.is_deletion:
            seen.append((app.id, event.after, "push" if decision.build else "ignored"))
        if decision.build:
            wanted.append((app, event.branch or event.ref, event.after))
        else:
            ignored.append(IgnoredApp(app=f"{app.workspace}/{app.name}", reason=decision.reason))
    if lookup.recorded is not None:  # answered from the record: nothing is written again
        redelivery, builds = True, lookup.recorded
    else:
        outcome = store.record_delivery(
            delivery, "push", wanted, actor=event.actor, commit_time=event.commit_time, forced=event.forced, seen=seen
        )
        redelivery, builds = outcome.redelivery, [b.id for b in outcome.builds]
    if redelivery:
        return WebhookResult(
            status="redelivery",
            event="push",
            delivery=delivery,
            builds=builds,
            ignored=ignored,
            created=[],
            reason="delivery already processed",
        )
    if not wanted:
        reason = (
            "; ".join(f"{i.app}: {i.reason}" for i in ignored)
            if ignored
            else f"no app tracks repository {event.repository.full_name}"
        )
        return WebhookResult(
            status="ignored", event="push", delivery=delivery, builds=builds, ignored=ignored, reason=reason
        )
    log.info("delivery %s queued builds %s (new: %s)", delivery, builds, outcome.created)
    return WebhookResult(
        status="queued", event="push", delivery=delivery, builds=builds, ignored=ignored, created=outcome.created
    )


def handle_pull_request(database_url: str, delivery: str, event: PullRequestEvent) -> WebhookResult:
    """Every app of the base repository with previews on acts on the event; others are listed as ignored."""
    store = open_store(database_url)
    pull = event.facts()
    repo = event.repository
    lookup = store.lookup_push(delivery, repo.full_name, _url_variants(repo.urls), repo.id, pull.head_sha)
    targets = apps_for_push(lookup, repo.id, pull.head_sha, branch=False)
    ignored = [IgnoredApp(app=f"{app.workspace}/{app.name}", reason=why) for app, why in targets.left_out]
    wanted: list[App] = []
    for app in targets.apps:
        if app.archived:
            ignored.append(IgnoredApp(app=f"{app.workspace}/{app.name}", reason="the app was removed"))
        elif not app.previews and pull.action != "closed":  # a close still tears down what was built before
            ignored.append(IgnoredApp(app=f"{app.workspace}/{app.name}", reason="previews are off for the app"))
        else:
            wanted.append(app)
    outcome = store.record_pull_request(delivery, wanted, pull)
    if outcome.redelivery:
        return WebhookResult(
            status="redelivery",
            event="pull_request",
            delivery=delivery,
            builds=outcome.build_ids,
            reason="delivery already processed",
        )
    created = [r.build.id for r in outcome.results if r.build is not None and r.created]
    done = [r for r in outcome.results if r.action != "ignored"]
    ignored += [
        IgnoredApp(app=f"{r.app.workspace}/{r.app.name}", reason=r.reason) for r in outcome.results if r not in done
    ]
    said = "; ".join(f"{r.app.workspace}/{r.app.name}: {r.action}: {r.reason}" for r in done)
    answer: Literal["queued", "recorded", "ignored"]
    if outcome.build_ids:
        answer = "queued"
    elif done:
        answer = "recorded"
    else:
        answer = "ignored"
        said = "; ".join(f"{i.app}: {i.reason}" for i in ignored) or (
            f"no app tracks repository {event.repository.full_name}"
        )
    log.info("delivery %s (pull request #%s %s): %s", delivery, pull.number, pull.action, said)
    return WebhookResult(
        status=answer,
        event="pull_request",
        delivery=delivery,
        builds=outcome.build_ids,
        created=created,
        ignored=ignored,
        reason=said,
    )


def _handle_installation(database_url: str, event: str, delivery: str | None, text: str) -> WebhookResult:
    """Installation events say which installation serves which repository; losing one pauses its apps."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed JSON body: {exc}") from None
    try:
        store = open_store(database_url)
        summary = apply_installation_event(store, store.github(), event, data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not an {event} payload: bad or missing {fields}") from None
    log.info("delivery %s: %s", delivery, summary)
    return WebhookResult(status="recorded", event=event, delivery=delivery, reason=summary)


def _url_variants(urls: list[str]) -> list[str]:
    """Apps may store a repository URL with or without `.git` and a trailing slash."""
    variants: list[str] = []
    for url in urls:
        bare = url.rstrip("/").removesuffix(".git")
        variants += [url, bare, bare + ".git", bare + "/"]
    return list(dict.fromkeys(variants))
