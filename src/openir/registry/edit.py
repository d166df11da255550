"""Corrections to a recorded procedure: a few clinical fields, re-checked against the catalogue's
rules, every change written to the audit log (before and after, by the session's audit hooks)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openir.core.errors import InputError

from .catalogue import load_catalogue
from .models import Hospital, Operator, Procedure


class ProcedureEdit(BaseModel):
    """Fields a hospital may correct after saving (identity, date and technique stay as recorded:
    a wrong one is a new record and a withdrawal, not an edit)."""

    model_config = ConfigDict(extra="forbid")

    disease: str | None = Field(default=None, max_length=120)
    age_years: int | None = Field(default=None, ge=0, le=120)
    asa_class: int | None = Field(default=None, ge=1, le=6)
    child_pugh: Literal["A", "B", "C"] | None = None
    duration_min: float | None = Field(default=None, gt=0, le=1440)
    imaging_guidance: str | None = Field(default=None, max_length=48)
    emergency: bool | None = None


def edit_procedure(session: Session, procedure_id: int, changes: ProcedureEdit) -> list[str]:
    """Apply the fields set in ``changes``; re-runs the rule checks; returns the changed field names."""
    proc = session.get(Procedure, procedure_id)
    if proc is None:
        raise InputError(f"no procedure with id {procedure_id}", field="procedure_id")
    changed = []
    for name, value in changes.model_dump(exclude_unset=True).items():
        if getattr(proc, name) != value:
            setattr(proc, name, value)
            changed.append(name)
    if "disease" in changed:  # the coded diagnosis follows the corrected text
        from .codes import resolve_diagnosis

        res = resolve_diagnosis(proc.disease)
        proc.diagnosis_code = res.code if res else None
    if changed:
        hosp = session.get(Hospital, proc.hospital_id)
        op = session.get(Operator, proc.primary_operator_id)
        record = {c: getattr(proc, c) for c in ("disease", "diagnosis_code", "age_years", "asa_class", "child_pugh", "emergency",
                                               "max_lesion_mm", "n_lesions", "lesions", "imaging_guidance",
                                               "duration_min", "anaesthesia")}
        flags = load_catalogue().check_procedure(technique=proc.technique, hospital_level=hosp.level,  # type: ignore[union-attr]
                                                 credential=op.credential, record=record)  # type: ignore[union-attr]
        proc.flags, proc.n_flags = flags or None, len(flags)
        session.flush()
    return changed


def procedure_hospital(session: Session, procedure_id: int) -> str | None:
    """The code of the hospital that recorded a procedure (None if there is none)."""
    return session.scalar(select(Hospital.code).join(Procedure, Procedure.hospital_id == Hospital.id)
                          .where(Procedure.id == procedure_id))
