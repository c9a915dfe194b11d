"""One validator per app setting, for registration and changes alike; each refusal names the setting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .inputs import InvalidInput, RepoUrlPolicy, check_branch, check_repo_url, check_text

MAX_BUILD_TIMEOUT_S = 7 * 24 * 3600
MAX_WATCH_PATHS = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(value: str, what: str) -> str:
    """Workspace and app names appear in URLs and image names: letters, digits, `.`, `_`, `-`, at most 100."""
    check_text(value, what, max_chars=100)
    if not _NAME.fullmatch(value):
        raise InvalidInput(f"{what} {value[:80]!r} must be 1-100 letters, digits, '.', '_' or '-', starting alnum")
    return value


def check_repo_path(value: str, what: str, *, glob: bool = False) -> str:
    """A path inside the repository: relative, no `..`, no backslash, no control characters."""
    check_text(value, what)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or "\\" in value:
        raise InvalidInput(f"{what} {value[:80]!r} contains a control character or a backslash")
    body = value[1:] if glob and value.startswith("!") else value
    if body.startswith("/") and not glob:
        raise InvalidInput(f"{what} {value[:80]!r} must be relative to the repository root")
    if ".." in body.strip("/").split("/"):
        raise InvalidInput(f"{what} {value[:80]!r} leaves the repository ('..')")
    return value


def check_watch_paths(values: Sequence[str]) -> list[str]:
    if len(values) > MAX_WATCH_PATHS:
        raise InvalidInput(f"watch_paths has more than {MAX_WATCH_PATHS} patterns")
    return [check_repo_path(v, "watch_paths entry", glob=True) for v in values]


def check_target(value: str) -> str:
    """A Dockerfile stage name (`FROM … AS name`)."""
    if not _TARGET.fullmatch(value):
        raise InvalidInput(f"target {value[:80]!r} is not a Dockerfile stage name (letters, digits, '.', '_', '-')")
    return value


def check_preview_label(value: str) -> str:
    """A GitHub label name: printable, at most 100 characters (GitHub's limit is 50)."""
    check_text(value, "preview_label", max_chars=100)
    if not value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput("preview_label must be a label name: printable, not blank, at most 100 characters")
    return value


def check_build_timeout(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUILD_TIMEOUT_S:
        raise InvalidInput(f"build_timeout_s must be a whole number of seconds from 1 to {MAX_BUILD_TIMEOUT_S}")
    return value


def check_setting(field: str, value: Any, policy: RepoUrlPolicy) -> Any:
    """The one gate for a setting given at registration or changed later (None is for the caller to judge)."""
    match field:
        case "repo_url":
            check_repo_url(value, policy)
            return value
        case "branch":
            return check_branch(value)
        case "root_dir" | "dockerfile_path":
            return check_repo_path(value, field)
        case "watch_paths":
            return check_watch_paths(value)
        case "target":
            return check_target(value)
        case "build_timeout_s":
            return check_build_timeout(value)
        case "preview_label":
            return check_preview_label(value)
        case "cancel_running" | "auto_build" | "previews" | "wait_for_checks":
            if not isinstance(value, bool):
                raise InvalidInput(f"{field} must be true or false")
            return value
    raise InvalidInput(f"{field} is not an app setting")
