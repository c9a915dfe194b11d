"""Builds and desired states as the store hands them out, for testing the pure decisions without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starforge_dag.core.models import Build, DesiredState
from starforge_dag.core.states import BuildState

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(n: int) -> datetime:
    """The commit time of commit n: later commits are newer."""
    return T0 + timedelta(minutes=n)


def sha(n: int) -> str:
    """A well-formed commit id, distinct per n."""
    return f"{n:040x}"


def build(
    build_id: int,
    commit: int,
    status: BuildState = BuildState.QUEUED,
    *,
    ref: str = "main",
    timed: bool = True,
    rewind: bool = False,
    app_id: int = 1,
    deleted: bool = False,
) -> Build:
    """A build of commit n of acme/web; a succeeded one has pushed its image (`deleted`: retention removed it)."""
    image = status == BuildState.SUCCEEDED
    return Build(
        id=build_id,
        app_id=app_id,
        workspace="acme",
        app="web",
        ref=ref,
        commit_sha=sha(commit),
        status=status,
        trigger="push",
        commit_time=at(commit) if timed else None,
        rewind=rewind,
        image_ref=f"r/web:{build_id}" if image else None,
        image_digest=f"sha256:{build_id:064x}" if image else None,
        image_deleted_at=T0 if deleted else None,
        created_at=T0,
        updated_at=T0,
    )


def desired(build_id: int, commit: int, *, pinned: bool = False, held: int | None = None) -> DesiredState:
    """acme/web desired at build n's image of commit n (revision 4)."""
    return DesiredState(
        app_id=1,
        workspace="acme",
        app="web",
        image_ref=f"r/web:{build_id}",
        image_digest=f"sha256:{build_id:064x}",
        commit_sha=sha(commit),
        commit_time=at(commit),
        build_id=build_id,
        updated_at=T0,
        revision=4,
        pinned=pinned,
        held_build_id=held,
    )
