"""Apps and their workspaces: registration and lookups (by name, id, or the repository a push names)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..core.errors import IllegalTransition
from ..core.models import App, utcnow
from . import schema as t
from .rows import APP_FROM, NotFound, StoreBase, for_update, to_app

# The settings an app's owner may change after registration.
CHANGEABLE = frozenset(
    {
        "repo_url",
        "repo_full_name",
        "branch",
        "root_dir",
        "dockerfile_path",
        "watch_paths",
        "target",
        "build_timeout_s",
        "cancel_running",
        "auto_build",
        "wait_for_checks",
        "previews",
        "preview_label",
    }
)


class AppArchived(IllegalTransition):
    """The app was removed: it keeps its history but builds nothing and cannot change."""


def check_live(app: App) -> App:
    if app.archived:
        raise AppArchived(f"app {app.workspace}/{app.name} was removed")
    return app


def full_name_from_url(url: str) -> str | None:
    """`owner/repo` from a clone URL (https, ssh or file), the key GitHub pushes are matched on."""
    match = re.search(r"[/:]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"{match.group(1)}/{match.group(2)}".lower() if match else None


_APP_SELECT = sa.select(t.apps, t.workspaces.c.name.label("workspace")).select_from(APP_FROM)


class Apps(StoreBase):
    """Registration and lookup of apps."""

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
        target: str | None = None,
        build_timeout_s: int | None = None,
        auto_build: bool = True,
        wait_for_checks: bool = False,
        previews: bool = False,
        preview_label: str | None = None,
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
                            target=target,
                            build_timeout_s=build_timeout_s,
                            auto_build=auto_build,
                            wait_for_checks=wait_for_checks,
                            previews=previews,
                            preview_label=preview_label,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                raise ValueError(f"app {workspace}/{name} already exists") from None
        return self.get_app(name, workspace)

    def update_app(self, app_id: int, changes: Mapping[str, Any]) -> App:
        """Change a live app's settings; a new repository URL also renames the repository pushes match on."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"app settings {sorted(unknown)} cannot be changed")
        values = dict(changes)
        if "root_dir" in values:
            values["root_dir"] = (values["root_dir"] or "").strip("/")
        if "watch_paths" in values:
            values["watch_paths"] = list(values["watch_paths"] or [])
        if "repo_url" in values and "repo_full_name" not in values:
            values["repo_full_name"] = full_name_from_url(values["repo_url"])
        with self._tx() as conn:
            row = conn.execute(for_update(conn, _APP_SELECT.where(t.apps.c.id == app_id), of=t.apps)).first()
            if row is None:
                raise NotFound(f"no app with id {app_id}")
            check_live(to_app(row))
            if values:
                conn.execute(t.apps.update().where(t.apps.c.id == app_id).values(**values))
        return self.get_app_by_id(app_id)

    def archive_app(self, app_id: int) -> App:
        """Mark the app removed (once: the first time is kept); its builds, logs and desired state stay."""
        with self._tx() as conn:
            conn.execute(
                t.apps.update()
                .where(t.apps.c.id == app_id, t.apps.c.archived_at.is_(None))
                .values(archived_at=utcnow())
            )
        return self.get_app_by_id(app_id)

    def get_app(self, name: str, workspace: str | None = None) -> App:
        if workspace is None and "/" in name:
            workspace, name = name.split("/", 1)
        query = _APP_SELECT.where(t.apps.c.name == name)
        if workspace is not None:
            query = query.where(t.workspaces.c.name == workspace)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFound(f"no app named {name!r}" + (f" in workspace {workspace!r}" if workspace else ""))
        if len(rows) > 1:
            raise NotFound(f"app name {name!r} is in several workspaces; say workspace/app")
        return to_app(rows[0])

    def get_app_by_id(self, app_id: int) -> App:
        with self.engine.connect() as conn:
            row = conn.execute(_APP_SELECT.where(t.apps.c.id == app_id)).first()
        if row is None:
            raise NotFound(f"no app with id {app_id}")
        return to_app(row)

    def list_apps(self) -> list[App]:
        with self.engine.connect() as conn:
            return [to_app(r) for r in conn.execute(_APP_SELECT.order_by(t.apps.c.id))]

    def apps_for_repo(self, full_name: str, urls: Sequence[str] = ()) -> list[App]:
        """Every app of the repository, removed ones too: the webhook tells them apart."""
        cond = t.apps.c.repo_full_name == full_name.lower()
        if urls:
            cond = sa.or_(cond, t.apps.c.repo_url.in_(list(urls)))
        with self.engine.connect() as conn:
            return [to_app(r) for r in conn.execute(_APP_SELECT.where(cond).order_by(t.apps.c.id))]
