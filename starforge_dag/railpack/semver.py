"""Loose version numbers as Railpack's providers read them from manifests and version files."""

from __future__ import annotations

import re

_SEMVER = re.compile(r"(\d+(?:\.\d+)?(?:\.\d+)?)")


def extract_semver(text: str) -> str:
    """The first `1`, `1.2` or `1.2.3` in the text (empty when there is none)."""
    match = _SEMVER.search(text.strip())
    return match.group(1) if match else ""


def parse_semver(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of `v1.2.3`, `1.2` or `name@1`; missing parts are 0, None when not numeric."""
    version = version.split("@", 1)[1] if "@" in version else version
    parts = version.removeprefix("v").split(".")
    try:
        major = int(parts[0])
        minor = int(parts[1]) if len(parts) > 1 else 0
        patch = int(parts[2].split("-")[0]) if len(parts) > 2 else 0
    except ValueError:
        return None
    return major, minor, patch
