"""The notification sender: drains the outbox, each endpoint in order, signed per Standard Webhooks.

A message is retried with backoff while its endpoint keeps failing; an endpoint that fails for too long (or too
many times in a row) is disabled with the reason, and its undelivered messages are dropped. A pass stops starting
requests at its deadline and leaves the rest for the next one.
"""

from __future__ import annotations

import base64
import math
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from standardwebhooks import Webhook

from starforge_dag.core.notifications import DeliveryPolicy, Disable, after_failure, message_body
from starforge_dag.store.notifications import Endpoint, Message

from .addresses import AddressPolicy, UnsafeUrl, check_endpoint_url, port_of, resolve_checked

USER_AGENT = "Starforge-Webhooks/1"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class BuildLinks:
    """What a message says of its build beyond the outbox's snapshot: the build page and the failure explanation."""

    def page_url(self, build_id: int) -> str | None:
        return None

    def explanation(self, build_id: int) -> Any:
        return None


class NotificationOutbox(Protocol):
    def endpoints_with_mail(self, limit: int = 1000) -> list[Endpoint]: ...
    def next_message(self, endpoint_id: int) -> Message | None: ...
    def keep_body(self, message_id: int, body: str) -> None: ...
    def delivered(self, message: Message, at: datetime, status: int, ms: int) -> None: ...
    def retry_later(
        self, message: Message, at: datetime, status: int | None, error: str, ms: int, retry_at: datetime
    ) -> None: ...
    def disable(self, message: Message, at: datetime, status: int | None, error: str, ms: int, reason: str) -> None: ...


@dataclass
class SendReport:
    delivered: int = 0
    failed: int = 0
    disabled: int = 0
    waiting: int = 0
    left: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"delivered {self.delivered}, failed {self.failed} (retried later), disabled {self.disabled} endpoints, "
            f"{self.waiting} endpoints waiting for their backoff, {self.left} left for the next pass"
        )


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str | None
    ms: int


def _post(
    endpoint: Endpoint,
    secret: str,
    message: Message,
    body: str,
    at: datetime,
    addresses: AddressPolicy,
    policy: DeliveryPolicy,
    transport: httpx.BaseTransport | None,
) -> _Answer:
    started = time.monotonic()

    def answer(status: int | None, error: str | None) -> _Answer:
        return _Answer(status, error, int((time.monotonic() - started) * 1000))

    try:
        parts = check_endpoint_url(endpoint.url)
        address = resolve_checked(parts, addresses)[0]
    except UnsafeUrl as exc:
        return answer(None, f"refused: {exc}")
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    target = parts._replace(netloc=f"{literal}:{port_of(parts)}").geturl()
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message.message_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message.message_id, at, body),
    }
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        with (
            httpx.Client(transport=transport, timeout=policy.timeout_s, follow_redirects=False, trust_env=False) as c,
            c.stream("POST", target, content=body.encode("utf-8"), headers=headers, extensions=extensions) as r,
        ):
            status = r.status_code
    except httpx.TimeoutException:
        return answer(None, f"no answer within {policy.timeout_s:g} s")
    except httpx.HTTPError as exc:
        return answer(None, f"{type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return answer(status, None)
    if 300 <= status < 400:
        return answer(status, f"HTTP {status}: redirects are not followed")
    return answer(status, f"HTTP {status}")


def send_notifications(
    outbox: NotificationOutbox,
    open_secret: Callable[[str], str],
    addresses: AddressPolicy,
    now: Callable[[], datetime],
    *,
    policy: DeliveryPolicy | None = None,
    links: BuildLinks | None = None,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
    workers: int = 8,
    transport: httpx.BaseTransport | None = None,
) -> SendReport:
    """One pass: every endpoint with mail gets its due messages, oldest first, until one fails or time is up."""
    policy = policy or DeliveryPolicy()
    links = links or BuildLinks()
    endpoints = outbox.endpoints_with_mail()

    def drain(endpoint: Endpoint) -> SendReport:
        report = SendReport()
        failures, failing_since = endpoint.failures, endpoint.failing_since
        secret = open_secret(endpoint.secret_ciphertext)
        while True:
            message = outbox.next_message(endpoint.id)
            if message is None:
                return report
            if clock() >= deadline:
                report.left += 1
                return report
            at = now()
            if message.next_attempt_at > at:
                report.waiting += 1
                return report
            body = message.body
            if body is None:
                page = links.page_url(message.build_id) if message.build_id is not None else None
                explanation = links.explanation(message.build_id) if message.build_id is not None else None
                body = message_body(message.event, message.created_at, message.data, page, explanation)
                outbox.keep_body(message.id, body)
            answer = _post(endpoint, secret, message, body, at, addresses, policy, transport)
            if answer.error is None and answer.status is not None:
                outbox.delivered(message, at, answer.status, answer.ms)
                report.delivered += 1
                failures, failing_since = 0, None
                continue
            error = answer.error or "no answer"
            failures += 1
            decision = after_failure(policy, failures, failing_since or at, at, error)
            if isinstance(decision, Disable):
                outbox.disable(message, at, answer.status, error, answer.ms, decision.reason)
                report.disabled += 1
            else:
                outbox.retry_later(message, at, answer.status, error, answer.ms, decision.at)
                report.failed += 1
            report.errors.append(f"endpoint {endpoint.id}: {error}")
            return report

    total = SendReport()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(endpoints) or 1))) as pool:
        for part in pool.map(drain, endpoints):
            for name in ("delivered", "failed", "disabled", "waiting", "left"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.errors.extend(part.errors)
    return total
