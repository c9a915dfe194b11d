"""apps may wait for the commit's CI checks; a `waiting` build holds its commit's one active slot

Revision ID: 0010_checks
Revises: 0009_commit_details
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_checks"
down_revision = "0009_commit_details"
branch_labels = None
depends_on = None

_BEFORE = "status IN ('queued', 'cloning', 'planning', 'building', 'pushing')"
_AFTER = "status IN ('waiting', 'queued', 'cloning', 'planning', 'building', 'pushing')"


def _active_index(batch_op, where: str) -> None:
    batch_op.create_index(
        "uq_builds_active_app_commit",
        ["app_id", "commit_sha"],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wait_for_checks", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("uq_builds_active_app_commit")
        _active_index(batch_op, _AFTER)


def downgrade() -> None:
    # Waiting builds have no place in the older schema: they end as canceled, then the index narrows again.
    op.execute(
        "UPDATE builds SET status = 'canceled', error = 'canceled: the schema was downgraded while it waited for "
        "checks' WHERE status = 'waiting'"
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("uq_builds_active_app_commit")
        _active_index(batch_op, _BEFORE)
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("wait_for_checks")
