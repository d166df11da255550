"""Substantial-dose alerts: per procedure and summed per patient over a time window.

Thresholds live in ``data/alert_thresholds.yaml`` with their sources (NCRP 168 / SIR SRDLs) and
can be replaced by a site's own file. Notification hooks are plain callables that receive each
new :class:`DoseAlert`; a failing hook is reported but never loses the alert, which is stored first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from openir.core.datafiles import load_packaged, load_yaml_model
from openir.core.errors import DataFileError

from .models import DoseAlert, DoseReport

DEFAULT_THRESHOLDS = Path(__file__).parent / "data" / "alert_thresholds.yaml"
METRICS = {
    "dose_rp_gy": ("Gy", "reference-point air kerma"),
    "kap_gy_cm2": ("Gy·cm²", "kerma-area product"),
    "fluoro_time_s": ("s", "fluoroscopy time"),
    "peak_skin_dose_gy": ("Gy", "peak skin dose"),
}
AlertHook = Callable[[DoseAlert], None]


class Threshold(BaseModel):
    value: float = Field(gt=0)
    unit: str
    description: str = ""
    source: str = Field(min_length=3)


class Window(BaseModel):
    days: float = Field(gt=0)
    source: str = Field(min_length=3)


class FollowUp(BaseModel):
    text: str = Field(min_length=10)
    source: str = Field(min_length=3)


class AlertThresholds(BaseModel):
    version: int = 1
    thresholds: dict[str, Threshold]
    patient_window: Window
    follow_up: FollowUp


def load_thresholds(path: str | Path | None = None) -> AlertThresholds:
    """Read and validate a thresholds YAML (the packaged SRDL file by default)."""
    p = Path(path) if path else DEFAULT_THRESHOLDS
    th = load_yaml_model(AlertThresholds, p) if path else load_packaged(AlertThresholds, "openir.dose", "data/alert_thresholds.yaml")
    for name, t in th.thresholds.items():
        if name not in METRICS:
            raise DataFileError(f"{p} [thresholds.{name}]: unknown metric; known: {', '.join(METRICS)}")
        if t.unit != METRICS[name][0]:
            raise DataFileError(f"{p} [thresholds.{name}.unit]: must be {METRICS[name][0]}, got {t.unit}")
    return th


def _metrics(report: DoseReport, peak_skin_dose_gy: float | None) -> dict[str, float]:
    out = {}
    for k in ("dose_rp_gy", "kap_gy_cm2", "fluoro_time_s"):
        v = {"dose_rp_gy": report.dose_rp_total_gy, "kap_gy_cm2": report.kap_total_gy_cm2,
             "fluoro_time_s": report.fluoro_time_s}[k]
        if v is not None:
            out[k] = float(v)
    if peak_skin_dose_gy is not None:
        out["peak_skin_dose_gy"] = float(peak_skin_dose_gy)
    return out


def _alert(scope: str, metric: str, value: float, th: AlertThresholds, **kw) -> DoseAlert:
    t = th.thresholds[metric]
    unit, label = METRICS[metric]
    where = "this procedure" if scope == "procedure" else f"the last {kw.get('window_days'):g} days"
    shown = f"{value / 60:.1f} min" if metric == "fluoro_time_s" else f"{value:.3g} {unit}"
    limit = f"{t.value / 60:.0f} min" if metric == "fluoro_time_s" else f"{t.value:g} {unit}"
    return DoseAlert(
        scope=scope, metric=metric, value=value, threshold=t.value, unit=unit,
        message=f"{label} {shown} over {where} exceeds the substantial radiation dose level {limit}",
        follow_up=th.follow_up.text, source=f"{t.source}; follow-up: {th.follow_up.source}", **kw,
    )


def procedure_alerts(report: DoseReport, thresholds: AlertThresholds | None = None,
                     peak_skin_dose_gy: float | None = None) -> list[DoseAlert]:
    """Alerts for one procedure whose metrics reach a threshold (>=)."""
    th = thresholds or load_thresholds()
    out = []
    for metric, value in _metrics(report, peak_skin_dose_gy).items():
        if metric in th.thresholds and value >= th.thresholds[metric].value:
            out.append(_alert("procedure", metric, value, th, patient_id=report.patient_id,
                              sop_instance_uid=report.sop_instance_uid, reports=[report.sop_instance_uid]))
    return out


def patient_alerts(reports: Iterable[tuple[DoseReport, float | None]], at: datetime | None = None,
                   thresholds: AlertThresholds | None = None, window_days: float | None = None) -> list[DoseAlert]:
    """Alerts for one patient's procedures summed over ``window_days`` ending at ``at``.

    ``reports`` are (report, peak skin dose or None) pairs of the *current* (not superseded)
    reports, so that a cumulative report and its partial predecessor are never both counted.
    Peak skin doses are summed too, which overestimates when fields do not overlap (conservative).
    """
    th = thresholds or load_thresholds()
    days = window_days if window_days is not None else th.patient_window.days
    items = list(reports)
    if not items:
        return []
    when = [r.content_datetime or r.study_datetime for r, _ in items]
    end = at or max((w for w in when if w is not None), default=None)
    chosen = [(r, p) for (r, p), w in zip(items, when, strict=True)
              if end is None or w is None or end - timedelta(days=days) <= w <= end]
    if len(chosen) < 2:
        return []  # a single procedure is covered by procedure_alerts
    sums: dict[str, float] = {}
    for r, p in chosen:
        for k, v in _metrics(r, p).items():
            sums[k] = sums.get(k, 0.0) + v
    uids = [r.sop_instance_uid for r, _ in chosen]
    return [
        _alert("patient", m, v, th, patient_id=chosen[0][0].patient_id, window_days=days, reports=uids)
        for m, v in sums.items() if m in th.thresholds and v >= th.thresholds[m].value
    ]


def jsonl_hook(path: str | Path) -> AlertHook:
    """A notification hook that appends each alert as one JSON line (for a mail/pager bridge)."""
    p = Path(path)

    def hook(alert: DoseAlert) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(alert.model_dump(mode="json")) + "\n")

    return hook
