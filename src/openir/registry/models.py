"""The registry's tables (SQLAlchemy 2 ORM).

One row per hospital, room, device, operator, pseudonymous patient and procedure; outcomes and
adverse events hang off the procedure. Adverse events keep the raw facts (what happened, which
treatment, how long a stay, which sequelae); the CIRSE and SIR grades are derived from them by
:mod:`openir.registry.grading` and stored beside them so that SQL can aggregate them. Results of
other stages (plan, verification, dose) are linked by UID with a JSON summary, never imported as
schemas, so the registry does not depend on those packages.

The schema itself is created by the Alembic migrations in ``registry/migrations``; these classes
must stay in step with them (a test compares the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Hospital(Base):
    __tablename__ = "hospitals"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))  # tertiary | secondary | county
    region: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    rooms: Mapped[list[Room]] = relationship(back_populates="hospital", cascade="all, delete-orphan")
    operators: Mapped[list[Operator]] = relationship(back_populates="hospital")


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospitals.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # angiography suite | ct room | hybrid or | ...
    hospital: Mapped[Hospital] = relationship(back_populates="rooms")
    equipment: Mapped[list[Equipment]] = relationship(back_populates="room", cascade="all, delete-orphan")
    __table_args__ = (UniqueConstraint("hospital_id", "name", name="uq_rooms_hospital_name"),)


class Equipment(Base):
    __tablename__ = "equipment"
    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    kind: Mapped[str] = mapped_column(String(48))  # code from tiers.yaml `equipment_kinds`
    model: Mapped[str | None] = mapped_column(String(120))
    installed_year: Mapped[int | None] = mapped_column(Integer)
    room: Mapped[Room] = relationship(back_populates="equipment")


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospitals.id"), index=True)
    credential: Mapped[str] = mapped_column(String(16))  # junior | intermediate | senior
    first_year: Mapped[int | None] = mapped_column(Integer)  # first year of independent practice
    hospital: Mapped[Hospital] = relationship(back_populates="operators")
    training: Mapped[list[TrainingRecord]] = relationship(back_populates="operator", cascade="all, delete-orphan")


class TrainingRecord(Base):
    __tablename__ = "training_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    course: Mapped[str] = mapped_column(String(200))
    completed_on: Mapped[dt.date] = mapped_column(Date)
    hours: Mapped[float | None] = mapped_column(Float)
    certificate: Mapped[str | None] = mapped_column(String(120))
    operator: Mapped[Operator] = relationship(back_populates="training")


class OperatorTraining(Base):
    """A refresher / continuing-training course an operator attended (imported from CSV; see
    registry.credentials): the QC centre's "who is due for what" reads the latest date per operator."""

    __tablename__ = "operator_training"
    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    course: Mapped[str] = mapped_column(String(200))
    hours: Mapped[float] = mapped_column(Float)
    provider: Mapped[str] = mapped_column(String(200))
    certificate_id: Mapped[str | None] = mapped_column(String(120))
    __table_args__ = (UniqueConstraint("operator_id", "date", "course"),)


class Patient(Base):
    """A patient by pseudonymous key only: no name, no ID number, no full birth date."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    pseudo_key: Mapped[str] = mapped_column(String(64), unique=True)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(1))  # M | F | O


class Procedure(Base):
    __tablename__ = "procedures"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospitals.id"))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    primary_operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    technique: Mapped[str] = mapped_column(String(48))  # code from techniques.yaml
    category: Mapped[str] = mapped_column(String(32))  # technique family, copied from the catalogue
    disease: Mapped[str | None] = mapped_column(String(120))  # as the hospital wrote it (any language)
    diagnosis_code: Mapped[str | None] = mapped_column(String(16))  # ICD-10, resolved by registry.codes
    target_organ: Mapped[str | None] = mapped_column(String(48))
    lesions: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"size_mm":..,"segment":..}, ...]
    n_lesions: Mapped[int | None] = mapped_column(Integer)
    max_lesion_mm: Mapped[float | None] = mapped_column(Float)
    imaging_guidance: Mapped[str | None] = mapped_column(String(48))
    devices: Mapped[list[Any] | None] = mapped_column(JSON)
    consumables: Mapped[list[Any] | None] = mapped_column(JSON)
    anaesthesia: Mapped[str | None] = mapped_column(String(24))
    duration_min: Mapped[float | None] = mapped_column(Float)
    cost_cny: Mapped[float | None] = mapped_column(Float)
    drg_group: Mapped[str | None] = mapped_column(String(24))
    # risk factors used by risk-adjusted indicators
    age_years: Mapped[int | None] = mapped_column(Integer)
    asa_class: Mapped[int | None] = mapped_column(Integer)
    child_pugh: Mapped[str | None] = mapped_column(String(1))  # A | B | C (liver disease only)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # links to results of other stages (UIDs) and a small JSON summary of each
    plan_uid: Mapped[str | None] = mapped_column(String(64))
    verify_uid: Mapped[str | None] = mapped_column(String(64))
    dose_uid: Mapped[str | None] = mapped_column(String(64))
    links: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dose_alert: Mapped[bool | None] = mapped_column(Boolean)
    # rule violations found when the procedure was recorded (catalogue.check_procedure)
    flags: Mapped[list[Any] | None] = mapped_column(JSON)
    n_flags: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)

    outcome: Mapped[Outcome | None] = relationship(back_populates="procedure", uselist=False, cascade="all, delete-orphan")
    adverse_events: Mapped[list[AdverseEvent]] = relationship(back_populates="procedure", cascade="all, delete-orphan")
    operators: Mapped[list[ProcedureOperator]] = relationship(back_populates="procedure", cascade="all, delete-orphan")
    sop_checks: Mapped[list[SOPCheckRow]] = relationship(back_populates="procedure", cascade="all, delete-orphan")

    __table_args__ = (
        Index("ix_procedures_hospital_date", "hospital_id", "date"),
        Index("ix_procedures_operator_date", "primary_operator_id", "date"),
    )


class ProcedureOperator(Base):
    __tablename__ = "procedure_operators"
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="primary")  # primary | assistant
    procedure: Mapped[Procedure] = relationship(back_populates="operators")


class Outcome(Base):
    __tablename__ = "outcomes"
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), primary_key=True)
    technical_success: Mapped[bool | None] = mapped_column(Boolean)
    complete_ablation: Mapped[bool | None] = mapped_column(Boolean)  # ablation only
    min_margin_mm: Mapped[float | None] = mapped_column(Float)  # from the verification
    mrecist: Mapped[str | None] = mapped_column(String(2))  # CR | PR | SD | PD (TACE)
    easl: Mapped[str | None] = mapped_column(String(2))
    necrosis_pct: Mapped[float | None] = mapped_column(Float)
    ltp: Mapped[bool | None] = mapped_column(Boolean)  # local tumour progression at follow-up
    followup_months: Mapped[float | None] = mapped_column(Float)
    puncture_bleeding: Mapped[bool | None] = mapped_column(Boolean)
    died: Mapped[bool | None] = mapped_column(Boolean)
    death_days: Mapped[int | None] = mapped_column(Integer)  # days from procedure to death
    procedure: Mapped[Procedure] = relationship(back_populates="outcome")


class AdverseEvent(Base):
    """An adverse event as raw facts; grades are derived (grading.py) and stored for SQL."""

    __tablename__ = "adverse_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), index=True)
    what: Mapped[str] = mapped_column(String(200))
    onset_days: Mapped[float | None] = mapped_column(Float)  # 0 = during the procedure
    resolved_in_session: Mapped[bool] = mapped_column(Boolean, default=False)
    therapy: Mapped[str] = mapped_column(String(16), default="none")  # none|nominal|additional|major
    extra_stay_h: Mapped[float] = mapped_column(Float, default=0.0)
    icu: Mapped[bool] = mapped_column(Boolean, default=False)
    life_threatening: Mapped[bool] = mapped_column(Boolean, default=False)
    sequelae: Mapped[str] = mapped_column(String(8), default="none")  # none | mild | severe
    death: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome_text: Mapped[str | None] = mapped_column(Text)
    cirse_grade: Mapped[int] = mapped_column(Integer)
    sir_2003: Mapped[str] = mapped_column(String(1))
    sir_2017: Mapped[int] = mapped_column(Integer)
    major: Mapped[bool] = mapped_column(Boolean)
    procedure: Mapped[Procedure] = relationship(back_populates="adverse_events")


class SOPCheckRow(Base):
    """A pre-procedure check of the patient's values against the technique's SOP (openir.sop):
    the values as checked, the SOP version, and an override reason where a block-level deviation
    was accepted. Its deviations are rows of their own so SQL can count them per check and hospital."""

    __tablename__ = "sop_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), index=True)
    technique: Mapped[str] = mapped_column(String(48))
    sop_version: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime)
    patient_values: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_block: Mapped[int] = mapped_column(Integer, default=0)
    n_warn: Mapped[int] = mapped_column(Integer, default=0)
    override_reason: Mapped[str | None] = mapped_column(Text)
    procedure: Mapped[Procedure] = relationship(back_populates="sop_checks")
    deviations: Mapped[list[SOPDeviationRow]] = relationship(back_populates="sop_check", cascade="all, delete-orphan")


class SOPDeviationRow(Base):
    """One deviation of a stored SOP check (see openir.sop.models.Deviation)."""

    __tablename__ = "sop_deviations"
    id: Mapped[int] = mapped_column(primary_key=True)
    sop_check_id: Mapped[int] = mapped_column(ForeignKey("sop_checks.id"), index=True)
    check_id: Mapped[str] = mapped_column(String(48), index=True)  # id in sop/data/_checks.yaml
    item: Mapped[str] = mapped_column(String(48))
    value: Mapped[str | None] = mapped_column(Text)
    threshold: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))  # block | warn
    kind: Mapped[str] = mapped_column(String(16))  # threshold | missing
    source: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    message_zh: Mapped[str] = mapped_column(Text)
    sop_check: Mapped[SOPCheckRow] = relationship(back_populates="deviations")


class AuditLog(Base):
    """Who changed what, when, and the row before and after (JSON)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # insert | update | delete | bulk_import
    table_name: Mapped[str] = mapped_column(String(48))
    row_key: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    __table_args__ = (Index("ix_audit_log_table_row", "table_name", "row_key"),)


class ProcedureCost(Base):
    """The cost header of one procedure: DRG code, length of stay, total cost and, when the hospital
    has it, the settled insurance payment (else payment = weight x base rate at analysis time)."""

    __tablename__ = "procedure_costs"
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), primary_key=True)
    drg_code: Mapped[str | None] = mapped_column(String(24), index=True)
    drg_version: Mapped[str | None] = mapped_column(String(8))  # CHS-DRG 1.1 | 2.0 | local
    length_of_stay_days: Mapped[float | None] = mapped_column(Float)
    total_cost_cny: Mapped[float] = mapped_column(Float)  # sum of the items
    payment_cny: Mapped[float | None] = mapped_column(Float)  # settled payment, if known
    source: Mapped[str | None] = mapped_column(String(200))  # imported file
    items: Mapped[list[CostItem]] = relationship(cascade="all, delete-orphan")


class CostItem(Base):
    """One line of a settlement list: a consumable (with origin and national insurance code), device,
    drug, imaging, bed days, procedure fee."""

    __tablename__ = "cost_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedure_costs.procedure_id"), index=True)
    category: Mapped[str] = mapped_column(String(16))  # drg.yaml `categories`
    name: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(String(8))  # domestic | imported (consumables, devices)
    nhsa_code: Mapped[str | None] = mapped_column(String(40))  # 医保医用耗材分类与代码, where given
    quantity: Mapped[float | None] = mapped_column(Float)
    amount_cny: Mapped[float] = mapped_column(Float)


AUDITED = (Hospital, Room, Equipment, Operator, TrainingRecord, OperatorTraining, Patient, Procedure, ProcedureOperator, Outcome, AdverseEvent)
