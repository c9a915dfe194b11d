"""What one build receives of its variables, and how each builder gets them without a value leaving the build."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..logs.masking import Masker
from .models import ResolvedVariable


@dataclass(frozen=True)
class BuildVariables:
    """The variable versions a build was queued with, opened: plain values, secret values and their fingerprints.

    `repr` shows names only, so an accidental log line or error never carries a value.
    """

    plain: dict[str, str] = field(default_factory=dict, repr=False)
    secret: dict[str, str] = field(default_factory=dict, repr=False)
    fingerprints: dict[str, str] = field(default_factory=dict, repr=False)
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, resolved: Sequence[ResolvedVariable]) -> BuildVariables:
        plain = {v.name: v.value.get_secret_value() for v in resolved if not v.secret}
        secret = {v.name: v.value.get_secret_value() for v in resolved if v.secret}
        fingerprints = {v.name: v.fingerprint or _digest(v.value.get_secret_value()) for v in resolved}
        return cls(plain=plain, secret=secret, fingerprints=fingerprints, names=tuple(sorted(plain | secret)))

    @property
    def values(self) -> dict[str, str]:
        """Every variable by name, as a planned build's steps read them (Railpack hands all of them as secrets)."""
        return {**self.plain, **self.secret}

    def masker(self) -> Masker:
        """Masks the secret values (never the plain ones: a variable marked plain is meant to be seen)."""
        return Masker(self.secret.values())


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
