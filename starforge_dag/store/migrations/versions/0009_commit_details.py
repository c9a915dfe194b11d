"""builds keep the subject line and author of the commit they built, read from the checkout

Revision ID: 0009_commit_details
Revises: 0008_tokens_notifications
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_commit_details"
down_revision = "0008_tokens_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commit_message", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("commit_author", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("commit_author")
        batch_op.drop_column("commit_message")
