"""desired state gets a change feed with gap-free revisions, pins, held builds and image retention marks

Revision ID: 0005_desired_state
Revises: 0004_github
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_desired_state"
down_revision = "0004_github"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desired_revision",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "desired_changes",
        sa.Column("revision", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(length=100), nullable=False),
        sa.Column("app", sa.String(length=100), nullable=False),
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("image_ref", sa.Text(), nullable=False),
        sa.Column("image_digest", sa.String(length=100), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"]),
        sa.PrimaryKeyConstraint("revision"),
    )
    op.create_index("ix_desired_changes_app", "desired_changes", ["app_id", "revision"], unique=False)
    with op.batch_alter_table("desired_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("held_build_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("high_build_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("high_commit_time", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by_pin", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("image_deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("image_deleted_at")
        batch_op.drop_column("held_by_pin")
    with op.batch_alter_table("desired_state", schema=None) as batch_op:
        for column in ("high_commit_time", "high_build_id", "held_build_id", "pinned", "revision", "note"):
            batch_op.drop_column(column)
    op.drop_index("ix_desired_changes_app", table_name="desired_changes")
    op.drop_table("desired_changes")
    op.drop_table("desired_revision")
