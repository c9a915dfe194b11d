"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_logs",
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("vertex", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("build_id", "seq"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("build_ids", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("repo_url", sa.Text(), nullable=False),
        sa.Column("repo_full_name", sa.String(length=200), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("root_dir", sa.Text(), server_default="", nullable=False),
        sa.Column("dockerfile_path", sa.Text(), nullable=True),
        sa.Column("watch_paths", sa.JSON(), nullable=False),
        sa.Column("cancel_running", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_apps_workspace_name"),
    )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apps_repo_full_name"), ["repo_full_name"], unique=False)

    op.create_table(
        "builds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("delivery_id", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("cancel_state", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_step", sa.String(length=200), nullable=True),
        sa.Column("image_ref", sa.Text(), nullable=True),
        sa.Column("image_digest", sa.String(length=100), nullable=True),
        sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.create_index("ix_builds_app_id", ["app_id", "id"], unique=False)
        batch_op.create_index("ix_builds_status_id", ["status", "id"], unique=False)
        batch_op.create_index(
            "uq_builds_active_app_commit",
            ["app_id", "commit_sha"],
            unique=True,
            postgresql_where=sa.text("status IN ('queued', 'cloning', 'planning', 'building', 'pushing')"),
            sqlite_where=sa.text("status IN ('queued', 'cloning', 'planning', 'building', 'pushing')"),
        )

    op.create_table(
        "build_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["builds.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("build_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_build_transitions_build_id"), ["build_id"], unique=False)

    op.create_table(
        "desired_state",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("image_ref", sa.Text(), nullable=False),
        sa.Column("image_digest", sa.String(length=100), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
        ),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["builds.id"],
        ),
        sa.PrimaryKeyConstraint("app_id"),
    )


def downgrade() -> None:
    op.drop_table("desired_state")
    with op.batch_alter_table("build_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_build_transitions_build_id"))

    op.drop_table("build_transitions")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_builds_active_app_commit",
            postgresql_where=sa.text("status IN ('queued', 'cloning', 'planning', 'building', 'pushing')"),
            sqlite_where=sa.text("status IN ('queued', 'cloning', 'planning', 'building', 'pushing')"),
        )
        batch_op.drop_index("ix_builds_status_id")
        batch_op.drop_index("ix_builds_app_id")

    op.drop_table("builds")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apps_repo_full_name"))

    op.drop_table("apps")
    op.drop_table("workspaces")
    op.drop_table("webhook_deliveries")
    op.drop_table("build_logs")
