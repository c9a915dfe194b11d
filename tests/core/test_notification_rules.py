"""The pure rules of notifications: which transition is which event, when a failing endpoint is given up on, and
which addresses an endpoint may have (every address its name resolves to, IPv4-mapped ones included)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from starforge_dag.core.notifications import DeliveryPolicy, Disable, Retry, after_failure, build_event
from starforge_dag.core.states import BuildState as S
from starforge_dag.notify import AddressPolicy, UnsafeUrl, check_endpoint_url, resolve_checked

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "to", "event"),
    [
        (None, S.QUEUED, "build.queued"),
        (S.QUEUED, S.CLONING, "build.started"),
        (S.FAILED, S.BUILDING, "build.started"),  # a re-execution resumes it
        (S.CLONING, S.PLANNING, None),
        (S.BUILDING, S.PUSHING, None),
        (S.PUSHING, S.SUCCEEDED, "build.succeeded"),
        (S.BUILDING, S.FAILED, "build.failed"),
        (S.BUILDING, S.TIMED_OUT, "build.failed"),
        (S.QUEUED, S.CANCELED, "build.canceled"),
        (S.CLONING, S.SUPERSEDED, "build.canceled"),
    ],
)
def test_transitions_are_events_at_their_start_and_end(current, to, event) -> None:
    assert build_event(current, to) == event


def test_a_failing_endpoint_is_retried_with_growing_backoff_then_disabled_after_24_hours() -> None:
    policy = DeliveryPolicy(first_backoff_s=5, max_backoff_s=3600, max_consecutive_failures=1000)
    rng = random.Random(3)
    waits = []
    for failures in range(1, 12):
        decision = after_failure(policy, failures, T0, T0 + timedelta(minutes=failures), "HTTP 503", rng)
        assert isinstance(decision, Retry)
        waits.append((decision.at - (T0 + timedelta(minutes=failures))).total_seconds())
    assert 2.5 <= waits[0] <= 5 and 1800 <= waits[-1] <= 3600 and waits[5] > waits[0]
    late = after_failure(policy, 40, T0, T0 + timedelta(hours=24), "HTTP 503")
    assert isinstance(late, Disable) and "24.0 h" in late.reason and "HTTP 503" in late.reason


def test_an_endpoint_is_disabled_after_n_failures_in_a_row() -> None:
    policy = DeliveryPolicy(max_consecutive_failures=3)
    assert isinstance(after_failure(policy, 2, T0, T0, "timeout"), Retry)
    assert isinstance(after_failure(policy, 3, T0, T0, "timeout"), Disable)


def _resolver(*addresses: str):
    return lambda host, port: list(addresses)


def test_every_address_of_a_name_is_checked() -> None:
    parts = urlsplit("https://hooks.example.com/in")
    assert [str(a) for a in resolve_checked(parts, AddressPolicy(), _resolver("93.184.215.14"))] == ["93.184.215.14"]
    with pytest.raises(UnsafeUrl, match="resolves to 10.0.0.7 is a private address"):
        resolve_checked(parts, AddressPolicy(), _resolver("93.184.215.14", "10.0.0.7"))
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        resolve_checked(parts, AddressPolicy(), lambda host, port: (_ for _ in ()).throw(OSError("NXDOMAIN")))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "not a public"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(address: str, kind: str) -> None:
    import ipaddress

    ip = ipaddress.ip_address(address)
    assert kind in (AddressPolicy().refusal(ip) or "")
    assert AddressPolicy(allow_private=True).refusal(ip) is None
    assert AddressPolicy.parse(False, f"{address}/128" if ip.version == 6 else f"{address}/32").refusal(ip) is None
    assert AddressPolicy.parse(False, "203.0.113.0/24").refusal(ip) is not None


def test_malformed_endpoint_urls_are_refused() -> None:
    for url, why in [
        ("https://hooks.example.com:99999/", "not a URL"),
        ("https:///path", "no host"),
        ("https://example.com/a b", "spaces"),
        ("https://example.com/#x", "fragment"),
    ]:
        with pytest.raises(UnsafeUrl, match=why):
            check_endpoint_url(url)
    with pytest.raises(ValueError, match="STARFORGE_WEBHOOK_ALLOWED_CIDRS"):
        AddressPolicy.parse(False, "10.0.0.0/33")
