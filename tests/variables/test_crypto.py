"""The secret box: Fernet under several keys, the key file made once with mode 0600, keyed fingerprints."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from starforge_dag.settings import Settings
from starforge_dag.variables.crypto import (
    SecretBox,
    SecretsKeyError,
    fingerprint,
    key_file_keys,
    new_key,
    parse_keys,
    secret_box,
)


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = new_key(), new_key()
    token = SecretBox([old]).seal("s3cr3t-value")
    both = SecretBox([new, old])
    assert both.open(token) == "s3cr3t-value"
    rotated = both.rotate(token)
    assert SecretBox([new]).open(rotated) == "s3cr3t-value"
    with pytest.raises(SecretsKeyError):
        SecretBox([new]).open(token)
    assert "s3cr3t-value" not in token + rotated


def test_a_malformed_or_missing_key_is_named_without_its_value() -> None:
    with pytest.raises(SecretsKeyError, match="not a Fernet key") as caught:
        SecretBox(["not-a-key-at-all"])
    assert "not-a-key-at-all" not in str(caught.value)
    with pytest.raises(SecretsKeyError, match="STARFORGE_SECRETS_KEY"):
        SecretBox([])


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: key_file_keys(home), range(16)))
    assert all(keys == seen[0] for keys in seen) and len(seen[0]) == 1
    assert stat.S_IMODE((home / "secrets.key").stat().st_mode) == 0o600
    assert [p.name for p in home.iterdir()] == ["secrets.key"]
    box = secret_box("", home)
    assert SecretBox(seen[0]).open(box.seal("x")) == "x"


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    settings = Settings(home=tmp_path, secrets_key=f" {first}, {second} ")
    token = settings.secret_box().seal("value")
    assert SecretBox([first]).open(token) == "value"
    assert not (tmp_path / "secrets.key").exists()
    assert parse_keys(f"{first},,{second}") == [first, second]
    assert first not in repr(settings)


def test_fingerprints_are_keyed() -> None:
    assert fingerprint(b"k" * 32, "value") == fingerprint(b"k" * 32, "value")
    assert fingerprint(b"k" * 32, "value") != fingerprint(b"j" * 32, "value")
    assert fingerprint(b"k" * 32, "value") != fingerprint(b"k" * 32, "valuf")
