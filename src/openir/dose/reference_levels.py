"""Diagnostic reference levels (DRL) by the method of ICRP Publication 135 (2017).

For each procedure type: take the median of the dose metric in each group (facility for a
national DRL; room within a facility for a local DRL); the DRL is the 75th percentile of those
medians and the typical value their median (50th percentile). Rooms and operators are then
compared by their own median against the DRL of their procedure type. QA and phantom studies are
left out, and each group needs a minimum sample (``data/reference_levels.yaml``). CT levels use
CTDIvol and DLP (ICRP 135), fluoroscopy levels KAP, Ka,r and fluoroscopy time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from openir.core.datafiles import load_packaged
from openir.core.errors import InputError

from .models import DoseReport, ReferenceComparison, ReferenceLevel

METRIC_UNITS = {"kap_total_gy_cm2": "Gy·cm²", "dose_rp_total_gy": "Gy", "fluoro_time_s": "s",
                "dlp_total_mgy_cm": "mGy·cm", "ctdivol_mgy": "mGy"}
PROJECTION_METRICS = ("kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_time_s")
CT_METRICS = ("ctdivol_mgy", "dlp_total_mgy_cm")
LOCALIZER_TYPES = {"constant angle acquisition"}  # CT Acquisition Type of a localizer (scout) radiograph


def study_ctdivol(report: DoseReport) -> float | None:
    """A CT study's CTDIvol: the mean over its acquisitions that are not localizers.

    Rule: ICRP 135 sets CT DRLs on CTDIvol (per sequence) and DLP (per examination); one value per
    examination is needed to compare examinations, and the localizer's tiny CTDIvol would pull a
    plain mean down, so it is left out.
    """
    vals = [a.ctdivol_mgy for a in report.ct_acquisitions
            if a.ctdivol_mgy is not None and (a.acquisition_type or "").lower() not in LOCALIZER_TYPES]
    return float(sum(vals) / len(vals)) if vals else None


def procedure_name(report: DoseReport) -> str | None:
    """The procedure's name: the study's description, else its most frequent acquisition protocol."""
    if report.procedure and report.procedure.strip():
        return report.procedure.strip()
    protocols = [p.strip() for p in [e.protocol for e in report.events] + [a.protocol for a in report.ct_acquisitions]
                 if p and p.strip()]
    if not protocols:
        return None
    return max(dict.fromkeys(protocols), key=protocols.count)


def _check(df: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"dose table lacks column(s) {', '.join(missing)}", field=",".join(missing))


class MinimumSample(BaseModel):
    value: int = Field(ge=1)
    source: str = Field(min_length=3)


class ReferenceLevelRules(BaseModel):
    version: int = 1
    min_procedures_per_group: MinimumSample
    rule: str = ""


def load_level_rules() -> ReferenceLevelRules:
    """The packaged minimum sample per group (``data/reference_levels.yaml``)."""
    return load_packaged(ReferenceLevelRules, "openir.dose", "data/reference_levels.yaml")


def patient_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are patients: QA/phantom studies (a ``qa_reason``) are left out (ICRP 135)."""
    if "qa_reason" in df.columns:
        return df[df["qa_reason"].isna()]
    return df


def reference_levels(df: pd.DataFrame, metric: str = "kap_total_gy_cm2", *, group: str = "facility",
                     level: str = "national", min_per_group: int | None = None) -> list[ReferenceLevel]:
    """DRL (P75 of group medians) and typical value (P50 of group medians) per procedure type.

    ``group`` is the column whose medians form the distribution (facility: national DRL; room:
    local DRL). QA/phantom rows (``qa_reason`` set) are left out. Groups with fewer than
    ``min_per_group`` procedures (default: ``data/reference_levels.yaml``, after ICRP 135) are
    left out; when none has enough, the level is computed from all groups and marked
    ``provisional`` with a warning, so that a small service still sees a figure but knows its worth.
    """
    _check(df, ["procedure", group, metric])
    minimum = int(min_per_group if min_per_group is not None else load_level_rules().min_procedures_per_group.value)
    data = patient_rows(df).dropna(subset=["procedure", group, metric])
    out = []
    for proc, d in data.groupby("procedure", sort=True):
        counts = d.groupby(group)[metric].count()
        keep = counts[counts >= minimum].index
        provisional = len(keep) == 0
        if provisional:
            keep = counts.index
        medians = d[d[group].isin(keep)].groupby(group)[metric].median()
        if medians.empty:
            continue
        warning = None
        if provisional:
            warning = (f"provisional: no {group} has the minimum of {minimum} procedures of this type "
                       f"(largest: {int(counts.max())}); ICRP 135 asks for a sample of patients per {group}")
        elif len(keep) < len(counts):
            warning = f"{len(counts) - len(keep)} {group}(s) with fewer than {minimum} procedures left out"
        out.append(ReferenceLevel(
            procedure=str(proc), metric=metric, unit=METRIC_UNITS.get(metric, ""), level=level,
            drl=float(np.percentile(medians.to_numpy(), 75)), typical_value=float(np.median(medians.to_numpy())),
            n_groups=int(len(medians)), n_procedures=int(counts[keep].sum()), min_per_group=minimum,
            groups_left_out=int(len(counts) - len(keep)), provisional=provisional, warning=warning,
        ))
    return out


def compare(df: pd.DataFrame, levels: list[ReferenceLevel], *, by: str = "room") -> list[ReferenceComparison]:
    """Each room (or operator, facility) median per procedure type against that type's DRL."""
    if not levels:
        return []
    metric = levels[0].metric
    _check(df, ["procedure", by, metric])
    lv = {lvl.procedure: lvl for lvl in levels}
    out = []
    data = patient_rows(df).dropna(subset=["procedure", by, metric])
    for (proc, name), d in data.groupby(["procedure", by], sort=True):
        ref = lv.get(str(proc))
        if ref is None:
            continue
        med = float(d[metric].median())
        out.append(ReferenceComparison(
            procedure=str(proc), metric=metric, by=by, name=str(name), median=med, n_procedures=int(len(d)),
            drl=ref.drl, typical_value=ref.typical_value, ratio_to_drl=med / ref.drl if ref.drl else float("inf"),
            above_drl=med > ref.drl, provisional=ref.provisional,
        ))
    return out
