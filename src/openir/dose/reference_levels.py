"""Diagnostic reference levels (DRL) by the method of ICRP Publication 135 (2017).

For each procedure type: take the median of the dose metric in each group (facility for a
national DRL; room within a facility for a local DRL); the DRL is the 75th percentile of those
medians and the typical value their median (50th percentile). Rooms and operators are then
compared by their own median against the DRL of their procedure type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from openir.core.errors import InputError

from .models import ReferenceComparison, ReferenceLevel

METRIC_UNITS = {"kap_total_gy_cm2": "Gy·cm²", "dose_rp_total_gy": "Gy", "fluoro_time_s": "s",
                "dlp_total_mgy_cm": "mGy·cm"}


def _check(df: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"dose table lacks column(s) {', '.join(missing)}", field=",".join(missing))


def reference_levels(df: pd.DataFrame, metric: str = "kap_total_gy_cm2", *, group: str = "facility",
                     level: str = "national", min_per_group: int = 1) -> list[ReferenceLevel]:
    """DRL (P75 of group medians) and typical value (P50 of group medians) per procedure type.

    ``group`` is the column whose medians form the distribution (facility: national DRL; room:
    local DRL). Groups with fewer than ``min_per_group`` procedures are left out (ICRP 135 asks
    for enough patients per facility, commonly 10 to 20 for fluoroscopy).
    """
    _check(df, ["procedure", group, metric])
    data = df.dropna(subset=["procedure", group, metric])
    out = []
    for proc, d in data.groupby("procedure", sort=True):
        counts = d.groupby(group)[metric].count()
        keep = counts[counts >= min_per_group].index
        medians = d[d[group].isin(keep)].groupby(group)[metric].median()
        if medians.empty:
            continue
        out.append(ReferenceLevel(
            procedure=str(proc), metric=metric, unit=METRIC_UNITS.get(metric, ""), level=level,
            drl=float(np.percentile(medians.to_numpy(), 75)), typical_value=float(np.median(medians.to_numpy())),
            n_groups=int(len(medians)), n_procedures=int(counts[keep].sum()),
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
    data = df.dropna(subset=["procedure", by, metric])
    for (proc, name), d in data.groupby(["procedure", by], sort=True):
        ref = lv.get(str(proc))
        if ref is None:
            continue
        med = float(d[metric].median())
        out.append(ReferenceComparison(
            procedure=str(proc), metric=metric, by=by, name=str(name), median=med, n_procedures=int(len(d)),
            drl=ref.drl, typical_value=ref.typical_value, ratio_to_drl=med / ref.drl if ref.drl else float("inf"),
            above_drl=med > ref.drl,
        ))
    return out
