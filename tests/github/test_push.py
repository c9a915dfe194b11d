from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from starforge_dag.github.push import PushEvent

# A trimmed but faithful push delivery: GitHub sends many more fields, which must be ignored.
PAYLOAD = {
    "ref": "refs/heads/main",
    "before": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
    "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "created": False,
    "deleted": False,
    "forced": False,
    "base_ref": None,
    "compare": "https://github.com/acme/shop/compare/9049f1265b7d...0d1a26e67d8f",
    "repository": {
        "id": 35129377,
        "name": "shop",
        "full_name": "acme/shop",
        "private": True,
        "owner": {"name": "acme", "login": "acme"},
        "html_url": "https://github.com/acme/shop",
        "clone_url": "https://github.com/acme/shop.git",
        "ssh_url": "git@github.com:acme/shop.git",
        "git_url": "git://github.com/acme/shop.git",
        "default_branch": "main",
    },
    "pusher": {"name": "ada", "email": "ada@example.com"},
    "sender": {"login": "ada-l", "id": 7, "type": "User"},
    "commits": [
        {
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433",
            "distinct": True,
            "message": "Add checkout page",
            "timestamp": "2026-11-27T09:15:02+01:00",
            "url": "https://github.com/acme/shop/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "author": {"name": "Ada", "email": "ada@example.com", "username": "ada-l"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": ["web/checkout.html"],
            "removed": ["web/old.html"],
            "modified": ["web/app.py"],
        }
    ],
}
PAYLOAD["head_commit"] = PAYLOAD["commits"][0]


def test_parses_the_fields_a_build_needs() -> None:
    event = PushEvent.model_validate(PAYLOAD)
    assert event.branch == "main" and not event.is_tag and not event.is_deletion
    assert event.repository.full_name == "acme/shop"
    assert "https://github.com/acme/shop.git" in event.repository.urls
    assert event.commits[0].paths == ["web/checkout.html", "web/app.py", "web/old.html"]
    assert event.commit_time == datetime(2026, 11, 27, 8, 15, 2, tzinfo=UTC)
    assert event.actor == "ada-l"


def test_deleted_branch_has_no_head_commit() -> None:
    deleted = {**PAYLOAD, "after": "0" * 40, "deleted": True, "commits": [], "head_commit": None}
    event = PushEvent.model_validate(deleted)
    assert event.is_deletion and event.commit_time is None


def test_tag_ref_is_not_a_branch() -> None:
    event = PushEvent.model_validate({**PAYLOAD, "ref": "refs/tags/v1.2.0"})
    assert event.is_tag and event.branch is None


def test_payload_without_repository_is_rejected() -> None:
    with pytest.raises(ValidationError):
        PushEvent.model_validate({k: v for k, v in PAYLOAD.items() if k != "repository"})
