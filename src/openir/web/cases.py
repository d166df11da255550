"""The case view: a procedure with its plan, verification, thermometry, dose, adverse events and
follow-up (stage results are optional JSON in ``Procedure.links``), and its images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException

from openir.registry import session_scope
from openir.registry.models import Patient

from .access import audit, deidentify, may_identify, pseudonym
from .context import Ctx
from .imaging import load_case_volume
from .procedures import get_procedure, procedure_row
from .schemas import CaseOut
from .security import Principal


def _dose_rows(ctx: Ctx, patient_key: str | None, identify: bool) -> list[dict[str, Any]]:
    if not patient_key:
        return []
    from openir.dose.store import ReportRow

    store = ctx.dose
    with store.engine.connect() as c:
        rows = c.execute(sa.select(ReportRow.sop_instance_uid, ReportRow.performed_at, ReportRow.procedure,
                                   ReportRow.room, ReportRow.kap_total_gy_cm2, ReportRow.dose_rp_total_gy,
                                   ReportRow.fluoro_time_s, ReportRow.dlp_total_mgy_cm)
                         .where(ReportRow.patient_id == patient_key, ReportRow.superseded_by.is_(None))
                         .order_by(ReportRow.performed_at)).mappings().all()
    out = [dict(r) for r in rows]
    if not identify:
        for r in out:
            r["sop_instance_uid"] = pseudonym(ctx.secret, r["sop_instance_uid"], "sr")
    return out


def _image_paths(ctx: Ctx, links: dict[str, Any]) -> tuple[str, str | None] | None:
    """Image (and labels) files named by the record, only inside the application's home."""
    img = links.get("image")
    if not img:
        return None
    root = ctx.home.resolve()
    paths = []
    for name in (img, links.get("labels")):
        if name is None:
            paths.append(None)
            continue
        p = (root / name).resolve() if not Path(name).is_absolute() else Path(name).resolve()
        if not p.is_relative_to(root) or not p.is_file():
            return None
        paths.append(str(p))
    return paths[0], paths[1]


def case_files(ctx: Ctx, p: Principal, pid: int) -> tuple[str, str | None] | None:
    with session_scope(ctx.engine, p.username) as s:
        proc = procedure_row(s, p, pid)
        return _image_paths(ctx, proc.links or {})


def case_view(ctx: Ctx, p: Principal, pid: int) -> CaseOut:
    head = get_procedure(ctx, p, pid)  # audits the read and applies the access rule
    with session_scope(ctx.engine, p.username) as s:
        proc = procedure_row(s, p, pid)
        links = dict(proc.links or {})
        outcome = None
        if proc.outcome is not None:
            outcome = {c.key: getattr(proc.outcome, c.key) for c in proc.outcome.__table__.columns if c.key != "procedure_id"}
        aes = [{k: getattr(a, k) for k in ("what", "onset_days", "therapy", "extra_stay_h", "cirse_grade",
                                          "sir_2017", "major", "outcome_text")} for a in proc.adverse_events]
        key = s.scalar(sa.select(Patient.pseudo_key).where(Patient.id == proc.patient_id))
        identify = may_identify(p, head.hospital_code)
    files = _image_paths(ctx, links)
    volume = None
    if files is not None:
        img, lab, sp = load_case_volume(*files)
        volume = {"shape": list(img.shape), "spacing_mm": list(sp), "labels": bool(lab is not None),
                  "window": {"centre": 40.0, "width": 400.0}}
    plan = links.get("plan")
    if isinstance(plan, dict) and not identify:
        plan = deidentify(plan, ctx.secret) if "patient_key" in plan else plan
    return CaseOut(procedure=head, outcome=outcome, adverse_events=aes,
                   plan=plan if isinstance(plan, dict) else None,
                   verification=links.get("verification") if isinstance(links.get("verification"), dict) else None,
                   thermometry=[r for r in links.get("thermometry") or [] if isinstance(r, dict)],
                   dose=_dose_rows(ctx, key, identify), follow_up=links.get("follow_up") if isinstance(links.get("follow_up"), dict) else None,
                   has_images=files is not None, volume=volume)


def require_images(ctx: Ctx, p: Principal, pid: int) -> tuple[str, str | None]:
    files = case_files(ctx, p, pid)
    if files is None:
        raise HTTPException(404, "this case has no images")
    return files


def audit_image_read(ctx: Ctx, p: Principal, pid: int) -> None:
    with session_scope(ctx.engine, p.username) as s:
        audit(s, p, "read", "case_images", pid)
