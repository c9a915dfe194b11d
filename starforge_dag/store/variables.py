"""Variables and secrets: immutable versions per app and per workspace, and the versions each build was queued with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import SecretStr

from ..core.models import App, utcnow
from ..variables import rules
from ..variables.crypto import SecretBox, fingerprint, new_fingerprint_key
from ..variables.models import ResolvedVariable, VariableVersion
from . import schema as t
from .apps import check_live
from .desired import lock_app
from .rows import NotFound, StoreBase, aware, for_update, to_app

FINGERPRINT_KEY = "fingerprint"
_ROTATE_BATCH = 200


@dataclass(frozen=True)
class NewValue:
    """One variable to set: its value is a secret when `secret` is true."""

    name: str
    value: str
    secret: bool = False
    for_previews: bool = False  # a secret that pull-request previews of same-repository branches get too


def _latest(rows: Sequence[sa.Row]) -> dict[tuple[int | None, str], sa.Row]:
    """The newest version per (scope, name), deletions included."""
    latest: dict[tuple[int | None, str], sa.Row] = {}
    for row in rows:
        key = (row.app_id, row.name)
        if key not in latest or row.version > latest[key].version:
            latest[key] = row
    return latest


def _scope_rows(conn: sa.Connection, workspace_id: int, app_id: int | None, both: bool = False) -> list[sa.Row]:
    scope = t.variables.c.app_id.is_(None) if app_id is None else t.variables.c.app_id == app_id
    if both and app_id is not None:
        scope = sa.or_(t.variables.c.app_id.is_(None), t.variables.c.app_id == app_id)
    return list(conn.execute(sa.select(t.variables).where(t.variables.c.workspace_id == workspace_id, scope)).all())


def live_versions(conn: sa.Connection, workspace_id: int, app_id: int | None) -> dict[str, sa.Row]:
    """The scope's current variables by name (deleted ones left out)."""
    return {name: r for (_, name), r in _latest(_scope_rows(conn, workspace_id, app_id)).items() if not r.deleted}


def resolved_versions(conn: sa.Connection, app: App) -> list[sa.Row]:
    """What a build of the app gets now: its workspace's variables, each overridden by the app's of that name."""
    ws_id = conn.execute(sa.select(t.apps.c.workspace_id).where(t.apps.c.id == app.id)).scalar_one()
    out: dict[str, sa.Row] = {}
    for (_, name), row in sorted(_latest(_scope_rows(conn, ws_id, app.id, both=True)).items(), key=_app_last):
        if not row.deleted:  # an app's deleted variable no longer hides its workspace's
            out[name] = row
    return sorted(out.values(), key=lambda r: r.name)


def _app_last(item: tuple[tuple[int | None, str], sa.Row]) -> tuple[int, str]:
    (app_id, name), _ = item
    return (0 if app_id is None else 1, name)


def record_build_variables(conn: sa.Connection, build_id: int, rows: Sequence[sa.Row]) -> None:
    if rows:
        conn.execute(t.build_variables.insert(), [{"build_id": build_id, "variable_id": r.id} for r in rows])


def _version(row: sa.Row, workspace: str, app: str | None) -> VariableVersion:
    return VariableVersion(
        id=row.id,
        workspace=workspace,
        app=app,
        scope="workspace" if row.app_id is None else "app",
        name=row.name,
        version=row.version,
        secret=row.secret,
        for_previews=row.for_previews,
        value=None if row.secret or row.deleted else row.value,
        fingerprint=row.fingerprint,
        deleted=row.deleted,
        actor=row.actor,
        created_at=aware(row.created_at) or utcnow(),
    )


class Variables(StoreBase):
    """Reads and writes of variables; values of secrets go in sealed and come out only for builds."""

    def _scope(
        self, conn: sa.Connection, workspace: str, app: str | None, *, create: bool = False, lock: bool = True
    ) -> tuple[int, App | None]:
        """The workspace id and the app of a scope, locked (for writers) so versions are taken one at a time."""
        if app is not None:
            row = conn.execute(
                sa.select(t.apps, t.workspaces.c.name.label("workspace"))
                .select_from(t.apps.join(t.workspaces, t.workspaces.c.id == t.apps.c.workspace_id))
                .where(t.workspaces.c.name == workspace, t.apps.c.name == app)
            ).first()
            if row is None:
                raise NotFound(f"no app named {app!r} in workspace {workspace!r}")
            if lock:
                lock_app(conn, row.id)
            return row.workspace_id, to_app(row)
        query = sa.select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
        ws_id = conn.execute(for_update(conn, query, of=t.workspaces) if lock else query).scalar()
        if ws_id is None:
            if not create:
                raise NotFound(f"no workspace named {workspace!r}")
            ws_id = conn.execute(
                t.workspaces.insert().values(name=workspace, created_at=utcnow()).returning(t.workspaces.c.id)
            ).scalar_one()
        return ws_id, None

    def fingerprint_key(self, box: SecretBox) -> bytes:
        """The store's fingerprint key, made on first use (see `variables.crypto`)."""
        with self._tx() as conn:
            return self._fingerprint_key(conn, box)

    def _fingerprint_key(self, conn: sa.Connection, box: SecretBox) -> bytes:
        query = sa.select(t.secret_keys.c.ciphertext).where(t.secret_keys.c.name == FINGERPRINT_KEY)
        sealed = conn.execute(query).scalar()
        if sealed is None:
            with conn.begin_nested():
                try:
                    conn.execute(
                        t.secret_keys.insert().values(
                            name=FINGERPRINT_KEY, ciphertext=box.seal_bytes(new_fingerprint_key()), created_at=utcnow()
                        )
                    )
                except sa.exc.IntegrityError:
                    pass
            sealed = conn.execute(query).scalar_one()
        return box.open_bytes(sealed)

    def set_variables(
        self, workspace: str, app: str | None, values: Sequence[NewValue], actor: str, box: SecretBox
    ) -> list[VariableVersion]:
        """Write a new version of each variable, all or none: every rule is checked before anything is written."""
        for item in values:
            rules.check_name(item.name)
            rules.check_value(item.name, item.value)
        names = [item.name for item in values]
        if len(set(names)) != len(names):
            raise rules.InvalidVariable("a variable is named twice in one request")
        with self._tx() as conn:
            ws_id, target = self._scope(conn, workspace, app, create=app is None)
            if target is not None:
                check_live(target)
            key = self._fingerprint_key(conn, box)
            current = _latest(_scope_rows(conn, ws_id, target.id if target else None))
            live = {name for (_, name), r in current.items() if not r.deleted}
            scope = f"app {workspace}/{app}" if app else f"workspace {workspace}"
            rules.check_count(len(live), len(set(names) - live), scope)
            now = utcnow()
            ids = []
            for item in values:
                previous = current.get((target.id if target else None, item.name))
                ids.append(
                    conn.execute(
                        t.variables.insert()
                        .values(
                            workspace_id=ws_id,
                            app_id=target.id if target else None,
                            name=item.name,
                            version=(previous.version if previous else 0) + 1,
                            secret=item.secret,
                            value=None if item.secret else item.value,
                            ciphertext=box.seal(item.value) if item.secret else None,
                            fingerprint=fingerprint(key, item.value),
                            deleted=False,
                            for_previews=item.for_previews and item.secret,
                            actor=actor,
                            created_at=now,
                        )
                        .returning(t.variables.c.id)
                    ).scalar_one()
                )
            rows = conn.execute(sa.select(t.variables).where(t.variables.c.id.in_(ids))).all()
        by_id = {r.id: r for r in rows}
        return [_version(by_id[i], workspace, app) for i in ids]

    def unset_variable(self, workspace: str, app: str | None, name: str, actor: str) -> VariableVersion:
        """Record the variable's removal as its newest version; NotFound when it is not set."""
        with self._tx() as conn:
            ws_id, target = self._scope(conn, workspace, app)
            if target is not None:
                check_live(target)
            previous = live_versions(conn, ws_id, target.id if target else None).get(name)
            if previous is None:
                where = f"app {workspace}/{app}" if app else f"workspace {workspace}"
                raise NotFound(f"variable {name[:80]!r} is not set in {where}")
            new_id = conn.execute(
                t.variables.insert()
                .values(
                    workspace_id=ws_id,
                    app_id=previous.app_id,
                    name=name,
                    version=previous.version + 1,
                    secret=previous.secret,
                    deleted=True,
                    actor=actor,
                    created_at=utcnow(),
                )
                .returning(t.variables.c.id)
            ).scalar_one()
            row = conn.execute(sa.select(t.variables).where(t.variables.c.id == new_id)).one()
        return _version(row, workspace, app)

    def variables(self, workspace: str, app: str | None = None) -> list[VariableVersion]:
        """The scope's current variables, by name."""
        with self.engine.connect() as conn:
            ws_id, target = self._scope(conn, workspace, app, lock=False)
            live = live_versions(conn, ws_id, target.id if target else None)
        return [_version(live[name], workspace, app) for name in sorted(live)]

    def variable_history(self, workspace: str, app: str | None = None) -> list[VariableVersion]:
        """Every version of the scope's variables, oldest first: who changed which name when (never values)."""
        with self.engine.connect() as conn:
            ws_id, target = self._scope(conn, workspace, app, lock=False)
            rows = _scope_rows(conn, ws_id, target.id if target else None)
        return [_version(r, workspace, app) for r in sorted(rows, key=lambda r: r.id)]

    def build_variables(self, build_id: int, box: SecretBox) -> list[ResolvedVariable]:
        """Exactly the versions the build was queued with, secrets opened, for handing to that build only."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.variables)
                .join(t.build_variables, t.build_variables.c.variable_id == t.variables.c.id)
                .where(t.build_variables.c.build_id == build_id)
                .order_by(t.variables.c.name)
            ).all()
        return [
            ResolvedVariable(
                id=r.id,
                name=r.name,
                scope="workspace" if r.app_id is None else "app",
                version=r.version,
                secret=r.secret,
                value=SecretStr(box.open(r.ciphertext) if r.secret else (r.value or "")),
                fingerprint=r.fingerprint or "",
            )
            for r in rows
        ]

    def rotate_secrets(self, box: SecretBox) -> int:
        """Re-encrypt every sealed value under the newest key, a batch per transaction; old keys keep opening the
        rest meanwhile, so builds and writers go on during a rotation. Answers how many were re-encrypted."""
        done = 0
        with self._tx() as conn:
            for name, sealed in conn.execute(sa.select(t.secret_keys.c.name, t.secret_keys.c.ciphertext)).all():
                conn.execute(
                    t.secret_keys.update().where(t.secret_keys.c.name == name).values(ciphertext=box.rotate(sealed))
                )
                done += 1
            endpoints = t.webhook_endpoints
            for endpoint_id, sealed in conn.execute(sa.select(endpoints.c.id, endpoints.c.secret_ciphertext)).all():
                conn.execute(
                    endpoints.update().where(endpoints.c.id == endpoint_id).values(secret_ciphertext=box.rotate(sealed))
                )
                done += 1
        last = 0
        while True:
            with self._tx() as conn:
                batch = conn.execute(
                    sa.select(t.variables.c.id, t.variables.c.ciphertext)
                    .where(t.variables.c.ciphertext.is_not(None), t.variables.c.id > last)
                    .order_by(t.variables.c.id)
                    .limit(_ROTATE_BATCH)
                ).all()
                for variable_id, sealed in batch:
                    conn.execute(
                        t.variables.update()
                        .where(t.variables.c.id == variable_id)
                        .values(ciphertext=box.rotate(sealed))
                    )
            if not batch:
                return done
            done += len(batch)
            last = batch[-1].id
