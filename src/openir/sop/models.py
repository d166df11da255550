"""Schemas of the SOP stage: the SOP as data, a patient's pre-procedure values, and the check result.

The registry imports this module only (to store checks and deviations), never the checking code, so
these models carry everything a stored check needs: each deviation names its item, the value, the
threshold, the severity and the published source, in Chinese and English.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .units import normalise_lab

Severity = Literal["block", "warn"]
Lang = Literal["en", "zh-CN"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Data):
    """One SOP item (a step, a consent item, an observation) in both languages with its source."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)
    source: str = Field(min_length=3)


class CodedItem(Item):
    """An indication or contraindication: an ICD-10 code (stem) or a field condition."""

    code: str | None = None
    field: str | None = None
    eq: str | None = None

    @model_validator(mode="after")
    def _coded(self) -> CodedItem:
        if (self.code is None) == (self.field is None):
            raise ValueError("give either `code` (ICD-10) or `field` with `eq`")
        if self.field is not None and self.eq is None:
            raise ValueError("a field condition needs `eq`")
        return self


class Complication(Item):
    grading: str = Field(min_length=3)


class Sourced(_Data):
    source: str = Field(min_length=3)


class BleedingRisk(Sourced):
    class_: Literal["low", "high"] = Field(alias="class")


class ArterialAccess(Sourced):
    required: bool


class Contrast(Sourced):
    agent: Literal["iodinated", "optional", "none"]


class Radiation(Sourced):
    uses: bool


class SOP(_Data):
    """One technique's standard operating procedure (``sop/data/<technique>.yaml``)."""

    technique: str
    name: dict[Literal["en", "zh"], str]
    version: int = Field(ge=1)
    status: Literal["full", "generic"]
    bleeding_risk: BleedingRisk
    arterial_access: ArterialAccess
    contrast: Contrast
    radiation: Radiation
    indications: list[CodedItem]
    contraindications: list[CodedItem]
    consent: list[Item]
    steps: list[Item]
    observation: list[Item]
    complications: list[Complication]


Condition = dict[str, Any]


class CheckRule(_Data):
    """One pre-procedure check of ``_checks.yaml`` (limits in the unit of ``unit``)."""

    id: str
    item: str
    unit: str
    applies: dict[str, Any] = {}
    block: Condition | None = None
    warn: Condition | None = None
    missing: Severity | None = None
    source: str = Field(min_length=3)
    en: str
    zh: str


class CheckTable(_Data):
    version: int
    checks: list[CheckRule]
    not_checked: dict[str, str] = {}


class Antithrombotic(BaseModel):
    """An anticoagulant or antiplatelet the patient takes, with the time of the last dose."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["anticoagulant", "antiplatelet"]
    last_dose: dt.datetime | None = None


class PatientValues(BaseModel):
    """A patient's pre-procedure values in normalised units (platelets 10^9/L, eGFR mL/min/1.73 m²,
    haemoglobin g/L). Lab values may be given as a number in the normalised unit, as ``"150000 /uL"``
    or as ``{value, unit}``; other units are converted or refused naming the unit. ``None`` means not
    recorded (a deviation wherever a check needs it); an empty list means recorded as none."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)
    inr: float | None = Field(default=None, gt=0, le=20)
    platelets: float | None = Field(default=None, ge=0, le=2000, description="10^9/L")
    egfr: float | None = Field(default=None, ge=0, le=250, description="mL/min/1.73 m2")
    haemoglobin: float | None = Field(default=None, gt=0, le=250, description="g/L")
    sex: Literal["M", "F", "O"] | None = None
    age_years: int | None = Field(default=None, ge=0, le=120)
    pregnancy: Literal["pregnant", "not_pregnant", "not_applicable"] | None = None
    pregnancy_method: str | None = Field(default=None, max_length=64, description="e.g. serum hCG, urine test, history")
    on_dialysis: bool | None = None
    child_pugh: Literal["A", "B", "C"] | None = None
    diagnosis_code: str | None = Field(default=None, max_length=16)
    conditions: list[str] | None = Field(default=None, description="ICD-10 codes of other recorded conditions")
    antithrombotics: list[Antithrombotic] | None = None
    allergies: list[str] | None = None
    access_site: Literal["femoral", "radial", "other"] | None = None
    iodinated_contrast: bool | None = Field(default=None, description="the plan uses iodinated contrast")
    radiation: bool | None = Field(default=None, description="False for a purely ultrasound-guided procedure")
    measured_at: dt.datetime | None = None
    procedure_at: dt.datetime | None = Field(default=None, description="planned start (for anticoagulant withholding)")

    @field_validator("platelets", "egfr", "haemoglobin", "inr", mode="before")
    @classmethod
    def _units(cls, v: Any, info: Any) -> Any:
        return normalise_lab(info.field_name, v)

    @field_validator("diagnosis_code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        return v.strip().upper() if v else v

    @field_validator("conditions")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return [c.strip().upper() for c in v if c.strip()] if v is not None else v

    @field_validator("allergies")
    @classmethod
    def _allergies(cls, v: list[str] | None) -> list[str] | None:
        return [a.strip().lower().replace(" ", "_") for a in v if a.strip()] if v is not None else v

    @classmethod
    def from_flat(cls, row: dict[str, Any]) -> PatientValues:
        """Values from one flat table row (CSV import, the held-out set): empty cells are not
        recorded, lists are ;-separated with ``none`` (or 无) for an empty list, antithrombotics are
        ``name:kind`` or ``name:kind@2026-05-01T08:00``. Columns that are not values are ignored."""
        data: dict[str, Any] = {}
        for k in cls.model_fields:
            v = row.get(k)
            if v is None or (isinstance(v, float) and v != v and k not in LAB_FIELDS) or (isinstance(v, str) and not v.strip()):
                continue  # not recorded (a NaN lab value is passed on and refused by the validator)
            if k in ("conditions", "allergies", "antithrombotics"):
                items = [x.strip() for x in str(v).split(";") if x.strip()]
                items = [] if [x.lower() for x in items] in (["none"], ["无"]) else items
                if k == "antithrombotics":
                    items = [_antithrombotic(x) for x in items]
                data[k] = items
            elif k in ("on_dialysis", "iodinated_contrast", "radiation") and isinstance(v, str):
                data[k] = v.strip().lower() in ("1", "true", "yes", "y", "是")
            else:
                data[k] = v
        return cls.model_validate(data)

    @model_validator(mode="after")
    def _pregnancy(self) -> PatientValues:
        if self.sex == "M" and self.pregnancy == "pregnant":
            raise ValueError("pregnancy: 'pregnant' with sex 'M'")
        times = [t for t in [self.procedure_at, *(a.last_dose for a in self.antithrombotics or [])] if t is not None]
        if len({t.tzinfo is None for t in times}) > 1:
            raise ValueError("procedure_at and last_dose times: give a time zone on all of them or on none")
        return self


class Deviation(BaseModel):
    """One value outside the SOP, or not recorded: what, how far, how bad, and who says so."""

    check: str = Field(description="check id in _checks.yaml")
    item: str
    value: str | float | None
    threshold: str
    severity: Severity
    kind: Literal["threshold", "missing"]
    source: str
    message_en: str
    message_zh: str

    def message(self, lang: str = "en") -> str:
        return self.message_zh if lang.startswith("zh") else self.message_en


class SOPCheck(BaseModel):
    """The check of one patient's values against one technique's SOP."""

    technique: str
    sop_version: int
    values: PatientValues
    deviations: list[Deviation]
    checked_at: dt.datetime

    @property
    def blocked(self) -> bool:
        """Whether a block-level deviation needs a recorded override reason."""
        return any(d.severity == "block" for d in self.deviations)

    @property
    def n_block(self) -> int:
        return sum(d.severity == "block" for d in self.deviations)

    @property
    def n_warn(self) -> int:
        return sum(d.severity == "warn" for d in self.deviations)


LAB_FIELDS = ("inr", "platelets", "egfr", "haemoglobin")


def _antithrombotic(text: str) -> dict[str, Any]:
    """``"rivaroxaban:anticoagulant@2026-05-01T08:00"`` as an Antithrombotic's fields."""
    name, _, rest = text.partition(":")
    kind, _, last = rest.partition("@")
    if not kind:
        raise ValueError(f"antithrombotic {text!r}: write name:kind (kind anticoagulant or antiplatelet), "
                         "optionally @last-dose time")
    return {"name": name.strip(), "kind": kind.strip(), "last_dose": last.strip() or None}
