"""The dose store's tables as `create_all` made them before migrations (reports, events, alerts,
quarantine).

Revision ID: dose_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dose_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dose_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("study_instance_uid", sa.String(64)),
        sa.Column("device_uid", sa.String(128)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("procedure", sa.String(256)),
        sa.Column("facility", sa.String(256)),
        sa.Column("room", sa.String(256)),
        sa.Column("operator", sa.String(256)),
        sa.Column("performed_at", sa.DateTime),
        sa.Column("n_events", sa.Integer, nullable=False),
        sa.Column("kap_total_gy_cm2", sa.Float),
        sa.Column("dose_rp_total_gy", sa.Float),
        sa.Column("fluoro_time_s", sa.Float),
        sa.Column("dlp_total_mgy_cm", sa.Float),
        sa.Column("peak_skin_dose_gy", sa.Float),
        sa.Column("superseded_by", sa.Integer, sa.ForeignKey("dose_reports.id")),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("report_json", sa.Text, nullable=False),
    )
    op.create_index("ix_dose_reports_sop_instance_uid", "dose_reports", ["sop_instance_uid"], unique=True)
    op.create_index("ix_dose_reports_study_instance_uid", "dose_reports", ["study_instance_uid"])
    op.create_index("ix_dose_reports_patient_id", "dose_reports", ["patient_id"])
    op.create_table(
        "dose_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("dose_reports.id"), nullable=False),
        sa.Column("event_uid", sa.String(64)),
        sa.Column("event_type", sa.String(64)),
        sa.Column("started_at", sa.DateTime),
        sa.Column("plane", sa.String(8), nullable=False),
        sa.Column("kap_gy_cm2", sa.Float),
        sa.Column("dose_rp_gy", sa.Float),
        sa.Column("ctdivol_mgy", sa.Float),
        sa.Column("dlp_mgy_cm", sa.Float),
    )
    op.create_index("ix_dose_events_report_id", "dose_events", ["report_id"])
    op.create_index("ix_dose_events_event_uid", "dose_events", ["event_uid"])
    op.create_table(
        "dose_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("dose_reports.id")),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("alert_json", sa.Text, nullable=False),
    )
    op.create_index("ix_dose_alerts_patient_id", "dose_alerts", ["patient_id"])
    op.create_table(
        "dose_quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("original_name", sa.String(1024), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("quarantined_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for t in ("dose_quarantine", "dose_alerts", "dose_events", "dose_reports"):
        op.drop_table(t)
