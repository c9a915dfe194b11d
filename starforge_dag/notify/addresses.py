"""Server-side request forgery checks: an endpoint URL may only lead to public addresses, unless allowed.

Every address a host name resolves to is checked, at registration and again at each send; the sender then
connects to the address it checked, so a name that resolves differently the second time (DNS rebinding) cannot
steer it inside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_CHARS = 2000

_KINDS = (
    ("is_unspecified", "an unspecified"),
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_reserved", "a reserved"),
    ("is_private", "a private"),
)


class UnsafeUrl(ValueError):
    """An endpoint URL that is malformed, does not resolve, or leads to an address that is not allowed."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public addresses endpoints may have: all (`allow_private`) or those in `allowed` networks."""

    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow_private: bool, cidrs: str) -> AddressPolicy:
        """From the settings: a flag, and comma-separated networks (`127.0.0.1/32`, `fd00::/8`)."""
        try:
            allowed = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs.split(",") if c.strip())
        except ValueError as exc:
            raise ValueError(f"STARFORGE_WEBHOOK_ALLOWED_CIDRS: {exc}") from None
        return cls(allow_private, allowed)

    def refusal(self, address: IPAddress) -> str | None:
        """Why notifications may not go to `address`, or None when they may."""
        if self.allow_private or any(address in net for net in self.allowed):
            return None
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        for ip in (mapped, address) if mapped is not None else (address,):
            for attribute, kind in _KINDS:
                if getattr(ip, attribute):
                    return f"{address} is {kind} address"
            if not ip.is_global:
                return f"{address} is not a public address"
        return None


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_endpoint_url(url: str) -> SplitResult:
    """The URL's parts, once it is an http(s) URL with a host and without credentials or a fragment."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"longer than {MAX_URL_CHARS} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UnsafeUrl("must be ASCII without spaces or control characters (percent-encode the rest)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        raise UnsafeUrl(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl("must be an https:// or http:// URL")
    if not parts.hostname:
        raise UnsafeUrl("has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("may not hold credentials: authenticate the sender by the signature")
    if parts.fragment:
        raise UnsafeUrl("may not have a #fragment")
    return parts


def port_of(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> list[IPAddress] | None:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return None


def resolve_checked(
    parts: SplitResult, policy: AddressPolicy, resolver: Resolver = _system_resolver
) -> list[IPAddress]:
    """Every address the host has, each one allowed by `policy`; UnsafeUrl names the first that is not."""
    host = parts.hostname or ""
    addresses = _literal(host)
    if addresses is None:
        try:
            found = resolver(host, port_of(parts))
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"host {host!r} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in found))
        if not addresses:
            raise UnsafeUrl(f"host {host!r} has no address")
    for address in addresses:
        why = policy.refusal(address)
        if why is not None:
            shown = f"host {host!r} resolves to {why}" if str(address) != host else why
            raise UnsafeUrl(
                f"{shown}; endpoints must be public (or allowed by STARFORGE_WEBHOOK_ALLOW_PRIVATE or "
                "STARFORGE_WEBHOOK_ALLOWED_CIDRS)"
            )
    return addresses
