"""Operator refresher-training records (credentials: who is due for what).

Revision ID: 0004_credentials
Revises: 0003_drg
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_credentials'
down_revision = '0003_drg'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_training',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('course', sa.String(length=200), nullable=False),
    sa.Column('hours', sa.Float(), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('certificate_id', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_training_operator_id_operators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_training')),
    sa.UniqueConstraint('operator_id', 'date', 'course', name=op.f('uq_operator_training_operator_id'))
    )
    with op.batch_alter_table('operator_training', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_training_operator_id'), ['operator_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operator_training', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_training_operator_id'))
    op.drop_table('operator_training')
