"""the GitHub deployment outbox: one row per desired-state change of a GitHub-linked app

Revision ID: 0012_deployments
Revises: 0011_previews
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_deployments"
down_revision = "0011_previews"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.BigInteger(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("build_id", sa.BigInteger(), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("deployment_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("final_state", sa.String(length=20), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deployment_outbox_unsent", "deployment_outbox", ["outcome", "id"])
    op.create_index("ix_deployment_outbox_environment", "deployment_outbox", ["app_id", "environment", "id"])


def downgrade() -> None:
    op.drop_index("ix_deployment_outbox_environment", table_name="deployment_outbox")
    op.drop_index("ix_deployment_outbox_unsent", table_name="deployment_outbox")
    op.drop_table("deployment_outbox")
