"""builds remember their build settings and whether they rewind; desired state records why it moved

Revision ID: 0002_builds_rewind
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_builds_rewind"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("rewind", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_builds_app_commit", ["app_id", "commit_sha"], unique=False)
    with op.batch_alter_table("desired_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("actor", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("desired_state", schema=None) as batch_op:
        batch_op.drop_column("actor")
        batch_op.drop_column("reason")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("ix_builds_app_commit")
        batch_op.drop_column("rewind")
        batch_op.drop_column("settings_key")
