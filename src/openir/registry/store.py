"""Recording through the ORM: one hospital, operator or procedure at a time, audited and checked.

This is the path for interactive use (CLI ``add``, the demo, an API). Bulk loads use
:mod:`openir.registry.bulk`, which writes the same rows with Core inserts.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from openir.core.errors import InputError
from openir.sop.models import SOPCheck

from .catalogue import load_catalogue
from .grading import grade_all
from .models import (
    AdverseEvent,
    Equipment,
    Hospital,
    Operator,
    Outcome,
    Patient,
    Procedure,
    ProcedureOperator,
    Room,
    SOPCheckRow,
    SOPDeviationRow,
    TrainingRecord,
)
from .schemas import HospitalIn, OperatorIn, ProcedureIn, RecordResult


def add_hospital(session: Session, h: HospitalIn) -> Hospital:
    if session.scalar(select(Hospital).where(Hospital.code == h.code)) is not None:
        raise InputError(f"hospital {h.code!r} already exists", field="code")
    hosp = Hospital(code=h.code, name=h.name, level=h.level, region=h.region)
    for r in h.rooms:
        room = Room(name=r.name, kind=r.kind)
        room.equipment = [Equipment(kind=e.kind, model=e.model, installed_year=e.installed_year) for e in r.equipment]
        hosp.rooms.append(room)
    session.add(hosp)
    session.flush()
    return hosp


def add_operator(session: Session, o: OperatorIn) -> Operator:
    hosp = session.scalar(select(Hospital).where(Hospital.code == o.hospital_code))
    if hosp is None:
        raise InputError(f"unknown hospital {o.hospital_code!r}", field="hospital_code")
    if session.scalar(select(Operator).where(Operator.code == o.code)) is not None:
        raise InputError(f"operator {o.code!r} already exists", field="code")
    op = Operator(code=o.code, hospital_id=hosp.id, credential=o.credential, first_year=o.first_year)
    op.training = [TrainingRecord(course=t.course, completed_on=t.completed_on, hours=t.hours,
                                  certificate=t.certificate) for t in o.training]
    session.add(op)
    session.flush()
    return op


def _links(p: ProcedureIn) -> dict | None:
    """Stage links as given, plus the seed-implant dosimetry (D90, V100...) under ``seed_dosimetry``."""
    links = dict(p.links or {})
    if p.seed_dosimetry:
        links["seed_dosimetry"] = [s.model_dump() for s in p.seed_dosimetry]
    return links or None


def sop_flags(p: ProcedureIn) -> list[dict[str, str]]:
    """Flags of the procedure's SOP check (see :func:`sop_check_flags`)."""
    return sop_check_flags(p.sop_check, p.technique, p.sop_override_reason)


def sop_check_flags(c: SOPCheck | None, technique: str, reason: str | None) -> list[dict[str, str]]:
    """Flags of an SOP check: one per block-level deviation, with the override reason.

    A check of another technique, or block-level deviations without an override reason, are refused
    (InputError naming the field): the procedure is stored with its deviations flagged, never with
    them silently dropped."""
    if c is None:
        if reason:
            raise InputError("an SOP override reason without an SOP check", field="sop_override_reason")
        return []
    if c.technique != technique:
        raise InputError(f"the SOP check is for {c.technique!r}, the procedure is {technique!r}", field="sop_check")
    blocks = [d for d in c.deviations if d.severity == "block"]
    if blocks and not (reason or "").strip():
        raise InputError(f"{len(blocks)} block-level SOP deviation(s) ({', '.join(d.check for d in blocks)}): "
                         "record the reason the procedure went ahead", field="sop_override_reason")
    return [{"rule": "sop_block", "message": f"{d.message_en} [{d.source}]; override: {reason}"} for d in blocks]


def sop_check_fields(c: SOPCheck, override_reason: str | None) -> dict:
    """Column values of the ``sop_checks`` row of a check (ORM and bulk paths share them)."""
    return dict(technique=c.technique, sop_version=c.sop_version, checked_at=c.checked_at.replace(tzinfo=None),
                patient_values=c.values.model_dump(mode="json"), n_block=c.n_block, n_warn=c.n_warn,
                override_reason=(override_reason or "").strip() or None)


def sop_deviation_fields(c: SOPCheck) -> list[dict]:
    """Column values of the ``sop_deviations`` rows of a check."""
    return [dict(check_id=d.check, item=d.item, value=None if d.value is None else str(d.value), threshold=d.threshold,
                 severity=d.severity, kind=d.kind, source=d.source, message_en=d.message_en, message_zh=d.message_zh)
            for d in c.deviations]


def sop_row(c: SOPCheck, override_reason: str | None) -> SOPCheckRow:
    """The stored form of an SOP check and its deviations."""
    row = SOPCheckRow(**sop_check_fields(c, override_reason))
    row.deviations.extend(SOPDeviationRow(**d) for d in sop_deviation_fields(c))
    return row


def record_procedure(session: Session, p: ProcedureIn) -> RecordResult:
    """Store one procedure with its outcome and adverse events; flags rule violations."""
    cat = load_catalogue()
    tech = cat.technique(p.technique)
    hosp = session.scalar(select(Hospital).where(Hospital.code == p.hospital_code))
    if hosp is None:
        raise InputError(f"unknown hospital {p.hospital_code!r}", field="hospital_code")
    op = session.scalar(select(Operator).where(Operator.code == p.operator_code))
    if op is None:
        raise InputError(f"unknown operator {p.operator_code!r}", field="operator_code")
    if op.hospital_id != hosp.id:
        raise InputError(f"operator {p.operator_code!r} does not belong to hospital {p.hospital_code!r}",
                         field="operator_code")
    if session.scalar(select(Procedure.id).where(Procedure.uid == p.uid)) is not None:
        raise InputError(f"procedure {p.uid!r} is already recorded", field="uid")
    room_id = None
    if p.room:
        room_id = session.scalar(select(Room.id).where(Room.hospital_id == hosp.id, Room.name == p.room))
        if room_id is None:
            raise InputError(f"hospital {p.hospital_code!r} has no room {p.room!r}", field="room")
    patient = session.scalar(select(Patient).where(Patient.pseudo_key == p.patient_key))
    if patient is None:
        patient = Patient(pseudo_key=p.patient_key, birth_year=p.birth_year, sex=p.sex)
        session.add(patient)
        session.flush()
    record = p.model_dump(exclude={"sop_check"})
    flags = cat.check_procedure(technique=p.technique, hospital_level=hosp.level, credential=op.credential,
                                record=record)
    flags += sop_flags(p)
    sizes = [les.size_mm for les in p.lesions]
    proc = Procedure(
        uid=p.uid, patient_id=patient.id, hospital_id=hosp.id, room_id=room_id, primary_operator_id=op.id,
        date=p.date, technique=tech.code, category=tech.category, disease=p.disease,
        diagnosis_code=p.resolved_code(),
        target_organ=p.target_organ or (tech.organ if tech.organ != "any" else None),
        lesions=[les.model_dump() for les in p.lesions] or None, n_lesions=len(sizes) or None,
        max_lesion_mm=max(sizes) if sizes else None, imaging_guidance=p.imaging_guidance,
        devices=p.devices or None, consumables=p.consumables or None, anaesthesia=p.anaesthesia,
        duration_min=p.duration_min, cost_cny=p.cost_cny, drg_group=p.drg_group, age_years=p.age_years,
        asa_class=p.asa_class, child_pugh=p.child_pugh, emergency=p.emergency, plan_uid=p.plan_uid,
        verify_uid=p.verify_uid, dose_uid=p.dose_uid, links=_links(p), dose_alert=p.dose_alert,
        flags=flags or None, n_flags=len(flags),
    )
    proc.outcome = Outcome(**p.outcome.model_dump())
    proc.operators.append(ProcedureOperator(operator_id=op.id, role="primary"))
    for code in p.assistant_codes:
        a = session.scalar(select(Operator).where(Operator.code == code))
        if a is None:
            raise InputError(f"unknown assistant operator {code!r}", field="assistant_codes")
        if a.id != op.id:
            proc.operators.append(ProcedureOperator(operator_id=a.id, role="assistant"))
    grades = []
    for ae in p.adverse_events:
        g = grade_all(ae.facts())
        grades.append({"what": ae.what, **g})
        proc.adverse_events.append(AdverseEvent(**ae.model_dump(), **g))
    if p.sop_check is not None:
        proc.sop_checks.append(sop_row(p.sop_check, p.sop_override_reason))
    session.add(proc)
    session.flush()
    return RecordResult(procedure_id=proc.id, uid=proc.uid, flags=flags, grades=grades)
