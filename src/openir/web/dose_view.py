"""The dose dashboard: alerts (scoped to the hospital whose suite produced them) with
acknowledgement, a patient's cumulative dose, reference levels by procedure and room."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi import HTTPException

from openir.registry import session_scope
from openir.registry.models import Hospital

from .access import audit, pseudonym
from .context import Ctx
from .models import DoseAck, User
from .schemas import CumulativeOut, DoseAlertOut, DrlOut
from .security import Principal


def _facility_map(ctx: Ctx) -> dict[str, str]:
    """Facility (institution name in the dose report) -> hospital code; code or name both match."""
    return ctx.cached("facilities", lambda: _facilities(ctx))


def _facilities(ctx: Ctx) -> dict[str, str]:
    with ctx.engine.connect() as c:
        rows = c.execute(sa.select(Hospital.code, Hospital.name)).all()
    out = {}
    for code, name in rows:
        out[code] = code
        out[name] = code
    return out


def list_alerts(ctx: Ctx, p: Principal, *, only_open: bool = False) -> list[DoseAlertOut]:
    from openir.dose.store import AlertRow, ReportRow

    fac = _facility_map(ctx)
    from sqlalchemy.orm import Session

    with Session(ctx.dose.engine) as c:
        rows = c.execute(sa.select(AlertRow, ReportRow.facility).join(ReportRow, ReportRow.id == AlertRow.report_id, isouter=True)
                         .order_by(AlertRow.created_at.desc(), AlertRow.id.desc())).all()
    with session_scope(ctx.engine, p.username) as s:
        acks = {a.alert_id: u for a, u in s.execute(sa.select(DoseAck, User.username).join(User, User.id == DoseAck.user_id)).all()}
    out = []
    import json

    for a, facility in rows:
        hosp = fac.get(facility or "")
        if not p.sees_all and hosp != p.hospital_code:
            continue
        if only_open and a.id in acks:
            continue
        ident = p.is_hospital and hosp == p.hospital_code
        msg = json.loads(a.alert_json).get("message", "") if a.alert_json else ""
        pid = a.patient_id if ident else pseudonym(ctx.secret, a.patient_id)
        if not ident and a.patient_id:
            msg = msg.replace(a.patient_id, pid or "")
        out.append(DoseAlertOut(id=a.id, hospital_code=hosp, patient_id=pid, scope=a.scope, metric=a.metric,
                                value=a.value, threshold=a.threshold, created_at=a.created_at, message=msg,
                                acknowledged=a.id in acks, acknowledged_by=acks.get(a.id)))
    return out


def acknowledge(ctx: Ctx, p: Principal, alert_id: int, note: str | None) -> DoseAlertOut:
    mine = {a.id: a for a in list_alerts(ctx, p)}
    if alert_id not in mine or not p.is_hospital:
        raise HTTPException(404, "not found")
    with session_scope(ctx.engine, p.username) as s:
        if s.get(DoseAck, alert_id) is None:
            s.add(DoseAck(alert_id=alert_id, user_id=p.user_id, note=note))
            audit(s, p, "insert", "web_dose_acks", alert_id, {"note": note})
    return mine[alert_id].model_copy(update={"acknowledged": True, "acknowledged_by": p.username})


def cumulative(ctx: Ctx, p: Principal, patient_id: str) -> CumulativeOut:
    """Sum over non-superseded reports of one patient, from the caller's hospital only."""
    from openir.dose.store import ReportRow

    if not p.is_hospital:
        raise HTTPException(404, "not found")
    fac = _facility_map(ctx)
    with ctx.dose.engine.connect() as c:
        rows = c.execute(sa.select(ReportRow.sop_instance_uid, ReportRow.performed_at, ReportRow.procedure,
                                   ReportRow.facility, ReportRow.room, ReportRow.kap_total_gy_cm2,
                                   ReportRow.dose_rp_total_gy, ReportRow.fluoro_time_s, ReportRow.dlp_total_mgy_cm)
                         .where(ReportRow.patient_id == patient_id, ReportRow.superseded_by.is_(None))
                         .order_by(ReportRow.performed_at)).mappings().all()
    items = [dict(r) for r in rows if fac.get(r["facility"] or "") == p.hospital_code]
    if not items:
        raise HTTPException(404, "not found")
    with session_scope(ctx.engine, p.username) as s:
        audit(s, p, "read", "dose_patient", patient_id)

    def total(k: str) -> float:
        return float(sum(r[k] or 0.0 for r in items))

    return CumulativeOut(patient_id=patient_id, reports=len(items), kap_total_gy_cm2=total("kap_total_gy_cm2"),
                         dose_rp_total_gy=total("dose_rp_total_gy"), fluoro_time_s=total("fluoro_time_s"),
                         dlp_total_mgy_cm=total("dlp_total_mgy_cm"), items=items)


def _frame(ctx: Ctx) -> pd.DataFrame:
    return ctx.cached("dose_frame", lambda: ctx.dose.summary_frame())


def drl(ctx: Ctx, p: Principal, metric: str = "kap_total_gy_cm2") -> DrlOut:
    """National DRLs (all facilities, no patient data) and per-room comparison (own rooms for a hospital)."""
    from openir.dose import compare, reference_levels

    df = _frame(ctx)
    if df.empty or metric not in df:
        return DrlOut(levels=[], rooms=[])
    levels = reference_levels(df, metric)
    fac = _facility_map(ctx)
    d = df.assign(hospital=df["facility"].map(lambda f: fac.get(f or "")))
    if not p.sees_all:
        d = d[d["hospital"] == p.hospital_code]
    d = d.assign(room=d["facility"].astype(str) + " / " + d["room"].astype(str))
    rooms = compare(d, levels, by="room") if not d.empty else []
    return DrlOut(levels=[lv.model_dump() for lv in levels], rooms=[r.model_dump() for r in rooms])


def drl_png(ctx: Ctx, p: Principal, metric: str = "kap_total_gy_cm2") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openir.dose import reference_levels

    def make() -> bytes:
        df = _frame(ctx)
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=90)
        if not df.empty and metric in df:
            levels = {lv.procedure: lv for lv in reference_levels(df, metric)}
            procs = sorted(levels)
            ax.boxplot([df.loc[df["procedure"] == pr, metric].dropna().to_numpy() for pr in procs])
            for i, pr in enumerate(procs, start=1):
                ax.hlines(levels[pr].drl, i - 0.4, i + 0.4, colors="red", label="DRL (P75)" if i == 1 else None)
            ax.set_xticks(range(1, len(procs) + 1), [x[:18] for x in procs], fontsize=7)
            ax.set_yscale("log")
            if procs:
                ax.legend(fontsize=7)
        ax.set_ylabel(metric)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    return ctx.cached(f"drl_png:{metric}", make)


def alert_summary(alerts: list[DoseAlertOut]) -> dict[str, Any]:
    return {"open": sum(not a.acknowledged for a in alerts), "total": len(alerts)}
