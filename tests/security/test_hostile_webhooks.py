"""Hundreds of signed but hostile push deliveries, generated, against the real API on SQLite and Postgres.

Every one is answered with a 4xx and a reason (or 200 "ignored"), none with a 5xx, and none queues a build,
although the repository they name is tracked: the last delivery, a well-formed one, proves it would have.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from support.deliveries import FORM, GitHub

from starforge_dag.store import BuildStore

HEX = "0123456789abcdef" * 5
Case = tuple[str, Callable[[GitHub], dict[str, Any]]]  # name, keyword arguments of GitHub.deliver


def _mutated(path: tuple[Any, ...], value: Any) -> Callable[[GitHub], dict[str, Any]]:
    """A valid push with one field (by path, "*" for every commit) replaced."""

    def make(github: GitHub) -> dict[str, Any]:
        payload = copy.deepcopy(github.push(github.commit("Hostile", modified=("app.py",))))
        targets = payload["commits"] if path[0] == "*" else [payload]
        for target in targets:
            node = target
            for key in path[1 if path[0] == "*" else 0 : -1]:
                node = node[key]
            node[path[-1]] = value
        return {"payload": payload}

    return make


def _nested(depth: int, where: str) -> Callable[[GitHub], dict[str, Any]]:
    def make(github: GitHub) -> dict[str, Any]:
        deep = "[" * depth + "]" * depth
        valid = json.dumps(github.push())
        if where == "body":
            return {"body": deep.encode()}
        return {"body": (valid[:-1] + f', "{where}": {deep}}}').encode()}  # last, so it is the value kept

    return make


def _raw(body: bytes, **extra: Any) -> Callable[[GitHub], dict[str, Any]]:
    return lambda github: {"body": body, **extra}


BAD_AFTER = [
    "HEAD",
    "main",
    "refs/heads/main",
    "--upload-pack=touch /tmp/x",
    "-u",
    "../../etc/passwd",
    "",
    " ",
    HEX[:39],
    HEX[:41],
    HEX[:63],
    HEX[:65],
    HEX[:40].upper(),
    HEX[:64].upper(),
    "\u0660" * 40,
    "\uff10" * 40,
    "\U0001d7ce" * 40,
    HEX[:40] + "\n",
    "\t" + HEX[:40],
    HEX[:20] + "\x00" + HEX[21:41],
    HEX[:20] + "\ud800" + HEX[21:40],
    "g" * 40,
    "0x" + HEX[:38],
    HEX[:40] + "^{}",
    HEX[:40] + "~1",
    "a" * 10_000,
    None,
    0,
    1.5,
    True,
    [HEX[:40]],
    {"id": HEX[:40]},
]
BAD_REF = [
    "refs/heads/main\x00",
    "refs/heads/\ud800",
    "refs/heads/../../etc",
    "refs/heads/a..b",
    "refs/heads/@{-1}",
    "refs/heads/x.lock",
    "refs/heads/.hidden",
    "refs/heads/a b",
    "refs/heads/a~1",
    "refs/heads/a^",
    "refs/heads/a:b",
    "refs/heads/a?",
    "refs/heads/a*",
    "refs/heads/a[",
    "refs/heads/a\\b",
    "refs/heads//main",
    "refs/heads/main/",
    "refs/heads/main.",
    "refs/heads/main\n",
    "refs/heads/\x7fmain",
    "main",
    "@",
    "",
    "refs/heads/" + "m" * 300,
    "r" * 5000,
    None,
    42,
    ["refs/heads/main"],
]
TEXT_FIELDS = [
    ("repository", "full_name"),
    ("repository", "clone_url"),
    ("repository", "html_url"),
    ("pusher", "name"),
    ("pusher", "email"),
    ("sender", "login"),
    ("head_commit", "id"),
    ("head_commit", "message"),
    ("*", "message"),
    ("*", "id"),
    ("before",),
]
WRONG_TYPES = [
    (("repository",), "acme/shop"),
    (("repository",), None),
    (("repository",), []),
    (("repository", "full_name"), 7),
    (("repository", "full_name"), None),
    (("repository", "clone_url"), {"url": "x"}),
    (("commits",), {"0": {}}),
    (("commits",), ["not a commit"]),
    (("commits",), "commits"),
    (("*", "modified"), "app.py"),
    (("*", "modified"), [1, 2]),
    (("*", "timestamp"), "yesterday"),
    (("*", "timestamp"), [2026]),
    (("head_commit",), "HEAD"),
    (("deleted",), "maybe"),
    (("created",), 2),
    (("forced",), {"yes": True}),
    (("pusher",), ["ada"]),
    (("sender", "login"), 12345),
]


def cases() -> list[Case]:
    made: list[Case] = []
    for i, value in enumerate(BAD_AFTER):
        made.append((f"after-{i}", _mutated(("after",), value)))
    for i, value in enumerate(BAD_REF):
        made.append((f"ref-{i}", _mutated(("ref",), value)))
    for field in TEXT_FIELDS:
        name = ".".join(field)
        made.append((f"nul-{name}", _mutated(field, "x\x00y")))
        made.append((f"surrogate-{name}", _mutated(field, "x\udfffy")))
        made.append((f"huge-{name}", _mutated(field, "x" * 60_000)))  # under the body limit, over every field's
    made.append(("huge-path", _mutated(("*", "modified"), ["p/" * 2_100])))
    for i, (path, value) in enumerate(WRONG_TYPES):
        made.append((f"type-{i}-{'.'.join(map(str, path))}", _mutated(path, value)))
    for depth in (40, 200, 1_000, 5_000, 30_000):
        for where in ("body", "after", "extra"):
            made.append((f"nested-{where}-{depth}", _nested(depth, where)))
    made += [
        ("malformed-truncated", _raw(b'{"ref": "refs/heads/main", "after": "')),
        ("malformed-trailing", _raw(b'{"ref": "refs/heads/main"} trailing')),
        ("malformed-latin1", _raw('{"ref": "refs/heads/m\xe4in"}'.encode("latin-1"))),
        ("malformed-utf16", _raw('{"ref": "refs/heads/main"}'.encode("utf-16"))),
        ("malformed-nan", _raw(b'{"ref": NaN, "after": Infinity}')),
        ("malformed-empty", _raw(b"")),
        ("malformed-null", _raw(b"null")),
        ("malformed-list", _raw(b"[]")),
        ("malformed-string", _raw(b'"push"')),
        ("malformed-escaped-surrogate", _raw(b'{"ref": "refs/heads/main", "after": "\\ud800"}')),
        ("malformed-escaped-nul", _raw(b'{"ref": "refs/heads/main\\u0000", "after": "' + HEX[:40].encode() + b'"}')),
        ("content-type-text", _raw(b"{}", content_type="text/plain")),
        ("content-type-xml", _raw(b"<push/>", content_type="application/xml")),
        ("form-no-payload", _raw(b"data=%7B%7D", content_type=FORM)),
        ("form-two-payloads", _raw(b"payload=%7B%7D&payload=%7B%7D", content_type=FORM)),
        ("form-not-json", _raw(b"payload=push", content_type=FORM)),
        ("form-surrogate-bytes", _raw(b"payload=%7B%22ref%22%3A%22%ED%A0%80%22%7D", content_type=FORM)),
        ("form-invalid-utf8", _raw(b"payload=%FF%FE", content_type=FORM)),
        ("form-garbage", _raw(b"&&&===&&", content_type=FORM)),
        ("form-many-fields", _raw(b"&".join(b"f%d=1" % i for i in range(50)), content_type=FORM)),
        ("event-uppercase", lambda github: {"payload": github.push(), "event": "PUSH"}),
        ("event-path", lambda github: {"payload": github.push(), "event": "../push"}),
        ("event-long", lambda github: {"payload": github.push(), "event": "p" * 200}),
        ("delivery-path", lambda github: {"payload": github.push(), "delivery": "../../etc/passwd"}),
        ("delivery-long", lambda github: {"payload": github.push(), "delivery": "d" * 101}),
        ("delivery-empty", lambda github: {"payload": github.push(), "delivery": ""}),
    ]
    # Every body-level case once more as GitHub's form encoding: `payload=<json>`, signed over the form body.
    for name, make in list(made):
        if name.startswith(("after-", "ref-", "nul-", "surrogate-", "type-", "nested-")):
            made.append((f"form-{name}", _as_form(make)))
    return made


def _as_form(make: Callable[[GitHub], dict[str, Any]]) -> Callable[[GitHub], dict[str, Any]]:
    def form(github: GitHub) -> dict[str, Any]:
        kwargs = make(github)
        text = kwargs["body"].decode() if "body" in kwargs else json.dumps(kwargs["payload"])
        return {"body": b"payload=" + quote(text, safe="", errors="surrogatepass").encode(), "content_type": FORM}

    return form


CASES = cases()


@pytest.fixture
def tracked(build_store: BuildStore) -> Iterator[None]:
    """The repository every case names is tracked on its pushed branch: a valid push would queue a build."""
    build_store.add_app("acme", "shop", "https://github.com/acme/shop.git", "main")
    yield


def test_hostile_signed_deliveries_get_4xx_and_queue_nothing(
    github_webhooks: GitHub, build_store: BuildStore, tracked
) -> None:
    assert len(CASES) >= 200
    answers: dict[str, int] = {}
    for name, make in CASES:
        kwargs = make(github_webhooks)
        if "payload" in kwargs:
            kwargs["body"] = json.dumps(kwargs.pop("payload"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = github_webhooks.deliver(**kwargs)
        answers[name] = response.status_code
        assert response.status_code < 500, (name, response.text)
        assert response.status_code != 202, (name, response.text)
        body = response.json()
        assert body.get("detail") or body.get("reason"), (name, body)
        assert build_store.list_builds() == [], name
    assert sum(400 <= code < 500 for code in answers.values()) >= 200, answers

    control = github_webhooks.deliver(github_webhooks.push())
    assert control.status_code == 202 and len(control.json()["created"]) == 1


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_refused_pushes_name_the_reason(github_webhooks: GitHub, build_store: BuildStore, tracked, form: bool) -> None:
    payload = github_webhooks.push()
    bad_after = github_webhooks.deliver({**payload, "after": "--upload-pack=touch /tmp/x"}, form=form)
    assert bad_after.status_code == 422 and "not a full commit id" in bad_after.json()["detail"]
    bad_ref = github_webhooks.deliver({**payload, "ref": "refs/heads/a..b"}, form=form)
    assert bad_ref.status_code == 422 and "not a valid git ref" in bad_ref.json()["detail"]
    nul = github_webhooks.deliver({**payload, "sender": {"login": "ada\x00"}}, form=form)
    assert nul.status_code == 400 and "sender.login" in nul.json()["detail"] and "NUL" in nul.json()["detail"]
    deep = github_webhooks.deliver(body=("[" * 30_000 + "]" * 30_000).encode())
    assert deep.status_code == 400 and "nested deeper" in deep.json()["detail"]
    assert build_store.list_builds() == []
