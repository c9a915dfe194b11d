"""Projects and builds as Depot keeps them: the emulator's state, copied out to tests that inspect it."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from ...depot.pb import depot_build_record_pb2, depot_buildkit_pb2

REGIONS = ("us-east-1", "eu-central-1")
DEFAULT_KEEP_GB = 50
DEFAULT_KEEP_DAYS = 14
_ID_ALPHABET = string.ascii_lowercase + string.digits

Platform = depot_buildkit_pb2.Platform
BuildStatus = depot_build_record_pb2.Build.Status


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def new_id(length: int = 12) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass
class ProjectRecord:
    project_id: str
    organization_id: str
    name: str
    region_id: str
    created_at: dt.datetime
    keep_gb: int
    keep_days: int
    hardware: int
    resets: int = 0
    deleted: bool = False


@dataclass
class SolveRecord:
    """One Solve that went through a build's endpoint, as the emulator ran it."""

    ref: str
    exporters: list[str]
    images: list[str] = field(default_factory=list)
    pushed: bool = False
    digest: str | None = None
    config_digest: str | None = None
    credentials_from: str | None = None  # "session", "emulator" or None (anonymous push)
    registry_username: str | None = None
    error: str | None = None
    done: bool = False


@dataclass
class StepRecord:
    digest: str
    name: str
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    cached: bool = False
    error: str | None = None
    logs: list[tuple[dt.datetime, str]] = field(default_factory=list)


@dataclass
class BuildRecord:
    """A build's lifecycle as Depot would see it; `result` is "success", "error" or None while running."""

    build_id: str
    project_id: str
    organization_id: str
    created_at: dt.datetime
    platform: str = "PLATFORM_UNSPECIFIED"
    health_reports: int = 0
    last_health_at: dt.datetime | None = None
    endpoint_requests: int = 0
    endpoint: str | None = None
    server_name: str | None = None
    endpoint_at: dt.datetime | None = None
    endpoint_dropped: bool = False
    released: bool = False
    released_at: dt.datetime | None = None
    finished: bool = False
    finished_at: dt.datetime | None = None
    result: str | None = None
    error: str | None = None
    expired: bool = False
    solves: list[SolveRecord] = field(default_factory=list)
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.finished or self.expired

    @property
    def status(self) -> int:
        if self.result == "success":
            return BuildStatus.STATUS_SUCCESS
        if self.result == "error":
            return BuildStatus.STATUS_FAILED
        if self.expired:
            return BuildStatus.STATUS_ERROR
        return BuildStatus.STATUS_RUNNING
