"""Procedures through the web: list, read (audited), live rule check, record (audited)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openir.core.errors import InputError
from openir.registry import ProcedureIn, load_catalogue, record_procedure, session_scope
from openir.registry.models import Hospital, Operator, Patient, Procedure

from .access import audit, deidentify, may_identify, scope_procedures
from .context import Ctx
from .schemas import CheckIn, CheckOut, ProcedureOut
from .security import Principal

_COLS = (Procedure.id, Procedure.uid, Patient.pseudo_key, Patient.birth_year, Hospital.code, Operator.code,
         Procedure.date, Procedure.technique, Procedure.category, Procedure.disease, Procedure.target_organ,
         Procedure.n_lesions, Procedure.max_lesion_mm, Procedure.n_flags, Procedure.flags, Procedure.plan_uid,
         Procedure.verify_uid, Procedure.dose_uid, Procedure.dose_alert)
_NAMES = ("id", "uid", "patient_key", "birth_year", "hospital_code", "operator_code", "date", "technique",
          "category", "disease", "target_organ", "n_lesions", "max_lesion_mm", "n_flags", "flags", "plan_uid",
          "verify_uid", "dose_uid", "dose_alert")


def _base() -> Any:
    return (select(*_COLS).join(Patient, Patient.id == Procedure.patient_id)
            .join(Hospital, Hospital.id == Procedure.hospital_id)
            .join(Operator, Operator.id == Procedure.primary_operator_id))


def _shape(ctx: Ctx, p: Principal, row: Any) -> ProcedureOut:
    rec = dict(zip(_NAMES, row, strict=True))
    rec["flags"] = rec["flags"] or []
    if not may_identify(p, rec["hospital_code"]):
        rec = deidentify(rec, ctx.secret)
    return ProcedureOut(**rec)


def list_procedures(ctx: Ctx, p: Principal, *, limit: int = 50, offset: int = 0,
                    flagged: bool = False) -> tuple[int, list[ProcedureOut]]:
    with session_scope(ctx.engine, p.username) as s:
        q = scope_procedures(_base(), s, p)
        if flagged:
            q = q.where(Procedure.n_flags > 0)
        total = s.scalar(scope_procedures(select(func.count()).select_from(Procedure), s, p)
                         .where(Procedure.n_flags > 0) if flagged else
                         scope_procedures(select(func.count()).select_from(Procedure), s, p)) or 0
        rows = s.execute(q.order_by(Procedure.date.desc(), Procedure.id.desc()).limit(limit).offset(offset)).all()
        return int(total), [_shape(ctx, p, r) for r in rows]


def procedure_row(s: Session, p: Principal, pid: int) -> Procedure:
    """The ORM row if ``p`` may see it, else 404 (whether or not it exists)."""
    proc = s.scalar(scope_procedures(select(Procedure).where(Procedure.id == pid), s, p))
    if proc is None:
        raise HTTPException(404, "not found")
    return proc


def get_procedure(ctx: Ctx, p: Principal, pid: int) -> ProcedureOut:
    with session_scope(ctx.engine, p.username) as s:
        procedure_row(s, p, pid)
        row = s.execute(_base().where(Procedure.id == pid)).one()
        audit(s, p, "read", "procedures", pid)
        return _shape(ctx, p, row)


def check_draft(ctx: Ctx, p: Principal, draft: CheckIn) -> CheckOut:
    """Flags a draft would raise: tier of technique vs hospital level and operator credential,
    contraindications, indications; plus plain validation messages, without storing anything."""
    cat = load_catalogue()
    errors: dict[str, str] = {}
    if draft.technique not in cat.techniques:
        errors["technique"] = "unknown technique"
    with session_scope(ctx.engine, p.username) as s:
        hosp = s.scalar(select(Hospital).where(Hospital.code == p.hospital_code)) if p.hospital_code else None
        if hosp is None:
            errors["hospital_code"] = "only a hospital user can enter procedures"
        op = None
        if draft.operator_code:
            op = s.scalar(select(Operator).where(Operator.code == draft.operator_code))
            if op is None or hosp is None or op.hospital_id != hosp.id:
                errors["operator_code"] = "no such operator in your hospital"
                op = None
        else:
            errors["operator_code"] = "required"
        flags: list[dict[str, str]] = []
        tier = None
        if "technique" not in errors:
            tier = cat.technique(draft.technique).tier
            if hosp is not None and op is not None:
                flags = cat.check_procedure(technique=draft.technique, hospital_level=hosp.level,
                                            credential=op.credential, record=draft.model_dump())
        return CheckOut(ok=not errors and not flags, tier=tier, flags=flags, errors=errors,
                        credential=op.credential if op else None, hospital_level=hosp.level if hosp else None)


def create_procedure(ctx: Ctx, p: Principal, body: ProcedureIn) -> dict[str, Any]:
    if not p.is_hospital or body.hospital_code != p.hospital_code:
        raise HTTPException(403, "a hospital user may record procedures of their own hospital only")
    try:
        with session_scope(ctx.engine, p.username) as s:
            res = record_procedure(s, body)
    except InputError as exc:
        raise HTTPException(422, [{"loc": ["body", exc.field or ""], "msg": str(exc), "type": "value_error"}]) from exc
    ctx.bump()
    return res.model_dump()
