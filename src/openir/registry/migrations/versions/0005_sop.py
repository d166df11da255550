"""SOP checks per procedure (openir.sop): the values checked, the deviations, an override reason.

Revision ID: 0005_sop
Revises: 0004_credentials
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_sop'
down_revision = '0004_credentials'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sop_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('technique', sa.String(length=48), nullable=False),
    sa.Column('sop_version', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.Column('patient_values', sa.JSON(), nullable=False),
    sa.Column('n_block', sa.Integer(), nullable=False),
    sa.Column('n_warn', sa.Integer(), nullable=False),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_sop_checks_procedure_id_procedures')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_checks'))
    )
    with op.batch_alter_table('sop_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sop_checks_procedure_id'), ['procedure_id'], unique=False)

    op.create_table('sop_deviations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sop_check_id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.String(length=48), nullable=False),
    sa.Column('item', sa.String(length=48), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('threshold', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('message_en', sa.Text(), nullable=False),
    sa.Column('message_zh', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['sop_check_id'], ['sop_checks.id'], name=op.f('fk_sop_deviations_sop_check_id_sop_checks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_deviations'))
    )
    with op.batch_alter_table('sop_deviations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sop_deviations_check_id'), ['check_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sop_deviations_sop_check_id'), ['sop_check_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sop_deviations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sop_deviations_sop_check_id'))
        batch_op.drop_index(batch_op.f('ix_sop_deviations_check_id'))
    op.drop_table('sop_deviations')
    with op.batch_alter_table('sop_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sop_checks_procedure_id'))
    op.drop_table('sop_checks')
