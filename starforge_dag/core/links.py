"""Build page links: a signed, expiring capability for one build, so a link opens that page and nothing else.

The token is `<build id>.<expiry, unix seconds>.<signature>`, the signature HMAC-SHA256 under the page key of a
domain-separated message naming both; a changed id, expiry or signature, or a passed expiry, opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_LIFETIME = timedelta(days=30)
PAGE_PATH = "/page/"
_TOKEN = re.compile(r"([1-9][0-9]{0,18})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class PageLinks:
    """Signs and checks build page links; `base_url` is where the API is reached from outside."""

    key: bytes
    base_url: str
    lifetime: timedelta = DEFAULT_LIFETIME

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("a page key needs at least 16 bytes")

    def token(self, build_id: int, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        return f"{build_id}.{expires}.{self._signature(build_id, expires)}"

    def url(self, build_id: int, now: datetime) -> str:
        return f"{self.base_url.rstrip('/')}{PAGE_PATH}{self.token(build_id, now)}"

    def build_of(self, token: str, now: datetime) -> int | None:
        """The build a token opens, or None when it is malformed, tampered with or expired."""
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        build_id, expires = int(found.group(1)), int(found.group(2))
        if not hmac.compare_digest(found.group(3), self._signature(build_id, expires)):
            return None
        return build_id if now.timestamp() < expires else None

    def _signature(self, build_id: int, expires: int) -> str:
        message = f"starforge build page v1\n{build_id}\n{expires}".encode()
        digest = hmac.new(self.key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
