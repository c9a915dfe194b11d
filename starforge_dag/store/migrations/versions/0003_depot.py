"""Depot: a project per workspace, and the backend build (id, link) of each build

Revision ID: 0003_depot
Revises: 0002_builds_rewind
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_depot"
down_revision = "0002_builds_rewind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "depot_projects",
        sa.Column("workspace", sa.String(length=100), nullable=False),
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=50), nullable=False),
        sa.Column("organization_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace"),
    )
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("backend_build_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("backend_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("backend_url")
        batch.drop_column("backend_build_id")
    op.drop_table("depot_projects")
