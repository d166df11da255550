"""Initial registry schema: hospitals, rooms, equipment, operators, patients, procedures,
outcomes, adverse events, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('table_name', sa.String(length=48), nullable=False),
    sa.Column('row_key', sa.String(length=128), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_table_row', ['table_name', 'row_key'], unique=False)

    op.create_table('hospitals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hospitals')),
    sa.UniqueConstraint('code', name=op.f('uq_hospitals_code'))
    )
    with op.batch_alter_table('hospitals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hospitals_region'), ['region'], unique=False)

    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pseudo_key', sa.String(length=64), nullable=False),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('sex', sa.String(length=1), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('pseudo_key', name=op.f('uq_patients_pseudo_key'))
    )
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('credential', sa.String(length=16), nullable=False),
    sa.Column('first_year', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], name=op.f('fk_operators_hospital_id_hospitals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('code', name=op.f('uq_operators_code'))
    )
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operators_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('rooms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], name=op.f('fk_rooms_hospital_id_hospitals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rooms')),
    sa.UniqueConstraint('hospital_id', 'name', name='uq_rooms_hospital_name')
    )
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rooms_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('equipment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('model', sa.String(length=120), nullable=True),
    sa.Column('installed_year', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_equipment_room_id_rooms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equipment'))
    )
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_equipment_room_id'), ['room_id'], unique=False)

    op.create_table('procedures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=True),
    sa.Column('primary_operator_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('technique', sa.String(length=48), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('disease', sa.String(length=120), nullable=True),
    sa.Column('target_organ', sa.String(length=48), nullable=True),
    sa.Column('lesions', sa.JSON(), nullable=True),
    sa.Column('n_lesions', sa.Integer(), nullable=True),
    sa.Column('max_lesion_mm', sa.Float(), nullable=True),
    sa.Column('imaging_guidance', sa.String(length=48), nullable=True),
    sa.Column('devices', sa.JSON(), nullable=True),
    sa.Column('consumables', sa.JSON(), nullable=True),
    sa.Column('anaesthesia', sa.String(length=24), nullable=True),
    sa.Column('duration_min', sa.Float(), nullable=True),
    sa.Column('cost_cny', sa.Float(), nullable=True),
    sa.Column('drg_group', sa.String(length=24), nullable=True),
    sa.Column('age_years', sa.Integer(), nullable=True),
    sa.Column('asa_class', sa.Integer(), nullable=True),
    sa.Column('child_pugh', sa.String(length=1), nullable=True),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('plan_uid', sa.String(length=64), nullable=True),
    sa.Column('verify_uid', sa.String(length=64), nullable=True),
    sa.Column('dose_uid', sa.String(length=64), nullable=True),
    sa.Column('links', sa.JSON(), nullable=True),
    sa.Column('dose_alert', sa.Boolean(), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=True),
    sa.Column('n_flags', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], name=op.f('fk_procedures_hospital_id_hospitals')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_procedures_patient_id_patients')),
    sa.ForeignKeyConstraint(['primary_operator_id'], ['operators.id'], name=op.f('fk_procedures_primary_operator_id_operators')),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_procedures_room_id_rooms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_procedures')),
    sa.UniqueConstraint('uid', name=op.f('uq_procedures_uid'))
    )
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.create_index('ix_procedures_hospital_date', ['hospital_id', 'date'], unique=False)
        batch_op.create_index('ix_procedures_operator_date', ['primary_operator_id', 'date'], unique=False)
        batch_op.create_index(batch_op.f('ix_procedures_patient_id'), ['patient_id'], unique=False)

    op.create_table('training_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('course', sa.String(length=200), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=False),
    sa.Column('hours', sa.Float(), nullable=True),
    sa.Column('certificate', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_training_records_operator_id_operators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_records'))
    )
    with op.batch_alter_table('training_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_records_operator_id'), ['operator_id'], unique=False)

    op.create_table('adverse_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('what', sa.String(length=200), nullable=False),
    sa.Column('onset_days', sa.Float(), nullable=True),
    sa.Column('resolved_in_session', sa.Boolean(), nullable=False),
    sa.Column('therapy', sa.String(length=16), nullable=False),
    sa.Column('extra_stay_h', sa.Float(), nullable=False),
    sa.Column('icu', sa.Boolean(), nullable=False),
    sa.Column('life_threatening', sa.Boolean(), nullable=False),
    sa.Column('sequelae', sa.String(length=8), nullable=False),
    sa.Column('death', sa.Boolean(), nullable=False),
    sa.Column('outcome_text', sa.Text(), nullable=True),
    sa.Column('cirse_grade', sa.Integer(), nullable=False),
    sa.Column('sir_2003', sa.String(length=1), nullable=False),
    sa.Column('sir_2017', sa.Integer(), nullable=False),
    sa.Column('major', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_adverse_events_procedure_id_procedures')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_events'))
    )
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adverse_events_procedure_id'), ['procedure_id'], unique=False)

    op.create_table('outcomes',
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('technical_success', sa.Boolean(), nullable=True),
    sa.Column('complete_ablation', sa.Boolean(), nullable=True),
    sa.Column('min_margin_mm', sa.Float(), nullable=True),
    sa.Column('mrecist', sa.String(length=2), nullable=True),
    sa.Column('easl', sa.String(length=2), nullable=True),
    sa.Column('necrosis_pct', sa.Float(), nullable=True),
    sa.Column('ltp', sa.Boolean(), nullable=True),
    sa.Column('followup_months', sa.Float(), nullable=True),
    sa.Column('puncture_bleeding', sa.Boolean(), nullable=True),
    sa.Column('died', sa.Boolean(), nullable=True),
    sa.Column('death_days', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_outcomes_procedure_id_procedures')),
    sa.PrimaryKeyConstraint('procedure_id', name=op.f('pk_outcomes'))
    )
    op.create_table('procedure_operators',
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_procedure_operators_operator_id_operators')),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], name=op.f('fk_procedure_operators_procedure_id_procedures')),
    sa.PrimaryKeyConstraint('procedure_id', 'operator_id', name=op.f('pk_procedure_operators'))
    )


def downgrade() -> None:
    op.drop_table('procedure_operators')
    op.drop_table('outcomes')
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adverse_events_procedure_id'))

    op.drop_table('adverse_events')
    with op.batch_alter_table('training_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_records_operator_id'))

    op.drop_table('training_records')
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_procedures_patient_id'))
        batch_op.drop_index('ix_procedures_operator_date')
        batch_op.drop_index('ix_procedures_hospital_date')

    op.drop_table('procedures')
    with op.batch_alter_table('equipment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_equipment_room_id'))

    op.drop_table('equipment')
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rooms_hospital_id'))

    op.drop_table('rooms')
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operators_hospital_id'))

    op.drop_table('operators')
    op.drop_table('patients')
    with op.batch_alter_table('hospitals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hospitals_region'))

    op.drop_table('hospitals')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_table_row')

    op.drop_table('audit_log')
