"""GitHub App: installations, repositories by id, apps' repositories and pauses, seen commits, status outbox

Revision ID: 0004_github
Revises: 0003_depot
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_github"
down_revision = "0003_depot"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_installations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "github_repos",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_github_repos_installation_id", "github_repos", ["installation_id"])
    op.create_table(
        "github_apps",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.BigInteger(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_index("ix_github_apps_repo_id", "github_apps", ["repo_id"])
    op.create_table(
        "github_seen_commits",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "commit_sha"),
    )
    op.create_table(
        "github_redeliveries",
        sa.Column("guid", sa.String(length=100), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("guid"),
    )
    op.create_table(
        "commit_status_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.BigInteger(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("build_state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_commit_status_outbox_unsent", "commit_status_outbox", ["outcome", "id"])


def downgrade() -> None:
    op.drop_index("ix_commit_status_outbox_unsent", table_name="commit_status_outbox")
    op.drop_table("commit_status_outbox")
    op.drop_table("github_redeliveries")
    op.drop_table("github_seen_commits")
    op.drop_index("ix_github_apps_repo_id", table_name="github_apps")
    op.drop_table("github_apps")
    op.drop_index("ix_github_repos_installation_id", table_name="github_repos")
    op.drop_table("github_repos")
    op.drop_table("github_installations")
