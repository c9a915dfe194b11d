"""builds may ask to skip the build cache (a changed secret does not invalidate a Dockerfile RUN's cache)

Revision ID: 0007_builds_no_cache
Revises: 0006_variables
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_builds_no_cache"
down_revision = "0006_variables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("no_cache", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("no_cache")
