"""Signed build page links as every sender makes them: commit statuses and workspace notifications alike."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ..core.links import PageLinks
from ..variables.crypto import page_key


def page_links(public_url: str | None, key: str | None, home: str | None, days: float) -> PageLinks | None:
    """The signer of page links under the API's public URL; None without one (there is nowhere to link)."""
    if not public_url or not (key or home):
        return None
    return PageLinks(page_key(key or "", Path(home or ".")), public_url, timedelta(days=days))
