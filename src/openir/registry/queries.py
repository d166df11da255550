"""Read and small write operations on the registry for applications (the web, scripts).

Callers get typed records (pydantic models), never ORM rows, so they need not know the tables and
a schema change stays inside the registry. Every function takes an open session (from
:func:`openir.registry.session_scope`): what a caller reads and what it audits land in one
transaction, and ORM writes pass through the audit hook.

``hospitals`` arguments restrict a query to the procedures of those hospital codes; ``None`` means
no restriction and an empty collection matches nothing (a user tied to no hospital sees nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from openir.core.errors import InputError

from .models import AdverseEvent, Hospital, Operator, Patient, Procedure

__all__ = [
    "CaseRecord", "HospitalRef", "OperatorRef", "ProcedureSummary", "count_procedures", "find_case",
    "find_procedure", "get_hospital", "get_operator", "list_hospitals", "list_operators", "list_procedures",
    "merge_procedure_links",
]

_AE_FIELDS = ("what", "onset_days", "therapy", "extra_stay_h", "cirse_grade", "sir_2017", "major", "outcome_text")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class HospitalRef(_Record):
    """A hospital as applications see it (``id`` only to keep an insertion order)."""

    id: int
    code: str
    name: str
    level: str
    region: str


class OperatorRef(_Record):
    """An operator with the hospital they work for and their credential (tier rules need both)."""

    code: str
    hospital_code: str
    credential: str


class ProcedureSummary(_Record):
    """One procedure's list row: who, where, what, flags and the UIDs of linked stage results."""

    id: int
    uid: str
    patient_key: str
    birth_year: int | None
    hospital_code: str
    operator_code: str
    date: dt.date
    technique: str
    category: str
    disease: str | None
    target_organ: str | None
    n_lesions: int | None
    max_lesion_mm: float | None
    n_flags: int
    flags: list[dict[str, str]] | None
    plan_uid: str | None
    verify_uid: str | None
    dose_uid: str | None
    dose_alert: bool | None


class CaseRecord(_Record):
    """A procedure with what the case view shows besides the list row: stage links (JSON),
    outcome and adverse events (raw facts with their derived grades)."""

    procedure: ProcedureSummary
    links: dict[str, Any]
    outcome: dict[str, Any] | None
    adverse_events: list[dict[str, Any]]


_COLS = (Procedure.id, Procedure.uid, Patient.pseudo_key.label("patient_key"), Patient.birth_year,
         Hospital.code.label("hospital_code"), Operator.code.label("operator_code"), Procedure.date,
         Procedure.technique, Procedure.category, Procedure.disease, Procedure.target_organ, Procedure.n_lesions,
         Procedure.max_lesion_mm, Procedure.n_flags, Procedure.flags, Procedure.plan_uid, Procedure.verify_uid,
         Procedure.dose_uid, Procedure.dose_alert)


def _summary_select() -> Select:
    return (select(*_COLS).join(Patient, Patient.id == Procedure.patient_id)
            .join(Hospital, Hospital.id == Procedure.hospital_id)
            .join(Operator, Operator.id == Procedure.primary_operator_id))


def _within(stmt: Select, hospitals: Collection[str] | None) -> Select:
    """Restrict a select over ``Procedure`` to ``hospitals`` (None: all of them)."""
    if hospitals is None:
        return stmt
    ids = select(Hospital.id).where(Hospital.code.in_(list(hospitals)))
    return stmt.where(Procedure.hospital_id.in_(ids))


def _hospital(h: Hospital) -> HospitalRef:
    return HospitalRef(id=h.id, code=h.code, name=h.name, level=h.level, region=h.region)


def list_hospitals(session: Session) -> list[HospitalRef]:
    """Every hospital, by code: pickers, and the facility names that dose reports carry."""
    return [_hospital(h) for h in session.scalars(select(Hospital).order_by(Hospital.code))]


def get_hospital(session: Session, code: str) -> HospitalRef | None:
    """The hospital with ``code``, or None when the registry has no such hospital."""
    h = session.scalar(select(Hospital).where(Hospital.code == code))
    return None if h is None else _hospital(h)


def list_operators(session: Session, hospital_code: str) -> list[OperatorRef]:
    """The operators of one hospital, by code (the entry form offers only these)."""
    rows = session.execute(select(Operator.code, Operator.credential).join(Hospital, Hospital.id == Operator.hospital_id)
                           .where(Hospital.code == hospital_code).order_by(Operator.code)).all()
    return [OperatorRef(code=c, hospital_code=hospital_code, credential=cred) for c, cred in rows]


def get_operator(session: Session, code: str) -> OperatorRef | None:
    """The operator with ``code`` and their hospital, or None when unknown."""
    row = session.execute(select(Operator.code, Hospital.code, Operator.credential)
                          .join(Hospital, Hospital.id == Operator.hospital_id).where(Operator.code == code)).first()
    return None if row is None else OperatorRef(code=row[0], hospital_code=row[1], credential=row[2])


def count_procedures(session: Session, *, hospitals: Collection[str] | None = None, flagged: bool = False) -> int:
    """How many procedures (of ``hospitals``; only those with rule flags when ``flagged``)."""
    q = _within(select(func.count()).select_from(Procedure), hospitals)
    if flagged:
        q = q.where(Procedure.n_flags > 0)
    return int(session.scalar(q) or 0)


def list_procedures(session: Session, *, hospitals: Collection[str] | None = None, flagged: bool = False,
                    limit: int | None = 50, offset: int = 0,
                    order: Literal["recent", "entry"] = "recent") -> list[ProcedureSummary]:
    """A page of procedures: newest first (``recent``) or in the order they were recorded (``entry``)."""
    q = _within(_summary_select(), hospitals)
    if flagged:
        q = q.where(Procedure.n_flags > 0)
    q = q.order_by(Procedure.date.desc(), Procedure.id.desc()) if order == "recent" else q.order_by(Procedure.id)
    q = q.limit(limit).offset(offset) if limit is not None else q.offset(offset)
    return [ProcedureSummary.model_validate(dict(r)) for r in session.execute(q).mappings()]


def find_procedure(session: Session, procedure_id: int, *, hospitals: Collection[str] | None = None) -> ProcedureSummary | None:
    """One procedure, or None when it does not exist or lies outside ``hospitals`` (callers must
    not be able to tell the two apart)."""
    row = session.execute(_within(_summary_select(), hospitals).where(Procedure.id == procedure_id)).mappings().first()
    return None if row is None else ProcedureSummary.model_validate(dict(row))


def find_case(session: Session, procedure_id: int, *, hospitals: Collection[str] | None = None) -> CaseRecord | None:
    """A procedure with its links, outcome and adverse events; None as for :func:`find_procedure`."""
    head = find_procedure(session, procedure_id, hospitals=hospitals)
    if head is None:
        return None
    proc = session.get(Procedure, procedure_id)
    assert proc is not None
    outcome = None
    if proc.outcome is not None:
        outcome = {c.key: getattr(proc.outcome, c.key) for c in proc.outcome.__table__.columns if c.key != "procedure_id"}
    aes = session.scalars(select(AdverseEvent).where(AdverseEvent.procedure_id == procedure_id).order_by(AdverseEvent.id))
    return CaseRecord(procedure=head, links=dict(proc.links or {}), outcome=outcome,
                      adverse_events=[{k: getattr(a, k) for k in _AE_FIELDS} for a in aes])


def merge_procedure_links(session: Session, procedure_id: int, links: dict[str, Any]) -> dict[str, Any]:
    """Add or replace stage links (image, plan, verification summaries...) of a procedure; the
    change is audited like any other. Returns the links as stored."""
    proc = session.get(Procedure, procedure_id)
    if proc is None:
        raise InputError(f"no procedure with id {procedure_id}", field="procedure_id")
    proc.links = {**(proc.links or {}), **links}
    session.flush()
    return dict(proc.links)
