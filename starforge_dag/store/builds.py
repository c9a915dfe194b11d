"""The build store: apps, webhook deliveries, the build queue, transitions and desired state."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import roles

from ..core.errors import IllegalTransition
from ..core.models import App, Build, DesiredState, Transition, utcnow
from ..core.states import ACTIVE, WORKING, BuildState, check_transition
from . import schema as t
from .db import get_engine

M = TypeVar("M", bound=BaseModel)


class NotFound(LookupError):
    """The app or build asked for does not exist."""


@dataclass
class DeliveryOutcome:
    redelivery: bool
    builds: list[Build] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


@dataclass
class EnqueueOutcome:
    build: Build
    created: bool


def full_name_from_url(url: str) -> str | None:
    """`owner/repo` from a clone URL (https, ssh or file), the key GitHub pushes are matched on."""
    match = re.search(r"[/:]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"{match.group(1)}/{match.group(2)}".lower() if match else None


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_BUILD_COLUMNS: list[roles.ColumnsClauseRole] = [
    t.builds,
    t.apps.c.name.label("app"),
    t.workspaces.c.name.label("workspace"),
]
_BUILD_FROM = t.builds.join(t.apps, t.apps.c.id == t.builds.c.app_id).join(
    t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id
)
_APP_FROM = t.apps.join(t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id)


def _row(model: type[M], row) -> M:
    """A model from a result row: its fields by name, timestamps made timezone-aware (SQLite drops the zone)."""
    m = row._mapping
    values = {name: m[name] for name in model.model_fields if name in m}
    return model(**{k: _aware(v) if isinstance(v, datetime) else v for k, v in values.items()})


def _build(row) -> Build:
    return _row(Build, row)


def _app(row) -> App:
    return _row(App, row)


class BuildStore:
    """All build-state reads and writes; every state change goes through `check_transition`."""

    def __init__(self, url: str):
        self.engine = get_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _for_update(self, query: sa.Select) -> sa.Select:
        # SQLite transactions start with BEGIN IMMEDIATE, which already excludes other writers.
        return query.with_for_update(of=t.builds) if self.is_postgres else query

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- apps ---------------------------------------------------------------------------------

    def add_app(
        self,
        workspace: str,
        name: str,
        repo_url: str,
        branch: str = "main",
        *,
        repo_full_name: str | None = None,
        root_dir: str = "",
        dockerfile_path: str | None = None,
        watch_paths: Sequence[str] = (),
        cancel_running: bool = False,
    ) -> App:
        now = utcnow()
        with self._tx() as conn:
            ws_id = conn.execute(sa.select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)).scalar()
            if ws_id is None:
                ws_id = conn.execute(
                    t.workspaces.insert().values(name=workspace, created_at=now).returning(t.workspaces.c.id)
                ).scalar_one()
            try:
                with conn.begin_nested():
                    conn.execute(
                        t.apps.insert().values(
                            workspace_id=ws_id,
                            name=name,
                            repo_url=repo_url,
                            repo_full_name=(repo_full_name or full_name_from_url(repo_url)),
                            branch=branch,
                            root_dir=root_dir.strip("/"),
                            dockerfile_path=dockerfile_path,
                            watch_paths=list(watch_paths),
                            cancel_running=cancel_running,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                raise ValueError(f"app {workspace}/{name} already exists") from None
        return self.get_app(name, workspace)

    def get_app(self, name: str, workspace: str | None = None) -> App:
        if workspace is None and "/" in name:
            workspace, name = name.split("/", 1)
        query = sa.select(t.apps, t.workspaces.c.name.label("workspace")).select_from(_APP_FROM)
        query = query.where(t.apps.c.name == name)
        if workspace is not None:
            query = query.where(t.workspaces.c.name == workspace)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFound(f"no app named {name!r}" + (f" in workspace {workspace!r}" if workspace else ""))
        if len(rows) > 1:
            raise NotFound(f"app name {name!r} is in several workspaces; say workspace/app")
        return _app(rows[0])

    def get_app_by_id(self, app_id: int) -> App:
        query = sa.select(t.apps, t.workspaces.c.name.label("workspace")).select_from(_APP_FROM)
        with self.engine.connect() as conn:
            row = conn.execute(query.where(t.apps.c.id == app_id)).first()
        if row is None:
            raise NotFound(f"no app with id {app_id}")
        return _app(row)

    def list_apps(self) -> list[App]:
        query = sa.select(t.apps, t.workspaces.c.name.label("workspace")).select_from(_APP_FROM).order_by(t.apps.c.id)
        with self.engine.connect() as conn:
            return [_app(r) for r in conn.execute(query)]

    def apps_for_repo(self, full_name: str, urls: Sequence[str] = ()) -> list[App]:
        cond = t.apps.c.repo_full_name == full_name.lower()
        if urls:
            cond = sa.or_(cond, t.apps.c.repo_url.in_(list(urls)))
        query = sa.select(t.apps, t.workspaces.c.name.label("workspace")).select_from(_APP_FROM).where(cond)
        with self.engine.connect() as conn:
            return [_app(r) for r in conn.execute(query.order_by(t.apps.c.id))]

    # -- enqueue ------------------------------------------------------------------------------

    def record_delivery(
        self, delivery_id: str, event: str, wanted: Sequence[tuple[App, str, str]], actor: str = "github"
    ) -> DeliveryOutcome:
        """Record a webhook delivery and enqueue its builds atomically; a redelivery enqueues nothing."""
        try:
            with self._tx() as conn:
                conn.execute(
                    t.webhook_deliveries.insert().values(
                        delivery_id=delivery_id, event=event, build_ids=[], received_at=utcnow()
                    )
                )
                builds, created = [], []
                for app, ref, sha in wanted:
                    build, was_created = self._enqueue(conn, app, ref, sha, "push", delivery_id, actor)
                    builds.append(build)
                    if was_created:
                        created.append(build.id)
                conn.execute(
                    t.webhook_deliveries.update()
                    .where(t.webhook_deliveries.c.delivery_id == delivery_id)
                    .values(build_ids=[b.id for b in builds])
                )
                return DeliveryOutcome(redelivery=False, builds=builds, created=created)
        except IntegrityError:
            with self.engine.connect() as conn:
                ids = conn.execute(
                    sa.select(t.webhook_deliveries.c.build_ids).where(t.webhook_deliveries.c.delivery_id == delivery_id)
                ).scalar()
            if ids is None:
                raise
            return DeliveryOutcome(redelivery=True, builds=[self.get_build(i) for i in ids])

    def enqueue(self, app: App, ref: str, sha: str, trigger: str = "manual", actor: str = "api") -> EnqueueOutcome:
        with self._tx() as conn:
            build, created = self._enqueue(conn, app, ref, sha, trigger, None, actor)
        return EnqueueOutcome(build=build, created=created)

    def _enqueue(
        self, conn: sa.Connection, app: App, ref: str, sha: str, trigger: str, delivery_id: str | None, actor: str
    ) -> tuple[Build, bool]:
        now = utcnow()
        existing = self._active_for_commit(conn, app.id, sha)
        if existing is not None:
            return existing, False
        try:
            with conn.begin_nested():
                build_id = conn.execute(
                    t.builds.insert()
                    .values(
                        app_id=app.id,
                        ref=ref,
                        commit_sha=sha,
                        status=BuildState.QUEUED.value,
                        trigger=trigger,
                        delivery_id=delivery_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(t.builds.c.id)
                ).scalar_one()
        except IntegrityError:
            # A concurrent delivery of the same commit won the race for the active slot.
            existing = self._active_for_commit(conn, app.id, sha)
            if existing is None:
                raise
            return existing, False
        self._record(conn, build_id, None, BuildState.QUEUED, f"{trigger} of {ref} at {sha[:12]}", actor, None)
        self._supersede_older(conn, app, ref, build_id, actor)
        return self._get(conn, build_id), True

    def _active_for_commit(self, conn: sa.Connection, app_id: int, sha: str) -> Build | None:
        row = conn.execute(
            sa.select(*_BUILD_COLUMNS)
            .select_from(_BUILD_FROM)
            .where(t.builds.c.app_id == app_id, t.builds.c.commit_sha == sha, t.builds.c.status.in_(t.ACTIVE_STATES))
        ).first()
        return _build(row) if row else None

    def _supersede_older(self, conn: sa.Connection, app: App, ref: str, new_id: int, actor: str) -> None:
        older = conn.execute(
            self._for_update(
                sa.select(t.builds.c.id, t.builds.c.status).where(
                    t.builds.c.app_id == app.id,
                    t.builds.c.ref == ref,
                    t.builds.c.id < new_id,
                    t.builds.c.status.in_(t.ACTIVE_STATES),
                )
            )
        ).all()
        for build_id, status in older:
            reason = f"superseded by build {new_id}"
            if status == BuildState.QUEUED.value:
                self._set_state(conn, build_id, BuildState.QUEUED, BuildState.SUPERSEDED, reason, actor)
            elif app.cancel_running:
                conn.execute(
                    t.builds.update()
                    .where(t.builds.c.id == build_id, t.builds.c.cancel_state.is_(None))
                    .values(cancel_state=BuildState.SUPERSEDED.value, error=reason, updated_at=utcnow())
                )

    # -- queue --------------------------------------------------------------------------------

    def claim_queued(self, limit: int, claimer: str) -> list[Build]:
        """Atomically take up to `limit` unclaimed queued builds; no build is ever handed out twice."""
        with self._tx() as conn:
            query = (
                sa.select(t.builds.c.id)
                .where(t.builds.c.status == BuildState.QUEUED.value, t.builds.c.claimed_at.is_(None))
                .order_by(t.builds.c.id)
                .limit(limit)
            )
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = conn.execute(query).scalars().all()
            if not ids:
                return []
            conn.execute(
                t.builds.update().where(t.builds.c.id.in_(ids)).values(claimed_at=utcnow(), claimed_by=claimer)
            )
            rows = conn.execute(
                sa.select(*_BUILD_COLUMNS)
                .select_from(_BUILD_FROM)
                .where(t.builds.c.id.in_(ids))
                .order_by(t.builds.c.id)
            ).all()
        return [_build(r) for r in rows]

    def release_claim(self, build_id: int) -> None:
        """Hand a claimed build back to the queue (its run was never created)."""
        with self._tx() as conn:
            conn.execute(
                t.builds.update()
                .where(
                    t.builds.c.id == build_id, t.builds.c.status == BuildState.QUEUED.value, t.builds.c.run_id.is_(None)
                )
                .values(claimed_at=None, claimed_by=None)
            )

    def stale_claims(self, older_than: datetime) -> list[Build]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_BUILD_COLUMNS)
                .select_from(_BUILD_FROM)
                .where(
                    t.builds.c.status == BuildState.QUEUED.value,
                    t.builds.c.run_id.is_(None),
                    t.builds.c.claimed_at.is_not(None),
                    t.builds.c.claimed_at < older_than,
                )
            ).all()
        return [_build(r) for r in rows]

    def attach_run(self, build_id: int, run_id: str) -> Build:
        with self._tx() as conn:
            conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(run_id=run_id, updated_at=utcnow()))
            return self._get(conn, build_id)

    # -- transitions --------------------------------------------------------------------------

    def transition(
        self,
        build_id: int,
        to: BuildState | str,
        reason: str,
        actor: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
        error_step: str | None = None,
        resume: bool = False,
    ) -> Build:
        """Move a build to `to` (a no-op when it is already there); illegal moves raise."""
        to = BuildState(to)
        with self._tx() as conn:
            current = self._locked_state(conn, build_id)
            if current != to:
                check_transition(current, to, resume=resume)
                self._set_state(conn, build_id, current, to, reason, actor, run_id, error, error_step)
            return self._get(conn, build_id)

    def finish(
        self,
        build_id: int,
        to: BuildState | str,
        reason: str,
        actor: str,
        *,
        run_id: str | None = None,
        error_step: str | None = None,
        only_run_id: str | None = None,
    ) -> Build | None:
        """End a build if it is still active (sensors race the ops); None when already ended.

        With `only_run_id`, a build that a newer run (a re-execution) has taken over is left alone.
        """
        to = BuildState(to)
        with self._tx() as conn:
            current = self._locked_state(conn, build_id)
            if current.terminal:
                return None
            if only_run_id is not None:
                owner = conn.execute(sa.select(t.builds.c.run_id).where(t.builds.c.id == build_id)).scalar()
                if owner is not None and owner != only_run_id:
                    return None
            error = reason if to != BuildState.SUCCEEDED else None
            self._set_state(conn, build_id, current, to, reason, actor, run_id, error, error_step)
            return self._get(conn, build_id)

    def _locked_state(self, conn: sa.Connection, build_id: int) -> BuildState:
        status = conn.execute(self._for_update(sa.select(t.builds.c.status).where(t.builds.c.id == build_id))).scalar()
        if status is None:
            raise NotFound(f"no build with id {build_id}")
        return BuildState(status)

    def _set_state(
        self,
        conn: sa.Connection,
        build_id: int,
        current: BuildState,
        to: BuildState,
        reason: str,
        actor: str,
        run_id: str | None = None,
        error: str | None = None,
        error_step: str | None = None,
    ) -> None:
        values: dict = {"status": to.value, "updated_at": utcnow()}
        if to in WORKING and (current == BuildState.QUEUED or current.terminal):
            values["started_at"] = values["updated_at"]
        if run_id is not None:
            values["run_id"] = run_id
        if to in (BuildState.FAILED, BuildState.TIMED_OUT, BuildState.CANCELED, BuildState.SUPERSEDED):
            values["error"] = error or reason
            values["error_step"] = error_step
        elif to in WORKING and current.terminal:
            values.update(error=None, error_step=None, cancel_state=None)
        conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(**values))
        self._record(conn, build_id, current, to, reason, actor, run_id)

    def _record(
        self,
        conn,
        build_id: int,
        current: BuildState | None,
        to: BuildState,
        reason: str,
        actor: str,
        run_id: str | None,
    ) -> None:
        conn.execute(
            t.build_transitions.insert().values(
                build_id=build_id,
                from_state=current.value if current else None,
                to_state=to.value,
                reason=reason,
                actor=actor,
                run_id=run_id,
                at=utcnow(),
            )
        )

    def request_cancel(self, build_id: int, actor: str, reason: str = "canceled by user") -> Build:
        """Cancel now if queued; otherwise flag the running build, which stops at its next check."""
        with self._tx() as conn:
            current = self._locked_state(conn, build_id)
            if current.terminal:
                raise IllegalTransition(f"build {build_id} already ended ({current.value})")
            if current == BuildState.QUEUED:
                self._set_state(conn, build_id, current, BuildState.CANCELED, reason, actor)
            else:
                conn.execute(
                    t.builds.update()
                    .where(t.builds.c.id == build_id)
                    .values(cancel_state=BuildState.CANCELED.value, error=reason, updated_at=utcnow())
                )
            return self._get(conn, build_id)

    def cancel_state(self, build_id: int) -> BuildState | None:
        """The terminal state a running build was asked to end in, if any."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.builds.c.cancel_state).where(t.builds.c.id == build_id)).scalar()
        return BuildState(value) if value else None

    def cancel_requests(self) -> list[tuple[Build, BuildState]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_BUILD_COLUMNS)
                .select_from(_BUILD_FROM)
                .where(t.builds.c.cancel_state.is_not(None), t.builds.c.status.in_(t.ACTIVE_STATES))
            ).all()
        return [(_build(r), BuildState(r._mapping["cancel_state"])) for r in rows]

    # -- results ------------------------------------------------------------------------------

    def set_commit_time(self, build_id: int, commit_time: datetime) -> None:
        with self._tx() as conn:
            conn.execute(t.builds.update().where(t.builds.c.id == build_id).values(commit_time=commit_time))

    def set_image(self, build_id: int, image_ref: str, digest: str) -> Build:
        with self._tx() as conn:
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id)
                .values(image_ref=image_ref, image_digest=digest, updated_at=utcnow())
            )
            return self._get(conn, build_id)

    def update_desired_state(self, build_id: int) -> tuple[bool, DesiredState | None]:
        """Point the app at this build's image unless a newer commit is already desired (invariant 2)."""
        for _ in range(3):
            try:
                with self._tx() as conn:
                    return self._update_desired_state(conn, build_id)
            except IntegrityError:
                continue  # a concurrent first insert for the app; re-read and compare
        raise RuntimeError(f"could not update desired state for build {build_id}")

    def _update_desired_state(self, conn: sa.Connection, build_id: int) -> tuple[bool, DesiredState | None]:
        build = self._get(conn, build_id)
        if not build.image_digest or not build.image_ref:
            raise ValueError(f"build {build_id} has no pushed image")
        query = sa.select(t.desired_state).where(t.desired_state.c.app_id == build.app_id)
        if self.is_postgres:
            query = query.with_for_update()
        current = conn.execute(query).first()
        values = dict(
            build_id=build.id,
            image_ref=build.image_ref,
            image_digest=build.image_digest,
            commit_sha=build.commit_sha,
            commit_time=build.commit_time,
            updated_at=utcnow(),
        )
        if current is None:
            conn.execute(t.desired_state.insert().values(app_id=build.app_id, **values))
        else:
            cur = current._mapping
            if _order_key(build.commit_time, build.id) <= _order_key(_aware(cur["commit_time"]), cur["build_id"]):
                return False, self._desired(conn, build.app_id)
            conn.execute(t.desired_state.update().where(t.desired_state.c.app_id == build.app_id).values(**values))
        return True, self._desired(conn, build.app_id)

    def desired_state(self, app_id: int) -> DesiredState | None:
        with self.engine.connect() as conn:
            return self._desired(conn, app_id)

    def _desired(self, conn: sa.Connection, app_id: int) -> DesiredState | None:
        row = conn.execute(
            sa.select(t.desired_state, t.apps.c.name.label("app"), t.workspaces.c.name.label("workspace"))
            .select_from(t.desired_state.join(_APP_FROM, t.apps.c.id == t.desired_state.c.app_id))
            .where(t.desired_state.c.app_id == app_id)
        ).first()
        if row is None:
            return None
        return _row(DesiredState, row)

    # -- reads --------------------------------------------------------------------------------

    def get_build(self, build_id: int) -> Build:
        with self.engine.connect() as conn:
            return self._get(conn, build_id)

    def _get(self, conn: sa.Connection, build_id: int) -> Build:
        row = conn.execute(sa.select(*_BUILD_COLUMNS).select_from(_BUILD_FROM).where(t.builds.c.id == build_id)).first()
        if row is None:
            raise NotFound(f"no build with id {build_id}")
        return _build(row)

    def list_builds(
        self, app_id: int | None = None, limit: int = 50, statuses: Sequence[BuildState | str] | None = None
    ) -> list[Build]:
        query = sa.select(*_BUILD_COLUMNS).select_from(_BUILD_FROM).order_by(t.builds.c.id.desc()).limit(limit)
        if app_id is not None:
            query = query.where(t.builds.c.app_id == app_id)
        if statuses is not None:
            query = query.where(t.builds.c.status.in_([BuildState(s).value for s in statuses]))
        with self.engine.connect() as conn:
            return [_build(r) for r in conn.execute(query)]

    def active_builds(self) -> list[Build]:
        return self.list_builds(limit=10_000, statuses=sorted(ACTIVE))

    def transitions(self, build_id: int) -> list[Transition]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.build_transitions)
                .where(t.build_transitions.c.build_id == build_id)
                .order_by(t.build_transitions.c.id)
            ).all()
        return [_row(Transition, r) for r in rows]


def _order_key(commit_time: datetime | None, build_id: int) -> tuple[datetime, int]:
    return (commit_time or datetime.min.replace(tzinfo=UTC), build_id)


_stores: dict[str, BuildStore] = {}


def open_store(url: str) -> BuildStore:
    """The store for a database URL (engine shared per process; schema upgraded on first use)."""
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = BuildStore(url)
    return store
