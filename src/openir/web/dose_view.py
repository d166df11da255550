"""The dose dashboard: alerts (scoped to the hospital whose suite produced them) with
acknowledgement, a patient's cumulative dose, reference levels by procedure and room."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from fastapi import HTTPException

from openir.dose import compare, reference_levels
from openir.registry import list_hospitals, session_scope
from openir.report import drl_boxplot_png

from .access import audit, pseudonym
from .context import Ctx
from .models import DoseAck, User
from .schemas import CumulativeOut, DoseAlertOut, DrlOut
from .security import Principal


def _facility_map(ctx: Ctx) -> dict[str, str]:
    """Facility (institution name in the dose report) -> hospital code; code or name both match."""
    return ctx.cached("facilities", lambda: _facilities(ctx))


def _facilities(ctx: Ctx) -> dict[str, str]:
    with session_scope(ctx.engine) as s:
        hospitals = list_hospitals(s)
    out = {}
    for h in sorted(hospitals, key=lambda h: h.id):
        out[h.code] = h.code
        out[h.name] = h.code
    return out


def _own_facilities(ctx: Ctx, p: Principal) -> list[str] | None:
    """The facility names whose reports belong to ``p``'s hospital (None: every facility)."""
    if p.sees_all:
        return None
    return [f for f, code in _facility_map(ctx).items() if code == p.hospital_code]


def list_alerts(ctx: Ctx, p: Principal, *, only_open: bool = False) -> list[DoseAlertOut]:
    """Dose alerts of the caller's hospital (all for the centre), newest first; patient ids and
    messages are pseudonymised unless the caller's own hospital produced the alert."""
    fac = _facility_map(ctx)
    with session_scope(ctx.engine, p.username) as s:
        acks = {a.alert_id: u for a, u in s.execute(sa.select(DoseAck, User.username).join(User, User.id == DoseAck.user_id)).all()}
    rows = ctx.dose.alerts(facilities=_own_facilities(ctx, p), exclude_ids=acks if only_open else (), newest_first=True)
    out = []
    for a in rows:
        hosp = fac.get(a.facility or "")
        ident = p.is_hospital and hosp == p.hospital_code
        msg = a.message
        pid = a.patient_id if ident else pseudonym(ctx.secret, a.patient_id)
        if not ident and a.patient_id:
            msg = msg.replace(a.patient_id, pid or "")
        out.append(DoseAlertOut(id=a.id, hospital_code=hosp, patient_id=pid, scope=a.scope, metric=a.metric,
                                value=a.value, threshold=a.threshold, unit=a.unit, created_at=a.created_at, message=msg,
                                acknowledged=a.id in acks, acknowledged_by=acks.get(a.id)))
    return out


def acknowledge(ctx: Ctx, p: Principal, alert_id: int, note: str | None) -> DoseAlertOut:
    """Mark one of the caller's hospital's alerts as seen (once; audited); others' are a 404."""
    mine = {a.id: a for a in list_alerts(ctx, p)}
    if alert_id not in mine or not p.is_hospital:
        raise HTTPException(404, "not found")
    with session_scope(ctx.engine, p.username) as s:
        if s.get(DoseAck, alert_id) is None:
            s.add(DoseAck(alert_id=alert_id, user_id=p.user_id, note=note))
            audit(s, p, "insert", "web_dose_acks", alert_id, {"note": note})
    return mine[alert_id].model_copy(update={"acknowledged": True, "acknowledged_by": p.username})


def cumulative(ctx: Ctx, p: Principal, patient_id: str) -> CumulativeOut:
    """Sum over non-superseded reports of one patient, from the caller's hospital only (audited)."""
    if not p.is_hospital:
        raise HTTPException(404, "not found")
    items = [e.model_dump() for e in ctx.dose.report_entries(patient_id=patient_id, facilities=_own_facilities(ctx, p))]
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
    """Box plot of ``metric`` per procedure type against its DRL (all facilities: no patient data)."""

    def make() -> bytes:
        df = _frame(ctx)
        levels = reference_levels(df, metric) if not df.empty and metric in df else []
        return drl_boxplot_png(df, levels, metric)

    return ctx.cached(f"drl_png:{metric}", make)
