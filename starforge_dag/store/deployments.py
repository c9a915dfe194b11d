"""The GitHub deployment outbox: one row per desired-state change of a GitHub-linked app, written in the change's
own transaction, worked through step by step (create, in_progress, final status, inactivate the one replaced)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..core.deployments import Change, steps_of
from ..core.models import utcnow
from . import schema as t
from .github import github_apps, repo_route
from .rows import aware, retry_outbox_row, unsent_outbox_rows

deployment_outbox = sa.Table(
    "deployment_outbox",
    t.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Integer, nullable=False),
    sa.Column("repo_id", sa.BigInteger, nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("build_id", sa.BigInteger, nullable=True),  # none for a teardown
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("step", sa.String(20), nullable=False),  # the next step to take
    sa.Column("deployment_id", sa.BigInteger, nullable=True),  # GitHub's, once created
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=True),  # sent | dropped | failed; NULL while unsent
    sa.Column("final_state", sa.String(20), nullable=True),  # success | failure, once reported
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_deployment_outbox_unsent", "outcome", "id"),
    sa.Index("ix_deployment_outbox_environment", "app_id", "environment", "id"),
)


@dataclass(frozen=True)
class DeploymentRow:
    """An unsent deployment: the change it reports, where it goes and how far it got."""

    id: int
    app_id: int
    repo_id: int
    change: Change
    step: str
    deployment_id: int | None
    attempts: int
    next_attempt_at: datetime

    @property
    def key(self) -> tuple[int, str]:
        return (self.app_id, self.change.environment)


def record_deployment(
    conn: sa.Connection,
    app_id: int,
    environment: str,
    revision: int,
    build_id: int | None,
    commit_sha: str,
    reason: str,
) -> None:
    """Queue the deployment of a desired-state change inside the change's transaction (no-op for non-GitHub apps)."""
    repo_id = conn.execute(sa.select(github_apps.c.repo_id).where(github_apps.c.app_id == app_id)).scalar()
    if repo_id is None:
        return
    now = utcnow()
    conn.execute(
        deployment_outbox.insert().values(
            app_id=app_id,
            repo_id=repo_id,
            environment=environment[:100],
            revision=revision,
            build_id=build_id,
            commit_sha=commit_sha,
            reason=reason[:40],
            step=steps_of(reason)[0],
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )


class DeploymentStore:
    """Reads and writes of the deployment outbox, on the build store's engine."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def unsent(self, limit: int) -> list[DeploymentRow]:
        """Unsent rows, oldest first."""
        rows = unsent_outbox_rows(self.engine, deployment_outbox, limit)
        return [
            DeploymentRow(
                id=r.id,
                app_id=r.app_id,
                repo_id=r.repo_id,
                change=Change(r.workspace, r.app, r.environment, r.revision, r.build_id, r.commit_sha, r.reason),
                step=r.step,
                deployment_id=r.deployment_id,
                attempts=r.attempts,
                next_attempt_at=aware(r.next_attempt_at) or utcnow(),
            )
            for r in rows
        ]

    def route(self, repo_id: int) -> tuple[int | None, str] | None:
        return repo_route(self.engine, repo_id)

    def image_kept(self, build_id: int) -> bool:
        """Whether the build's image is still in the registry (retention has not deleted it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.builds.c.image_digest, t.builds.c.image_deleted_at).where(t.builds.c.id == build_id)
            ).first()
        return row is not None and bool(row.image_digest) and row.image_deleted_at is None

    def replaced(self, row: DeploymentRow) -> int | None:
        """The GitHub deployment an earlier change of the same app and environment created, the newest one."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(deployment_outbox.c.deployment_id)
                .where(
                    deployment_outbox.c.app_id == row.app_id,
                    deployment_outbox.c.environment == row.change.environment,
                    deployment_outbox.c.id < row.id,
                    deployment_outbox.c.deployment_id.is_not(None),
                )
                .order_by(deployment_outbox.c.id.desc())
                .limit(1)
            ).scalar()

    def advance(
        self, row_id: int, step: str, *, deployment_id: int | None = None, final_state: str | None = None
    ) -> None:
        """Record a step done: the next one to take, GitHub's deployment id, the final state reported."""
        values: dict[str, object] = {"step": step, "attempts": 0, "last_error": None}
        if deployment_id is not None:
            values["deployment_id"] = deployment_id
        if final_state is not None:
            values["final_state"] = final_state
        with self.engine.begin() as conn:
            conn.execute(deployment_outbox.update().where(deployment_outbox.c.id == row_id).values(**values))

    def mark(self, row_id: int, outcome: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                deployment_outbox.update()
                .where(deployment_outbox.c.id == row_id, deployment_outbox.c.outcome.is_(None))
                .values(outcome=outcome, done_at=utcnow(), last_error=error[:2000] if error else None)
            )

    def drop_unsent(self, error: str) -> int:
        """Give up every unsent row (no App to send them with); how many there were."""
        with self.engine.begin() as conn:
            done = conn.execute(
                deployment_outbox.update()
                .where(deployment_outbox.c.outcome.is_(None))
                .values(outcome="dropped", done_at=utcnow(), last_error=error[:2000])
            )
        return int(done.rowcount or 0)

    def retry_later(self, row_id: int, at: datetime, error: str, *, failed: bool = True) -> None:
        """Try the row again at `at`; only a failed attempt of its own counts towards its backoff."""
        retry_outbox_row(self.engine, deployment_outbox, row_id, at, error, failed)
