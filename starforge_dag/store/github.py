"""GitHub's side of the store: installations, repositories by id, apps' repositories and pauses,
commits already seen, redeliveries asked for, and the commit status outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core.models import utcnow
from ..core.states import BuildState
from . import schema as t
from .rows import aware, retry_outbox_row, unsent_outbox_rows

installations = sa.Table(
    "github_installations",
    t.metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

repos = sa.Table(
    "github_repos",
    t.metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("installation_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

github_apps = sa.Table(
    "github_apps",
    t.metadata,
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("repo_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("paused_reason", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

seen_commits = sa.Table(
    "github_seen_commits",
    t.metadata,
    sa.Column("app_id", sa.Integer, primary_key=True),
    sa.Column("commit_sha", sa.String(64), primary_key=True),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

redeliveries = sa.Table(
    "github_redeliveries",
    t.metadata,
    sa.Column("guid", sa.String(100), primary_key=True),
    sa.Column("delivery_id", sa.BigInteger, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = sa.Table(
    "commit_status_outbox",
    t.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("build_id", sa.BigInteger, nullable=False),
    sa.Column("app_id", sa.Integer, nullable=False),
    sa.Column("repo_id", sa.BigInteger, nullable=False),
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("build_state", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=True),  # sent | skipped | dropped | failed; NULL while unsent
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_commit_status_outbox_unsent", "outcome", "id"),
)


@dataclass(frozen=True)
class StatusRow:
    """An unsent commit status: the build state it reports and where it goes."""

    id: int
    build_id: int
    app_id: int
    workspace: str
    app: str
    repo_id: int
    commit_sha: str
    build_state: BuildState
    reason: str
    run_id: str | None
    attempts: int
    next_attempt_at: datetime


@dataclass(frozen=True)
class AppRepo:
    app_id: int
    repo_id: int
    full_name: str | None
    installation_id: int | None
    paused_reason: str | None


def remember_seen(conn: sa.Connection, decisions: Sequence[tuple[int, str, str]]) -> None:
    """Record (app id, commit, decision) for commits not seen before; a commit's first decision stays."""
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(seen_commits)
    rows = [
        {"app_id": app_id, "commit_sha": sha, "decision": decision, "at": utcnow()}
        for app_id, sha, decision in decisions
    ]
    conn.execute(insert.on_conflict_do_nothing(index_elements=["app_id", "commit_sha"]), rows)


def record_status(conn: sa.Connection, build_id: int, to: BuildState, reason: str, run_id: str | None) -> None:
    """Queue the commit status of a transition, inside the transition's own transaction (no-op for non-GitHub apps)."""
    row = conn.execute(
        sa.select(t.builds.c.app_id, t.builds.c.commit_sha, t.builds.c.run_id, github_apps.c.repo_id)
        .select_from(t.builds.join(github_apps, github_apps.c.app_id == t.builds.c.app_id))
        .where(t.builds.c.id == build_id)
    ).first()
    if row is None:
        return
    now = utcnow()
    conn.execute(
        outbox.insert().values(
            build_id=build_id,
            app_id=row.app_id,
            repo_id=row.repo_id,
            commit_sha=row.commit_sha,
            build_state=BuildState(to).value,
            reason=reason[:2000],
            run_id=run_id or row.run_id,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )


def repo_route(engine: sa.Engine, repo_id: int) -> tuple[int | None, str] | None:
    """Where GitHub calls for a repository go: its App installation (none once uninstalled) and full name."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(repos.c.installation_id, repos.c.full_name).where(repos.c.id == repo_id)).first()
    return (row.installation_id, row.full_name) if row else None


class GitHubStore:
    """Reads and writes of the GitHub tables, on the build store's engine."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # -- installations and repositories -------------------------------------------------------

    def save_installation(self, installation_id: int, account: str, active: bool) -> None:
        with self.engine.begin() as conn:
            values = dict(account=account[:200], active=active, updated_at=utcnow())
            done = conn.execute(installations.update().where(installations.c.id == installation_id).values(**values))
            if done.rowcount == 0:
                conn.execute(installations.insert().values(id=installation_id, **values))

    def save_repo(self, repo_id: int, full_name: str, installation_id: int | None) -> None:
        with self.engine.begin() as conn:
            self._save_repo(conn, repo_id, full_name, installation_id)

    def _save_repo(self, conn: sa.Connection, repo_id: int, full_name: str, installation_id: int | None) -> None:
        values = dict(full_name=full_name[:200], installation_id=installation_id, updated_at=utcnow())
        done = conn.execute(repos.update().where(repos.c.id == repo_id).values(**values))
        if done.rowcount == 0:
            conn.execute(repos.insert().values(id=repo_id, **values))

    def installation_removed(self, installation_id: int, reason: str) -> list[int]:
        """The App lost this installation: its repositories have no route and their apps pause. Returns app ids."""
        with self.engine.begin() as conn:
            conn.execute(
                installations.update()
                .where(installations.c.id == installation_id)
                .values(active=False, updated_at=utcnow())
            )
            repo_ids = list(
                conn.execute(sa.select(repos.c.id).where(repos.c.installation_id == installation_id)).scalars()
            )
            conn.execute(
                repos.update().where(repos.c.id.in_(repo_ids)).values(installation_id=None, updated_at=utcnow())
            )
            return self._pause(conn, repo_ids, reason)

    def repos_removed(self, repo_ids: Sequence[int], reason: str) -> list[int]:
        with self.engine.begin() as conn:
            conn.execute(
                repos.update().where(repos.c.id.in_(list(repo_ids))).values(installation_id=None, updated_at=utcnow())
            )
            return self._pause(conn, list(repo_ids), reason)

    def repos_added(self, installation_id: int, added: Sequence[tuple[int, str]]) -> list[int]:
        """Repositories (id, full name) now served by the installation; their paused apps resume. Returns app ids."""
        with self.engine.begin() as conn:
            for repo_id, full_name in added:
                self._save_repo(conn, repo_id, full_name, installation_id)
            ids = [r for r, _ in added]
            resumed = list(
                conn.execute(
                    sa.select(github_apps.c.app_id).where(
                        github_apps.c.repo_id.in_(ids), github_apps.c.paused_reason.is_not(None)
                    )
                ).scalars()
            )
            conn.execute(
                github_apps.update()
                .where(github_apps.c.app_id.in_(resumed))
                .values(paused_reason=None, updated_at=utcnow())
            )
            return resumed

    def _pause(self, conn: sa.Connection, repo_ids: list[int], reason: str) -> list[int]:
        apps = list(conn.execute(sa.select(github_apps.c.app_id).where(github_apps.c.repo_id.in_(repo_ids))).scalars())
        conn.execute(
            github_apps.update().where(github_apps.c.app_id.in_(apps)).values(paused_reason=reason, updated_at=utcnow())
        )
        return apps

    # -- apps ---------------------------------------------------------------------------------

    def link_app(self, app_id: int, repo_id: int, full_name: str, installation_id: int | None) -> None:
        with self.engine.begin() as conn:
            self._save_repo(conn, repo_id, full_name, installation_id)
            conn.execute(github_apps.insert().values(app_id=app_id, repo_id=repo_id, updated_at=utcnow()))

    def relink_app(self, app_id: int, repo_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                github_apps.update().where(github_apps.c.app_id == app_id).values(repo_id=repo_id, updated_at=utcnow())
            )

    def app_repo(self, app_id: int) -> AppRepo | None:
        with self.engine.connect() as conn:
            rows = self._app_repos(conn, github_apps.c.app_id == app_id)
        return rows[0] if rows else None

    def app_repos(self, repo_id: int | None = None) -> list[AppRepo]:
        with self.engine.connect() as conn:
            return self._app_repos(conn, github_apps.c.repo_id == repo_id if repo_id is not None else sa.true())

    def _app_repos(self, conn: sa.Connection, cond) -> list[AppRepo]:
        rows = conn.execute(
            sa.select(
                github_apps.c.app_id,
                github_apps.c.repo_id,
                github_apps.c.paused_reason,
                repos.c.full_name,
                repos.c.installation_id,
            )
            .select_from(github_apps.outerjoin(repos, repos.c.id == github_apps.c.repo_id))
            .where(cond)
            .order_by(github_apps.c.app_id)
        ).all()
        return [AppRepo(r.app_id, r.repo_id, r.full_name, r.installation_id, r.paused_reason) for r in rows]

    def rename_repo(self, repo_id: int, full_name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(repos.update().where(repos.c.id == repo_id).values(full_name=full_name[:200]))

    def build_states(self, app_id: int, sha: str) -> list[BuildState]:
        """The states of the app's production builds of the commit (a preview of it is no build of the branch)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.builds.c.status).where(
                    t.builds.c.app_id == app_id, t.builds.c.commit_sha == sha, t.builds.c.environment == "production"
                )
            ).scalars()
            return [BuildState(s) for s in rows]

    # -- seen commits and redeliveries --------------------------------------------------------

    def see(self, app_id: int, sha: str, decision: str) -> str:
        """Record that a commit of an app was handled; the first decision stays and is returned."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    seen_commits.insert().values(app_id=app_id, commit_sha=sha, decision=decision, at=utcnow())
                )
            return decision
        except IntegrityError:
            with self.engine.connect() as conn:
                return str(
                    conn.execute(
                        sa.select(seen_commits.c.decision).where(
                            seen_commits.c.app_id == app_id, seen_commits.c.commit_sha == sha
                        )
                    ).scalar_one()
                )

    def seen(self, app_id: int, sha: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(seen_commits.c.decision).where(
                    seen_commits.c.app_id == app_id, seen_commits.c.commit_sha == sha
                )
            ).scalar()

    def claim_redelivery(self, guid: str, delivery_id: int) -> bool:
        """True the first time a delivery is asked to be redelivered; each is asked once."""
        try:
            with self.engine.begin() as conn:
                conn.execute(redeliveries.insert().values(guid=guid, delivery_id=delivery_id, requested_at=utcnow()))
            return True
        except IntegrityError:
            return False

    def release_redelivery(self, guid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(redeliveries.delete().where(redeliveries.c.guid == guid))

    # -- the status outbox --------------------------------------------------------------------

    def unsent(self, limit: int) -> list[StatusRow]:
        rows = unsent_outbox_rows(self.engine, outbox, limit)
        return [
            StatusRow(
                id=r.id,
                build_id=r.build_id,
                app_id=r.app_id,
                workspace=r.workspace,
                app=r.app,
                repo_id=r.repo_id,
                commit_sha=r.commit_sha,
                build_state=BuildState(r.build_state),
                reason=r.reason,
                run_id=r.run_id,
                attempts=r.attempts,
                next_attempt_at=aware(r.next_attempt_at) or utcnow(),
            )
            for r in rows
        ]

    def route(self, repo_id: int) -> tuple[int | None, str] | None:
        return repo_route(self.engine, repo_id)

    def mark(self, row_ids: Sequence[int], outcome: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(list(row_ids)), outbox.c.outcome.is_(None))
                .values(outcome=outcome, done_at=utcnow(), last_error=error)
            )

    def retry_later(self, row_id: int, at: datetime, error: str, *, failed: bool = True) -> None:
        """Try the row again at `at`; only a failed attempt of its own counts towards its backoff."""
        retry_outbox_row(self.engine, outbox, row_id, at, error, failed)
