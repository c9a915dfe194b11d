"""Workspace tokens in the store: kept as hashes, revoked at once, their last use written at most once a minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..core.models import utcnow
from ..core.tokens import TOUCH_EVERY
from . import schema as t
from .rows import NotFound, StoreBase, aware


@dataclass(frozen=True)
class WorkspaceToken:
    id: int
    workspace: str
    name: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_SELECT = sa.select(t.workspace_tokens, t.workspaces.c.name.label("workspace")).select_from(
    t.workspace_tokens.join(t.workspaces, t.workspaces.c.id == t.workspace_tokens.c.workspace_id)
)


def _token(row: sa.Row) -> WorkspaceToken:
    return WorkspaceToken(
        id=row.id,
        workspace=row.workspace,
        name=row.name,
        token_hash=row.token_hash,
        created_at=aware(row.created_at) or utcnow(),
        last_used_at=aware(row.last_used_at),
        revoked_at=aware(row.revoked_at),
    )


def workspace_id(conn: sa.Connection, workspace: str, *, create: bool = False) -> int:
    """The workspace's id; NotFound unless it exists or `create` makes it."""
    ws_id = conn.execute(sa.select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)).scalar()
    if ws_id is not None:
        return int(ws_id)
    if not create:
        raise NotFound(f"no workspace named {workspace!r}")
    return int(
        conn.execute(
            t.workspaces.insert().values(name=workspace, created_at=utcnow()).returning(t.workspaces.c.id)
        ).scalar_one()
    )


class Tokens(StoreBase):
    """Reads and writes of workspace tokens."""

    def add_token(self, workspace: str, name: str, token_hash: str) -> WorkspaceToken:
        with self._tx() as conn:
            ws_id = workspace_id(conn, workspace, create=True)
            token_id = conn.execute(
                t.workspace_tokens.insert()
                .values(workspace_id=ws_id, name=name, token_hash=token_hash, created_at=utcnow())
                .returning(t.workspace_tokens.c.id)
            ).scalar_one()
            return _token(conn.execute(_SELECT.where(t.workspace_tokens.c.id == token_id)).one())

    def tokens(self, workspace: str) -> list[WorkspaceToken]:
        """The workspace's tokens, revoked ones too, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(_SELECT.where(t.workspaces.c.name == workspace).order_by(t.workspace_tokens.c.id))
            return [_token(r) for r in rows]

    def revoke_token(self, workspace: str, token_id: int) -> WorkspaceToken:
        """From now on the token answers 401; revoking twice keeps the first time."""
        with self._tx() as conn:
            row = conn.execute(
                _SELECT.where(t.workspaces.c.name == workspace, t.workspace_tokens.c.id == token_id)
            ).first()
            if row is None:
                raise NotFound(f"no token {token_id} in workspace {workspace!r}")
            conn.execute(
                t.workspace_tokens.update()
                .where(t.workspace_tokens.c.id == token_id, t.workspace_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return _token(conn.execute(_SELECT.where(t.workspace_tokens.c.id == token_id)).one())

    def live_token(self, token_hash: str) -> WorkspaceToken | None:
        """The unrevoked token with this hash, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                _SELECT.where(t.workspace_tokens.c.token_hash == token_hash, t.workspace_tokens.c.revoked_at.is_(None))
            ).first()
        return None if row is None else _token(row)

    def touch_token(self, token_id: int, now: datetime) -> None:
        """Record a use; a no-op when another request recorded one within the last minute."""
        column = t.workspace_tokens.c.last_used_at
        with self._tx() as conn:
            conn.execute(
                t.workspace_tokens.update()
                .where(t.workspace_tokens.c.id == token_id, sa.or_(column.is_(None), column < now - TOUCH_EVERY))
                .values(last_used_at=now)
            )
