"""Plausibility of a parsed dose report: negative or absurd values are refused with the reason.

A corrupt or mis-scaled report (a negative KAP, a KAP in the wrong unit) must not reach the totals,
the alerts or the reference levels; the store quarantines it with the messages returned here.
Limits live in ``data/plausibility.yaml`` with their (non-clinical) justification.

>>> from openir.dose.models import DoseReport
>>> r = DoseReport(kind="projection", template="10001", sop_instance_uid="1.2", sop_class_uid="1.2", kap_total_gy_cm2=-3.0)
>>> problems(r)
['kap_total_gy_cm2 = -3 is negative']
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from openir.core.datafiles import load_packaged, load_yaml_model

from .models import DoseReport


class Limit(BaseModel):
    max: float = Field(gt=0)
    unit: str
    source: str = Field(min_length=3)


class PlausibilityRules(BaseModel):
    version: int = 1
    negative_allowed: bool = False
    negative_source: str = ""
    limits: dict[str, Limit]


def load_rules(path: str | Path | None = None) -> PlausibilityRules:
    """The packaged limits, or a site's own file."""
    if path:
        return load_yaml_model(PlausibilityRules, path)
    return load_packaged(PlausibilityRules, "openir.dose", "data/plausibility.yaml")


# values that cannot be negative (angles and table positions can, and are not listed)
_REPORT = ("kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_time_s", "acquisition_time_s", "dlp_total_mgy_cm")
_PLANE = ("kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_kap_gy_cm2", "fluoro_dose_rp_gy", "acquisition_kap_gy_cm2",
          "acquisition_dose_rp_gy", "fluoro_time_s", "acquisition_time_s", "radiographic_frames")
_EVENT = ("kap_gy_cm2", "dose_rp_gy", "kvp_kv", "tube_current_ma", "pulse_rate_per_s", "pulse_width_ms",
          "number_of_pulses", "irradiation_duration_s", "field_area_cm2", "source_isocenter_mm", "source_detector_mm")
_CT = ("ctdivol_mgy", "dlp_mgy_cm", "scan_length_mm", "exposure_time_s", "kvp_kv", "tube_current_ma")
# per-event fields checked against a report-level limit of the same quantity
_EVENT_LIMIT = {"kap_gy_cm2": "kap_total_gy_cm2", "dose_rp_gy": "dose_rp_total_gy", "kvp_kv": "kvp_kv"}
_CT_LIMIT = {"ctdivol_mgy": "ctdivol_mgy", "dlp_mgy_cm": "dlp_total_mgy_cm", "kvp_kv": "kvp_kv"}


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def problems(report: DoseReport, rules: PlausibilityRules | None = None) -> list[str]:
    """Every implausible value of ``report`` as 'field = value is ...'; empty when it is plausible."""
    rules = rules or load_rules()
    out: list[str] = []

    def check(where: str, obj: object, fields: tuple[str, ...], limits: dict[str, str]) -> None:
        for f in fields:
            v = getattr(obj, f, None)
            if v is None:
                continue
            name = f"{where}{f}"
            if v < 0 and not rules.negative_allowed:
                out.append(f"{name} = {_fmt(v)} is negative")
            lim = rules.limits.get(limits.get(f, ""))
            if lim is not None and v > lim.max:
                out.append(f"{name} = {_fmt(v)} exceeds the plausibility limit {_fmt(lim.max)} {lim.unit}")

    check("", report, _REPORT, {f: f for f in _REPORT})
    for p in report.planes:
        check(f"plane {p.plane} ", p, _PLANE, {"kap_total_gy_cm2": "kap_total_gy_cm2",
                                                "dose_rp_total_gy": "dose_rp_total_gy", "fluoro_time_s": "fluoro_time_s"})
    for i, e in enumerate(report.events):
        check(f"event {i + 1} ", e, _EVENT, _EVENT_LIMIT)
    for i, a in enumerate(report.ct_acquisitions):
        check(f"CT acquisition {i + 1} ", a, _CT, _CT_LIMIT)
    return out
