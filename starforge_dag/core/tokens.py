"""Workspace tokens: made from 32 random bytes, kept only as their SHA-256 (enough for a high-entropy secret)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

PREFIX = "sfw_"
# A token's last use is written at most this often: reading it on every request must not write on every request.
TOUCH_EVERY = timedelta(minutes=1)


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(given: str) -> bool:
    """Only strings of a token's shape are looked up, so a platform token typo never reaches the database."""
    return given.startswith(PREFIX) and 40 <= len(given) <= 100 and given.isascii()


def same_hash(stored: str, given: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii"), token_hash(given).encode("ascii"))


def due_for_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= TOUCH_EVERY
