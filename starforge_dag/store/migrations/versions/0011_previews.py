"""pull-request previews: apps opt in, builds and desired-state changes name their environment, previews are kept

Revision ID: 0011_previews
Revises: 0010_checks
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_previews"
down_revision = "0010_checks"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status IN ('queued', 'cloning', 'planning', 'building', 'pushing')")


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previews", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("preview_label", sa.String(length=100), nullable=True))
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("uq_builds_active_app_commit")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment", sa.String(length=40), nullable=False, server_default="production"))
        batch_op.add_column(sa.Column("pr_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fork", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(
            "uq_builds_active_app_commit",
            ["app_id", "environment", "commit_sha"],
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        )
    with op.batch_alter_table("desired_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment", sa.String(length=40), nullable=False, server_default="production"))
        batch_op.alter_column("build_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("image_ref", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("image_digest", existing_type=sa.String(length=100), nullable=True)
    with op.batch_alter_table("variables", schema=None) as batch_op:
        batch_op.add_column(sa.Column("for_previews", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "previews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("head_ref", sa.String(length=255), nullable=True),
        sa.Column("head_repo_id", sa.BigInteger(), nullable=True),
        sa.Column("head_repo_full_name", sa.String(length=200), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("author_association", sa.String(length=40), nullable=True),
        sa.Column("fork", sa.Boolean(), nullable=False),
        sa.Column("held_sha", sa.String(length=64), nullable=True),
        sa.Column("held_reason", sa.Text(), nullable=True),
        sa.Column("approved_sha", sa.String(length=64), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("build_id", sa.BigInteger(), nullable=True),
        sa.Column("desired_build_id", sa.BigInteger(), nullable=True),
        sa.Column("desired_revision", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "number", name="uq_previews_app_number"),
    )


def downgrade() -> None:
    op.drop_table("previews")
    with op.batch_alter_table("variables", schema=None) as batch_op:
        batch_op.drop_column("for_previews")
    op.execute("DELETE FROM desired_changes WHERE environment <> 'production'")
    with op.batch_alter_table("desired_changes", schema=None) as batch_op:
        batch_op.alter_column("image_digest", existing_type=sa.String(length=100), nullable=False)
        batch_op.alter_column("image_ref", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("build_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("environment")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("uq_builds_active_app_commit")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("fork")
        batch_op.drop_column("pr_number")
        batch_op.drop_column("environment")
        batch_op.create_index(
            "uq_builds_active_app_commit",
            ["app_id", "commit_sha"],
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("preview_label")
        batch_op.drop_column("previews")
