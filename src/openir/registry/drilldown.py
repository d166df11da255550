"""From a figure to the cases behind it: procedure lists filtered by hospital, operator, technique,
dates, patient, rule flags, or by the denominator (and events) of a quality indicator.

The indicator filter evaluates the same conditions as ``compute_indicators`` (one SQL definition),
so the list behind a funnel point has exactly the point's n cases, x of them events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from openir.core.errors import InputError

from .indicators import _fields, _sql, load_indicators
from .models import AdverseEvent, Hospital, Operator, Outcome, Patient, Procedure
from .queries import ProcedureSummary, _summary_select, _within


@dataclass(frozen=True)
class CaseFilter:
    """What a list of cases is restricted to; every field optional. ``indicator`` keeps the cases in
    that indicator's denominator (``events_only``: in its numerator too)."""

    hospital: str | None = None
    operator: str | None = None
    technique: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    text: str | None = None  # part of the case uid or the patient key
    patient_key: str | None = None
    flagged: bool = False
    indicator: str | None = None
    events_only: bool = False


def _apply(stmt, f: CaseFilter):
    conds = []
    if f.hospital:
        conds.append(Hospital.code == f.hospital)
    if f.operator:
        conds.append(Operator.code == f.operator)
    if f.technique:
        conds.append(Procedure.technique == f.technique)
    if f.date_from:
        conds.append(Procedure.date >= f.date_from)
    if f.date_to:
        conds.append(Procedure.date <= f.date_to)
    if f.patient_key:
        conds.append(Patient.pseudo_key == f.patient_key)
    if f.text:
        like = f"%{f.text.strip()}%"
        conds.append(or_(Procedure.uid.ilike(like), Patient.pseudo_key.ilike(like)))
    if f.flagged:
        conds.append(Procedure.n_flags > 0)
    if f.indicator:
        d = next((d for d in load_indicators() if d.code == f.indicator), None)
        if d is None:
            raise InputError(f"unknown indicator {f.indicator!r}", field="indicator")
        A = AdverseEvent
        ae = (select(A.procedure_id, func.max(case((A.major, 1), else_=0)).label("major_i"))
              .group_by(A.procedure_id).subquery())
        fields = _fields(ae)
        den = [_sql(c, fields) for c in d.denominator]
        if d.exclusions:
            den.append(~func.coalesce(or_(*[_sql(c, fields) for c in d.exclusions]), False))
        if f.events_only:
            den += [_sql(c, fields) for c in d.numerator]
        stmt = (stmt.outerjoin(Outcome, Outcome.procedure_id == Procedure.id)
                .outerjoin(ae, ae.c.procedure_id == Procedure.id))
        conds += den
    return stmt.where(and_(*conds)) if conds else stmt


def find_cases(session: Session, f: CaseFilter, *, hospitals: Collection[str] | None = None,
               limit: int = 50, offset: int = 0) -> tuple[int, list[ProcedureSummary]]:
    """(how many, one page newest first) of the procedures of ``hospitals`` that pass ``f``."""
    base = _apply(_within(_summary_select(), hospitals), f)
    total = session.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0
    rows = session.execute(base.order_by(Procedure.date.desc(), Procedure.id.desc()).limit(limit).offset(offset)).mappings()
    return int(total), [ProcedureSummary.model_validate(dict(r)) for r in rows]
