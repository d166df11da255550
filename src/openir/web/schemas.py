"""JSON shapes of the API (what the pages show is served here too)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(_In):
    """Credentials for ``POST /api/login``."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenIn(_In):
    """A name for a new API token (to tell tokens apart)."""

    name: str = Field(min_length=1, max_length=100)


class TokenOut(BaseModel):
    """The new API token, shown once."""

    token: str
    name: str


class UserIn(_In):
    """A new account (administrators only)."""

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Literal["operator", "quality_officer", "centre", "admin"]
    hospital_code: str | None = Field(default=None, max_length=32)
    operator_code: str | None = Field(default=None, max_length=32)
    lang: Literal["en", "zh-CN"] = "en"


class Me(BaseModel):
    """The caller's identity and the CSRF token to send with writes."""

    username: str
    role: str
    hospital_code: str | None
    operator_code: str | None
    lang: str
    csrf_token: str | None = None


class LangIn(_In):
    """The interface language to switch to."""

    lang: Literal["en", "zh-CN"]


class CheckIn(_In):
    """A draft procedure for the live rule check (any field may still be missing)."""

    technique: str = Field(max_length=48)
    operator_code: str | None = Field(default=None, max_length=32)
    disease: str | None = Field(default=None, max_length=120)
    child_pugh: Literal["A", "B", "C"] | None = None
    asa_class: int | None = Field(default=None, ge=1, le=6)
    age_years: int | None = Field(default=None, ge=0, le=120)
    max_lesion_mm: float | None = Field(default=None, gt=0, le=300)
    n_lesions: int | None = Field(default=None, ge=0, le=100)
    emergency: bool = False


class CheckOut(BaseModel):
    """Result of the live check: rule flags, validation errors, and the tier facts behind them."""

    ok: bool
    tier: str | None
    flags: list[dict[str, str]]
    errors: dict[str, str]
    credential: str | None
    hospital_level: str | None


class ProcedureOut(BaseModel):
    """A procedure's list row; ``deidentified`` rows carry pseudonyms instead of keys."""

    id: int
    uid: str | None
    patient_key: str | None
    birth_year: int | None = None
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
    flags: list[dict[str, str]]
    plan_uid: str | None = None
    verify_uid: str | None = None
    dose_uid: str | None = None
    dose_alert: bool | None = None
    deidentified: bool = False


class ProcedurePage(BaseModel):
    """One page of procedures and the total the caller may see."""

    total: int
    items: list[ProcedureOut]


class RecordOut(BaseModel):
    """What recording did: new id, rule flags and derived adverse-event grades."""

    procedure_id: int
    uid: str
    flags: list[dict[str, str]]
    grades: list[dict[str, Any]]


class CaseOut(BaseModel):
    """The case view: the procedure and every stage result linked to it."""

    procedure: ProcedureOut
    outcome: dict[str, Any] | None
    adverse_events: list[dict[str, Any]]
    plan: dict[str, Any] | None = Field(description="plan summary (optional JSON from the plan stage)")
    verification: dict[str, Any] | None
    thermometry: list[dict[str, Any]]
    dose: list[dict[str, Any]]
    follow_up: dict[str, Any] | None
    has_images: bool
    volume: dict[str, Any] | None


class DoseAlertOut(BaseModel):
    """A dose alert as the dashboard lists it, with its acknowledgement."""

    id: int
    hospital_code: str | None
    patient_id: str | None
    scope: str
    metric: str
    value: float
    threshold: float
    unit: str = ""
    created_at: dt.datetime
    message: str
    acknowledged: bool
    acknowledged_by: str | None = None


class AckIn(_In):
    """An optional note with an acknowledgement."""

    note: str | None = Field(default=None, max_length=1000)


class CumulativeOut(BaseModel):
    """A patient's summed dose over current reports, with the reports summed."""

    patient_id: str
    reports: int
    kap_total_gy_cm2: float
    dose_rp_total_gy: float
    fluoro_time_s: float
    dlp_total_mgy_cm: float
    items: list[dict[str, Any]]


class DrlOut(BaseModel):
    """Reference levels and the room comparison against them."""

    levels: list[dict[str, Any]]
    rooms: list[dict[str, Any]]


class IndicatorRow(BaseModel):
    """One indicator for one unit (hospital, operator or region) with its exact CI and status."""

    indicator: str
    title: str
    level_by: str
    unit: str
    n: int
    x: int
    rate: float
    ci_low: float
    ci_high: float
    adjusted_rate: float
    benchmark: float
    status: str


class RatingOut(BaseModel):
    """A hospital's grade with reasons."""

    hospital: str
    level: str
    region: str
    grade: str
    reasons: list[str]


class CurveOut(BaseModel):
    """An operator's CUSUM learning curve for one technique."""

    operator: str
    technique: str
    n: int
    failures: int
    h: float
    signal_at: int | None
    path: list[float]


class ConsultIn(_In):
    """A consultation request: which case, which hospital, what question."""

    procedure_id: int = Field(ge=1)
    to_hospital: str = Field(min_length=1, max_length=32)
    question: str = Field(min_length=1, max_length=4000)


class CommentIn(_In):
    """A consultation message, optionally with a proposed plan."""

    body: str = Field(min_length=1, max_length=4000)
    plan: dict[str, Any] | None = Field(default=None, description="a proposed plan (optional plan JSON)")


class TransitionIn(_In):
    """The state a consultation should move to."""

    state: Literal["accepted", "declined", "answered", "closed"]


class ConsultOut(BaseModel):
    """A consultation as one side sees it, with the moves that side may make."""

    id: int
    procedure_id: int
    from_hospital: str
    to_hospital: str
    question: str
    state: str
    created_at: dt.datetime
    updated_at: dt.datetime
    case: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = []
    allowed: list[str] = []


class NotificationOut(BaseModel):
    """A notification for the caller's hospital."""

    id: int
    text: str
    link: str | None
    read: bool
    at: dt.datetime
