"""Build page links: one build, until they expire; any change to the token opens nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from starforge_dag.core.links import PageLinks

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def test_a_link_opens_its_build_until_it_expires() -> None:
    links = PageLinks(KEY, "https://builds.example/", timedelta(days=30))
    url = links.url(42, NOW)
    assert url.startswith("https://builds.example/page/42.")
    token = url.rsplit("/", 1)[-1]
    assert links.build_of(token, NOW) == 42
    assert links.build_of(token, NOW + timedelta(days=29, hours=23)) == 42
    assert links.build_of(token, NOW + timedelta(days=30)) is None


def test_the_default_lifetime_is_30_days() -> None:
    token = PageLinks(KEY, "").token(1, NOW)
    assert int(token.split(".")[1]) == int((NOW + timedelta(days=30)).timestamp())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("42.", "43.", 1),  # another build
        lambda t: ".".join([t.split(".")[0], str(int(t.split(".")[1]) + 86400), t.split(".")[2]]),  # later expiry
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature
        lambda t: t + "A",
        lambda t: t.split(".", 1)[1],
        lambda t: "",
        lambda t: "042." + t.split(".", 1)[1],
        lambda t: t.replace(".", "%2E"),
    ],
)
def test_a_tampered_token_opens_nothing(tamper) -> None:
    links = PageLinks(KEY, "")
    assert links.build_of(tamper(links.token(42, NOW)), NOW) is None


def test_another_key_s_token_opens_nothing() -> None:
    token = PageLinks(b"x" * 32, "").token(42, NOW)
    assert PageLinks(KEY, "").build_of(token, NOW) is None


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageLinks(b"short", "")
