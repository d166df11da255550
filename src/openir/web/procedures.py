"""Procedures through the web: list, read (audited), live rule check, record (audited)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from fastapi import HTTPException, Query
from sqlalchemy.orm import Session

from openir.core import InputError
from openir.registry import (
    CaseFilter,
    ProcedureEdit,
    ProcedureIn,
    ProcedureSummary,
    count_procedures,
    edit_procedure,
    find_cases,
    find_procedure,
    get_hospital,
    get_operator,
    load_catalogue,
    record_procedure,
    session_scope,
)
from openir.registry import list_procedures as registry_procedures

from .access import audit, deidentify, hospitals_of, may_identify
from .context import Ctx
from .schemas import CheckIn, CheckOut, ProcedureOut
from .security import Principal


def _shape(ctx: Ctx, p: Principal, summary: ProcedureSummary) -> ProcedureOut:
    rec = summary.model_dump()
    rec["flags"] = rec["flags"] or []
    if not may_identify(p, rec["hospital_code"]):
        rec = deidentify(rec, ctx.secret)
    return ProcedureOut(**rec)


def list_procedures(ctx: Ctx, p: Principal, *, limit: int = 50, offset: int = 0,
                    flagged: bool = False, filters: CaseFilter | None = None) -> tuple[int, list[ProcedureOut]]:
    """One page of the procedures ``p`` may see (newest first) and how many there are in all;
    other hospitals' rows come de-identified. ``filters`` narrow it (the cases behind a funnel point,
    a CUSUM signal, a rating); searching by patient key or case uid is for a hospital's own records
    only, because a match on another hospital's identifiers would itself disclose them."""
    scope = hospitals_of(p)
    with session_scope(ctx.engine, p.username) as s:
        if filters is None or filters == CaseFilter():
            total = count_procedures(s, hospitals=scope, flagged=flagged)
            rows = registry_procedures(s, hospitals=scope, flagged=flagged, limit=limit, offset=offset)
        else:
            if not p.is_hospital:
                filters = replace(filters, text=None, patient_key=None)
            total, rows = find_cases(s, replace(filters, flagged=filters.flagged or flagged), hospitals=scope,
                                     limit=limit, offset=offset)
        return total, [_shape(ctx, p, r) for r in rows]


def procedure_row(s: Session, p: Principal, pid: int) -> ProcedureSummary:
    """The procedure if ``p`` may see it, else 404 (whether or not it exists: no probing)."""
    proc = find_procedure(s, pid, hospitals=hospitals_of(p))
    if proc is None:
        raise HTTPException(404, "not found")
    return proc


def get_procedure(ctx: Ctx, p: Principal, pid: int) -> ProcedureOut:
    """One procedure as ``p`` may see it; the read is audited."""
    with session_scope(ctx.engine, p.username) as s:
        row = procedure_row(s, p, pid)
        audit(s, p, "read", "procedures", pid)
        return _shape(ctx, p, row)


def check_draft(ctx: Ctx, p: Principal, draft: CheckIn) -> CheckOut:
    """Flags a draft would raise: tier of technique vs hospital level and operator credential,
    contraindications, indications; plus plain validation messages, without storing anything."""
    from .i18n import translator

    t = translator(p.lang)
    cat = load_catalogue()
    errors: dict[str, str] = {}
    if draft.technique not in cat.techniques:
        errors["technique"] = t("err_unknown_technique")
    with session_scope(ctx.engine, p.username) as s:
        hosp = get_hospital(s, p.hospital_code) if p.hospital_code else None
        if hosp is None:
            errors["hospital_code"] = t("err_not_hospital")
        op = None
        if draft.operator_code:
            op = get_operator(s, draft.operator_code)
            if op is None or hosp is None or op.hospital_code != hosp.code:
                errors["operator_code"] = t("err_no_operator")
                op = None
        else:
            errors["operator_code"] = t("err_required")
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
    """Record a procedure of the caller's own hospital (the registry audits and flags it);
    registry validation errors come back as 422 naming the field."""
    if not p.is_hospital or body.hospital_code != p.hospital_code:
        raise HTTPException(403, "a hospital user may record procedures of their own hospital only")
    from .cases import FILE_LINKS

    named = sorted(k for k in (body.links or {}) if k in FILE_LINKS)
    if named:  # stored files are linked by the server that stored them, never named by a client
        raise HTTPException(422, [{"loc": ["body", "links", named[0]], "type": "value_error",
                                   "msg": f"links.{named[0]} names a stored file; the server sets it when it stores one"}])
    from .sop_check import rechecked

    body = rechecked(body)
    try:
        with session_scope(ctx.engine, p.username) as s:
            res = record_procedure(s, body)
    except InputError as exc:
        from .i18n import translator
        from .messages import input_error_text

        text = input_error_text(translator(p.lang), exc.problem)
        raise HTTPException(422, [{"loc": ["body", exc.field or ""], "msg": text, "type": "value_error"}]) from exc
    ctx.bump()
    return res.model_dump()


def case_filter(hospital: str | None = Query(None, max_length=32), operator: str | None = Query(None, max_length=32),
                technique: str | None = Query(None, max_length=64), date_from: dt.date | None = None,
                date_to: dt.date | None = None, q: str | None = Query(None, max_length=64),
                indicator: str | None = Query(None, max_length=64), events: bool = False) -> CaseFilter:
    """The list filters of a request (query parameters), shared by the page and the API."""
    clean = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in
             {"hospital": hospital, "operator": operator, "technique": technique, "text": q, "indicator": indicator}.items()}
    return CaseFilter(date_from=date_from, date_to=date_to, events_only=events and bool(clean["indicator"]), **clean)


def edit_record(ctx: Ctx, p: Principal, pid: int, changes: ProcedureEdit) -> list[str]:
    """Correct a saved procedure of the caller's own hospital unless it is locked (409); the registry
    audits the change field by field and re-checks the rules."""
    from .models import RecordLock

    if not p.is_hospital:
        raise HTTPException(403, "a hospital user may edit their own hospital's records only")
    with session_scope(ctx.engine, p.username) as s:
        procedure_row(s, p, pid)  # 404 unless the caller's own
        if s.get(RecordLock, pid) is not None:
            raise HTTPException(409, "this record is locked (signed off by the quality officer)")
        changed = edit_procedure(s, pid, changes)
    if changed:
        ctx.bump()
    return changed


def lock_record(ctx: Ctx, p: Principal, pid: int) -> None:
    """Sign a record off: only the quality officer of its hospital; afterwards edits are refused."""
    from .models import RecordLock

    if p.role != "quality_officer":
        raise HTTPException(403, "only the hospital's quality officer locks records")
    with session_scope(ctx.engine, p.username) as s:
        procedure_row(s, p, pid)
        if s.get(RecordLock, pid) is None:
            s.add(RecordLock(procedure_id=pid, locked_by=p.user_id))
            audit(s, p, "insert", "web_record_locks", pid)


def is_locked(ctx: Ctx, pid: int) -> bool:
    """Whether a record is signed off."""
    from .models import RecordLock

    with session_scope(ctx.engine) as s:
        return s.get(RecordLock, pid) is not None
