"""Secrets at rest: Fernet tokens under a list of keys (the first encrypts, every one decrypts) and fingerprints.

A fingerprint is HMAC-SHA256 of the value under a random 32-byte fingerprint key that is made once per store and
kept in it encrypted under the secrets key (re-encrypted, never changed, by a rotation). So fingerprints stay the
same across key rotations, a changed secret shows as a changed fingerprint, and someone holding only a database
dump can neither decrypt a value nor test a guess against its fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE = "secrets.key"
PAGE_KEY_FILE = "page.key"


class SecretsKeyError(ValueError):
    """The secrets key is missing, malformed or does not open a stored secret; the message names no value."""


class SecretBox:
    """Seals and opens secret values with the configured keys; `rotate` moves a token to the newest key."""

    def __init__(self, keys: Sequence[str | bytes]):
        if not keys:
            raise SecretsKeyError("no secrets key: set STARFORGE_SECRETS_KEY (comma-separated Fernet keys)")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise SecretsKeyError(
                "STARFORGE_SECRETS_KEY holds a key that is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretsKeyError("a stored secret does not open with any key of STARFORGE_SECRETS_KEY") from None

    def open_bytes(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise SecretsKeyError("a stored key does not open with any key of STARFORGE_SECRETS_KEY") from None

    def seal_bytes(self, value: bytes) -> str:
        return self._fernet.encrypt(value).decode("ascii")

    def rotate(self, token: str) -> str:
        """The same plaintext under the newest key; a token already under it is re-encrypted all the same."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsKeyError("a stored secret does not open with any key of STARFORGE_SECRETS_KEY") from None


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def new_fingerprint_key() -> bytes:
    return os.urandom(32)


def fingerprint(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_keys(text: str) -> list[str]:
    """`STARFORGE_SECRETS_KEY`: comma-separated keys, the newest (encrypting) first."""
    return [k.strip() for k in text.split(",") if k.strip()]


def key_file_keys(home: Path) -> list[str]:
    """The embedded default: keys from `home/secrets.key`, made (mode 0600, one fresh key) on first use."""
    path = home / KEY_FILE
    make_key_file(path, new_key())
    keys = parse_keys(path.read_text().replace("\n", ","))
    if not keys:
        raise SecretsKeyError(f"the key file {path} holds no key")
    return keys


def make_key_file(path: Path, key: str) -> None:
    """Write `key` to `path` (mode 0600) unless a key is there already; safe against a concurrent first use."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        try:
            os.link(staging, path)  # atomic, and never over a key another process made first
        except FileExistsError:
            pass
    finally:
        staging.unlink(missing_ok=True)


def page_key(configured: str, home: Path) -> bytes:
    """The key signing build page links: the configured one, else one derived from `home/page.key` (made once)."""
    if configured:
        if len(configured) < 16:
            raise SecretsKeyError("STARFORGE_PAGE_KEY must be at least 16 characters")
        return configured.encode("utf-8")
    path = home / PAGE_KEY_FILE
    make_key_file(path, os.urandom(32).hex())
    seed = path.read_text().strip()
    if not seed:
        raise SecretsKeyError(f"the key file {path} holds no key")
    return hmac.new(seed.encode("ascii"), b"starforge build page links", hashlib.sha256).digest()


def secret_box(secrets_key: str, home: Path) -> SecretBox:
    """The configured keys, else the key file under home."""
    keys = parse_keys(secrets_key)
    return SecretBox(keys or key_file_keys(home))
