"""What the GitHub emulator keeps: repositories, installations, tokens, webhook deliveries and commit statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class EmuRepo:
    id: int
    owner: str
    name: str
    path: Path
    private: bool = True
    default_branch: str = "main"
    installation_id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class EmuInstallation:
    id: int
    account: str
    account_id: int


@dataclass
class EmuToken:
    installation_id: int
    expires_at: datetime
    revoked: bool = False


@dataclass
class EmuDelivery:
    id: int
    guid: str
    event: str
    action: str | None
    body: bytes
    installation_id: int | None
    repository_id: int | None
    redelivery: bool
    delivered_at: datetime
    status_code: int = 0
    status: str = "pending"


@dataclass
class RecordedStatus:
    repo_id: int
    sha: str
    state: str
    description: str
    target_url: str | None
    context: str
    at: datetime


@dataclass
class RecordedDeploymentStatus:
    state: str
    description: str
    log_url: str | None
    environment_url: str | None
    at: datetime


@dataclass
class EmuDeployment:
    id: int
    repo_id: int
    sha: str
    ref: str
    task: str
    environment: str
    payload: object
    description: str
    transient: bool
    production: bool
    at: datetime
    statuses: list[RecordedDeploymentStatus] = field(default_factory=list)

    @property
    def state(self) -> str | None:
        """The state of its latest status (None before the first)."""
        return self.statuses[-1].state if self.statuses else None
