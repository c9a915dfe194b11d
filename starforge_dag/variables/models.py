"""Variables as the store hands them out: a version for listings (never a secret's value), resolved for builds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

Scope = Literal["app", "workspace"]


class VariableVersion(BaseModel):
    """One immutable version; `value` is None for secrets and for deletions."""

    model_config = ConfigDict(frozen=True)

    id: int
    workspace: str
    app: str | None
    scope: Scope
    name: str
    version: int
    secret: bool
    value: str | None
    fingerprint: str | None
    deleted: bool
    for_previews: bool = False
    actor: str
    created_at: datetime


class ResolvedVariable(BaseModel):
    """A variable as a build receives it: the value is a SecretStr so no repr, log or dump shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    scope: Scope
    version: int
    secret: bool
    value: SecretStr
    fingerprint: str
