"""Hospital ratings A / B / C from transparent gates (rules in ``data/ratings.yaml``).

Gates: structure (required equipment for the hospital's level), volume (procedures per year),
outcomes (funnel-plot alarms and alerts on the outcome indicators) and data quality
(completeness). A hospital gets the first grade whose requirements all hold; the reasons list
every requirement that kept it from a better grade, so a grade can always be explained.
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, extract, func, select

from .catalogue import load_yaml
from .enums import Grade
from .models import Equipment, Hospital, Procedure, Room


class Require(BaseModel):
    model_config = ConfigDict(extra="forbid")
    structure: bool = False
    volume: bool = False
    max_alarms: int | None = None
    max_alerts: int | None = None
    min_completeness: float | None = None


class GradeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grade: Grade
    require: Require


class RatingRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    required_equipment: dict[str, list[str]]
    min_yearly_procedures: dict[str, int]
    outcome_indicators: list[str]
    completeness_indicator: str
    grades: list[GradeRule]


class HospitalRating(BaseModel):
    hospital: str
    level: str
    region: str
    grade: str
    reasons: list[str]
    missing_equipment: list[str]
    yearly_volume: float
    alarms: list[str]
    alerts: list[str]
    completeness: float | None


def load_rules(path: str | None = None) -> RatingRules:
    """Rating rules: the packaged ``ratings.yaml`` (read once) unless ``path``."""
    return load_yaml(path or "ratings.yaml", RatingRules)


def rate_hospitals(engine: Engine, indicators: pd.DataFrame, rules: RatingRules | None = None) -> list[HospitalRating]:
    """Rate every hospital from its equipment, volume and the hospital-level indicator table."""
    rules = rules or load_rules()
    with engine.connect() as conn:
        hosp = conn.execute(select(Hospital.id, Hospital.code, Hospital.level, Hospital.region).order_by(Hospital.code)).all()
        kit: dict[int, set[str]] = {}
        for hid, kind in conn.execute(select(Room.hospital_id, Equipment.kind).join(Equipment, Equipment.room_id == Room.id)):
            kit.setdefault(hid, set()).add(kind)
        per_year = conn.execute(select(Procedure.hospital_id, extract("year", Procedure.date), func.count())
                                .group_by(Procedure.hospital_id, extract("year", Procedure.date))).all()
    vol: dict[int, list[int]] = {}
    for hid, _, cnt in per_year:
        vol.setdefault(hid, []).append(int(cnt))
    ind = indicators[indicators["level_by"] == "hospital"]
    out = []
    for hid, code, level, region in hosp:
        missing = [k for k in rules.required_equipment.get(level, []) if k not in kit.get(hid, set())]
        years = vol.get(hid, [])
        yearly = sum(years) / len(years) if years else 0.0
        mine = ind[(ind["unit"] == code) & ind["indicator"].isin(rules.outcome_indicators)]
        alarms = mine.loc[mine["status"] == "alarm", "indicator"].tolist()
        alerts = mine.loc[mine["status"] == "alert", "indicator"].tolist()
        comp = ind[(ind["unit"] == code) & (ind["indicator"] == rules.completeness_indicator)]["rate"]
        completeness = float(comp.iloc[0]) if len(comp) else None
        min_vol = rules.min_yearly_procedures.get(level, 0)
        checks = {
            "structure": (not missing, f"missing equipment for a {level} hospital: {', '.join(missing)}"),
            "volume": (yearly >= min_vol, f"{yearly:.0f} procedures/year < {min_vol} required for a {level} hospital"),
        }
        grade, reasons = "C", []
        for rule in rules.grades:
            r = rule.require
            failed = []
            if r.structure and not checks["structure"][0]:
                failed.append(checks["structure"][1])
            if r.volume and not checks["volume"][0]:
                failed.append(checks["volume"][1])
            if r.max_alarms is not None and len(alarms) > r.max_alarms:
                failed.append(f"funnel alarm (beyond 99.8% limit) on {', '.join(alarms)}")
            if r.max_alerts is not None and len(alerts) > r.max_alerts:
                failed.append(f"{len(alerts)} funnel alerts (beyond 95%) > {r.max_alerts}: {', '.join(alerts)}")
            if r.min_completeness is not None and (completeness is None or completeness < r.min_completeness):
                shown = "unknown" if completeness is None else f"{completeness:.1%}"
                failed.append(f"data completeness {shown} < {r.min_completeness:.0%}")
            if not failed:
                grade = rule.grade
                break
            reasons.extend(f"not {rule.grade}: {f}" for f in failed)
        if not reasons:
            reasons = ["meets every requirement of grade A"]
        out.append(HospitalRating(hospital=code, level=level, region=region, grade=grade, reasons=reasons,
                                  missing_equipment=missing, yearly_volume=round(yearly, 1), alarms=alarms,
                                  alerts=alerts, completeness=completeness))
    return out
