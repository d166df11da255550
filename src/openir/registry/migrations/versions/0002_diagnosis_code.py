"""Coded diagnosis (ICD-10) per procedure, so indications are matched by code, not by text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('diagnosis_code', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.drop_column('diagnosis_code')
