"""What a push delivery's decisions read, in one connection and two queries: its record, its apps, their links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..core.models import App
from . import schema as t
from .github import AppRepo, github_apps, repos, seen_commits
from .rows import APP_FROM, StoreBase, to_app


@dataclass
class PushLookup:
    """`recorded` holds the build ids of a delivery processed already (None when it is new); `apps` every app of
    the repository by name or URL and every app linked to its GitHub id, removed ones too; `links` their
    repository links and `seen` what was decided for the pushed commit, by app id."""

    recorded: list[int] | None
    apps: list[App] = field(default_factory=list)
    links: dict[int, AppRepo] = field(default_factory=dict)
    seen: dict[int, str] = field(default_factory=dict)


_LOOKUP_FROM = APP_FROM.outerjoin(github_apps, github_apps.c.app_id == t.apps.c.id).outerjoin(
    repos, repos.c.id == github_apps.c.repo_id
)


class PushLookups(StoreBase):
    def lookup_push(
        self, delivery_id: str, full_name: str, urls: Sequence[str], repo_id: int | None, sha: str
    ) -> PushLookup:
        """The delivery's record and the apps the push concerns (see `apps_for_repo`), with links and decisions."""
        cond = t.apps.c.repo_full_name == full_name.lower()
        if urls:
            cond = sa.or_(cond, t.apps.c.repo_url.in_(list(urls)))
        if repo_id is not None:
            linked = sa.select(github_apps.c.app_id).where(github_apps.c.repo_id == repo_id)
            cond = sa.or_(cond, t.apps.c.id.in_(linked))
        seen = (
            sa.select(seen_commits.c.decision)
            .where(seen_commits.c.app_id == t.apps.c.id, seen_commits.c.commit_sha == sha)
            .scalar_subquery()
        )
        query = (
            sa.select(
                t.apps,
                t.workspaces.c.name.label("workspace"),
                github_apps.c.app_id.label("linked_app_id"),
                github_apps.c.repo_id.label("linked_repo_id"),
                github_apps.c.paused_reason.label("linked_paused_reason"),
                repos.c.full_name.label("linked_full_name"),
                repos.c.installation_id.label("linked_installation_id"),
                seen.label("seen_decision"),
            )
            .select_from(_LOOKUP_FROM)
            .where(cond)
            .order_by(t.apps.c.id)
        )
        record = sa.select(t.webhook_deliveries.c.build_ids).where(t.webhook_deliveries.c.delivery_id == delivery_id)
        with self.engine.connect() as conn:
            recorded = conn.execute(record).scalar()
            rows = conn.execute(query).all()
        lookup = PushLookup(recorded=None if recorded is None else [int(i) for i in recorded])
        for row in rows:
            lookup.apps.append(to_app(row))
            if row.linked_app_id is not None:
                lookup.links[row.id] = AppRepo(
                    row.id,
                    row.linked_repo_id,
                    row.linked_full_name,
                    row.linked_installation_id,
                    row.linked_paused_reason,
                )
            if row.seen_decision is not None:
                lookup.seen[row.id] = str(row.seen_decision)
        return lookup
