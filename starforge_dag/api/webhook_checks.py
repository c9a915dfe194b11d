"""`check_suite` deliveries: recorded once by delivery id, then they settle the builds waiting for the commit's checks."""

from __future__ import annotations

import logging

from fastapi import HTTPException, status

from starforge_dag.github.app import GitHubApp
from starforge_dag.github.checksuites import Policy, invalid_check_suite, on_check_suite, parse_check_suite
from starforge_dag.github.push import UndecodablePush
from starforge_dag.settings import Settings
from starforge_dag.store import open_store

from .schemas import WebhookResult

log = logging.getLogger(__name__)
EVENT = "check_suite"
GITHUB_TIMEOUT_S = 5.0  # GitHub waits 10 s for the answer; a slower listing is left to the reconciler


def checks_policy(settings: Settings) -> Policy:
    return Policy(settings.checks_timeout_s, settings.checks_grace_s, settings.github_app_id)


def github_app(settings: Settings, timeout_s: float = GITHUB_TIMEOUT_S) -> GitHubApp | None:
    if not settings.github_app_configured:
        return None
    key = settings.github_app_private_key.get_secret_value()
    return GitHubApp(settings.github_app_id or 0, key, settings.github_api_url, timeout_s=timeout_s)


def handle_check_suite(settings: Settings, delivery: str, text: str) -> WebhookResult:
    """Validate strictly, record the delivery (a redelivery does nothing twice), then settle what it decides."""
    try:
        event = parse_check_suite(text)
    except UndecodablePush as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    store = open_store(settings.resolved_database_url)
    problem = invalid_check_suite(event)
    if problem is not None:
        store.record_delivery(delivery, EVENT, [])
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"check suite names no commit: {problem}")
    if store.record_delivery(delivery, EVENT, []).redelivery:
        return WebhookResult(status="redelivery", event=EVENT, delivery=delivery, reason="delivery already processed")
    reason = on_check_suite(store, store.github(), github_app(settings), event, checks_policy(settings))
    log.info("delivery %s (check_suite %s): %s", delivery, event.action, reason)
    return WebhookResult(status="recorded", event=EVENT, delivery=delivery, reason=reason)
