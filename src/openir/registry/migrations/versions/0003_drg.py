"""DRG and cost: a cost header per procedure (DRG code, length of stay, total, settled payment)
and its cost items (category, consumable origin, national insurance consumable code, amount).

Revision ID: 0003_drg
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_drg'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'procedure_costs',
        sa.Column('procedure_id', sa.Integer(), nullable=False),
        sa.Column('drg_code', sa.String(length=24), nullable=True),
        sa.Column('drg_version', sa.String(length=8), nullable=True),
        sa.Column('length_of_stay_days', sa.Float(), nullable=True),
        sa.Column('total_cost_cny', sa.Float(), nullable=False),
        sa.Column('payment_cny', sa.Float(), nullable=True),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_procedure_costs_procedure_id_procedures')),
        sa.PrimaryKeyConstraint('procedure_id', name=op.f('pk_procedure_costs')),
    )
    op.create_index(op.f('ix_procedure_costs_drg_code'), 'procedure_costs', ['drg_code'], unique=False)
    op.create_table(
        'cost_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('procedure_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('origin', sa.String(length=8), nullable=True),
        sa.Column('nhsa_code', sa.String(length=40), nullable=True),
        sa.Column('quantity', sa.Float(), nullable=True),
        sa.Column('amount_cny', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['procedure_id'], ['procedure_costs.procedure_id'],
                                name=op.f('fk_cost_items_procedure_id_procedure_costs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cost_items')),
    )
    op.create_index(op.f('ix_cost_items_procedure_id'), 'cost_items', ['procedure_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_cost_items_procedure_id'), table_name='cost_items')
    op.drop_table('cost_items')
    op.drop_index(op.f('ix_procedure_costs_drg_code'), table_name='procedure_costs')
    op.drop_table('procedure_costs')
