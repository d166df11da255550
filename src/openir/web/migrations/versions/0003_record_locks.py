"""Record locks: a quality officer's sign-off after which a procedure can no longer be edited.

Revision ID: web_0003
Revises: web_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "web_0003"
down_revision = "web_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_record_locks",
        sa.Column("procedure_id", sa.Integer, primary_key=True),
        sa.Column("locked_by", sa.Integer, sa.ForeignKey("web_users.id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_record_locks")
