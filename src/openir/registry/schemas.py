"""Pydantic models of what enters and leaves the registry (CLI ``add``, CSV import, API, demo)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from openir.sop.models import SOPCheck

from .enums import (
    Anaesthesia,
    ChildPugh,
    Credential,
    HospitalLevel,
    Response,
    Sequelae,
    Sex,
    Therapy,
)
from .grading import AEFacts


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EquipmentIn(_In):
    kind: str
    model: str | None = None
    installed_year: int | None = Field(default=None, ge=1950, le=2100)


class RoomIn(_In):
    name: str
    kind: str = "angiography suite"
    equipment: list[EquipmentIn] = []


class HospitalIn(_In):
    code: str = Field(min_length=1, max_length=32)
    name: str
    level: HospitalLevel
    region: str
    rooms: list[RoomIn] = []


class TrainingIn(_In):
    course: str
    completed_on: dt.date
    hours: float | None = Field(default=None, ge=0)
    certificate: str | None = None


class OperatorIn(_In):
    code: str = Field(min_length=1, max_length=32)
    hospital_code: str
    credential: Credential
    first_year: int | None = Field(default=None, ge=1950, le=2100)
    training: list[TrainingIn] = []


class AdverseEventIn(_In):
    """Raw facts of one adverse event (grades are derived, never entered)."""

    what: str = Field(min_length=1)
    onset_days: float | None = Field(default=None, ge=0)
    resolved_in_session: bool = False
    therapy: Therapy = "none"
    extra_stay_h: float = Field(default=0.0, ge=0)
    icu: bool = False
    life_threatening: bool = False
    sequelae: Sequelae = "none"
    death: bool = False
    outcome_text: str | None = None

    def facts(self) -> AEFacts:
        return AEFacts(self.resolved_in_session, self.therapy, self.extra_stay_h, self.icu,
                       self.life_threatening, self.sequelae, self.death)


class OutcomeIn(_In):
    technical_success: bool | None = None
    complete_ablation: bool | None = None
    min_margin_mm: float | None = None
    mrecist: Response | None = None
    easl: Response | None = None
    necrosis_pct: float | None = Field(default=None, ge=0, le=100)
    ltp: bool | None = None
    followup_months: float | None = Field(default=None, ge=0)
    puncture_bleeding: bool | None = None
    died: bool | None = None
    death_days: int | None = Field(default=None, ge=0)


class Lesion(_In):
    size_mm: float = Field(gt=0, le=300)
    location: str | None = None


class SeedDosimetryIn(_In):
    """Dosimetry of a radioactive seed implant (the plan, or the post-implant CT check) as generic
    numbers: the registry records them without depending on the seeds package (``openir seeds``
    writes them in plan.json: metrics.d90_gy, metrics.v100_pct, ...)."""

    stage: Literal["plan", "post_implant"] = "plan"
    seed_model: str | None = None
    seeds: int = Field(ge=0)
    needles: int | None = Field(default=None, ge=0)
    activity_mci_per_seed: float | None = Field(default=None, gt=0, le=10)
    total_activity_mci: float | None = Field(default=None, ge=0)
    prescription_gy: float = Field(gt=0, le=400)
    d90_gy: float = Field(ge=0)
    d100_gy: float | None = Field(default=None, ge=0)
    v100_pct: float = Field(ge=0, le=100)
    v150_pct: float | None = Field(default=None, ge=0, le=100)
    v200_pct: float | None = Field(default=None, ge=0, le=100)


class ProcedureIn(_In):
    """One procedure as recorded by a hospital."""

    uid: str = Field(min_length=1, max_length=64)
    patient_key: str = Field(min_length=4, max_length=64, description="pseudonymous key, never a name or ID")
    hospital_code: str
    operator_code: str
    assistant_codes: list[str] = []
    room: str | None = None
    date: dt.date
    technique: str
    disease: str | None = Field(default=None, max_length=120, description="as written: ICD-10 code, Chinese or English name")
    diagnosis_code: str | None = Field(default=None, max_length=16, description="ICD-10 (or national clinical edition) code")
    target_organ: str | None = None
    lesions: list[Lesion] = []
    imaging_guidance: str | None = None
    devices: list[str] = []
    consumables: list[str] = []
    anaesthesia: Anaesthesia | None = None
    duration_min: float | None = Field(default=None, gt=0, le=1440)
    cost_cny: float | None = Field(default=None, ge=0)
    drg_group: str | None = None
    sex: Sex | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    age_years: int | None = Field(default=None, ge=0, le=120)
    asa_class: int | None = Field(default=None, ge=1, le=6)
    child_pugh: ChildPugh | None = None
    emergency: bool = False
    outcome: OutcomeIn = Field(default_factory=OutcomeIn)
    adverse_events: list[AdverseEventIn] = []
    plan_uid: str | None = None
    verify_uid: str | None = None
    dose_uid: str | None = None
    dose_alert: bool | None = None
    seed_dosimetry: list[SeedDosimetryIn] = Field(default_factory=list, description="seed implants: plan / post-implant D90, V100")
    links: dict[str, Any] | None = None
    sop_check: SOPCheck | None = Field(default=None, description="pre-procedure check of the patient's values (openir.sop)")
    sop_override_reason: str | None = Field(default=None, max_length=2000,
                                            description="why the procedure went ahead despite block-level SOP deviations")

    @field_validator("diagnosis_code")
    @classmethod
    def _icd10(cls, v: str | None) -> str | None:
        from .codes import is_code

        if v is None:
            return v
        if not is_code(v):
            raise ValueError(f"{v!r} is not an ICD-10 code (letter, two digits, optional .subcode, e.g. C22.0)")
        return v.strip().upper()

    def resolved_code(self) -> str | None:
        """The ICD-10 code to store: ``diagnosis_code``, else the code of ``disease`` when recognised."""
        from .codes import resolve_diagnosis

        if self.diagnosis_code:
            return self.diagnosis_code
        res = resolve_diagnosis(self.disease)
        return res.code if res else None

    @field_validator("date")
    @classmethod
    def _not_future(cls, v: dt.date) -> dt.date:
        if v > dt.date.today() + dt.timedelta(days=1):
            raise ValueError("procedure date lies in the future")
        return v


class RecordResult(BaseModel):
    """What ``record_procedure`` did: the stored id and the rule flags raised."""

    procedure_id: int
    uid: str
    flags: list[dict[str, str]]
    grades: list[dict[str, Any]]
