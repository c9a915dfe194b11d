"""apps get a target stage, a build timeout, auto_build and an archived state; versioned variables and secrets

Revision ID: 0006_variables
Revises: 0005_desired_state
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_variables"
down_revision = "0005_desired_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("build_timeout_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("auto_build", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "variables",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_variables_version",
        "variables",
        ["workspace_id", sa.text("coalesce(app_id, 0)"), "name", "version"],
        unique=True,
    )
    op.create_index("ix_variables_scope", "variables", ["workspace_id", "app_id", "name", "version"])
    op.create_table(
        "build_variables",
        sa.Column("build_id", sa.BigInteger(), nullable=False),
        sa.Column("variable_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"]),
        sa.ForeignKeyConstraint(["variable_id"], ["variables.id"]),
        sa.PrimaryKeyConstraint("build_id", "variable_id"),
    )
    op.create_table(
        "secret_keys",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("secret_keys")
    op.drop_table("build_variables")
    op.drop_index("ix_variables_scope", table_name="variables")
    op.drop_index("uq_variables_version", table_name="variables")
    op.drop_table("variables")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        for column in ("archived_at", "auto_build", "build_timeout_s", "target"):
            batch_op.drop_column(column)
