"""A study's CTDIvol and its QA/phantom reason as columns (reference levels for CT; QA studies left out),
filled in from each stored report with the packaged QA rules.

Revision ID: dose_0002
Revises: dose_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dose_0002"
down_revision = "dose_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from openir.dose.models import DoseReport
    from openir.dose.qa import load_qa_rules, qa_reason
    from openir.dose.reference_levels import study_ctdivol

    with op.batch_alter_table("dose_reports") as batch:
        batch.add_column(sa.Column("ctdivol_mgy", sa.Float, nullable=True))
        batch.add_column(sa.Column("qa_reason", sa.String(512), nullable=True))
    conn = op.get_bind()
    t = sa.table("dose_reports", sa.column("id"), sa.column("report_json"), sa.column("ctdivol_mgy"),
                 sa.column("qa_reason"))
    rules = load_qa_rules()
    for rid, js in conn.execute(sa.select(t.c.id, t.c.report_json)).all():
        r = DoseReport.model_validate_json(js)
        conn.execute(sa.update(t).where(t.c.id == rid).values(ctdivol_mgy=study_ctdivol(r), qa_reason=qa_reason(r, rules)))


def downgrade() -> None:
    with op.batch_alter_table("dose_reports") as batch:
        batch.drop_column("qa_reason")
        batch.drop_column("ctdivol_mgy")
