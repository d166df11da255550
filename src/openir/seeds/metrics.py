"""Plan quality of a seed implant: DVH, D90/D100, V100/V150/V200, conformity, homogeneity, organ doses.

Definitions (dose in Gy, volumes from voxel counts):
  D90  = minimum dose received by the hottest 90 % of the target (10th percentile of its voxels);
  D100 = minimum target dose; Vn = % of the target receiving >= n % of the prescription;
  CI   = Paddick conformity (TV_Rx)^2 / (TV x V_Rx); EI = external index (V_Rx - TV_Rx) / TV;
  HI   = homogeneity index (V100 - V150) / V100 (dose non-uniformity ratio complement, as reported
         in the seed literature, e.g. the paraspinal series of seed-implantation-sources.md).
Organ DxCC = minimum dose of the hottest x cm^3 (None when the organ in the dose box is smaller).

>>> import numpy as np
>>> dose = np.array([[[50.0, 100.0, 150.0, 200.0]]]); target = np.array([[[False, True, True, True]]])
>>> m = dose_metrics(dose, target, 1000.0, 100.0)
>>> m.v100_pct, round(m.v200_pct, 1), m.d100_gy, round(m.ci, 2)
(100.0, 33.3, 100.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .models import DoseMetrics, DvhCurve, OrganDose


@dataclass(frozen=True)
class OrganMask:
    """An organ at risk on the dose grid with its limit (metric name, Gy, source)."""

    name: str
    mask: np.ndarray
    metric: str | None = None
    limit_gy: float | None = None
    source: str | None = None


def d_percent(values: np.ndarray, pct: float) -> float:
    """Minimum dose to the hottest ``pct`` % of ``values`` (D90 -> pct=90)."""
    if values.size == 0:
        return float("nan")
    return float(np.percentile(values, 100.0 - pct, method="lower"))


def d_cc(values: np.ndarray, cc: float, voxel_cc: float) -> float | None:
    """Minimum dose to the hottest ``cc`` cm^3 (DxCC); None when the organ is smaller than that."""
    k = max(1, int(math.ceil(cc / voxel_cc - 1e-9)))
    if values.size < k:
        return None
    return float(np.partition(values, values.size - k)[values.size - k])


def organ_metric(values: np.ndarray, metric: str, voxel_cc: float) -> float:
    """The value of ``metric`` (dmax, dmean, d0_1cc, d1cc, d2cc) for an organ's voxel doses.

    An organ smaller than the DxCC volume is judged by its maximum (the safe side).
    """
    if values.size == 0:
        return 0.0
    if metric == "dmax":
        return float(values.max())
    if metric == "dmean":
        return float(values.mean())
    cc = {"d0_1cc": 0.1, "d1cc": 1.0, "d2cc": 2.0}[metric]
    v = d_cc(values, cc, voxel_cc)
    return float(values.max()) if v is None else v


def organ_dose(dose: np.ndarray, organ: OrganMask, voxel_mm3: float) -> OrganDose:
    vals = dose[organ.mask]
    vcc = voxel_mm3 / 1000.0
    within = None
    if organ.metric and organ.limit_gy is not None:
        within = bool(organ_metric(vals, organ.metric, vcc) <= organ.limit_gy + 1e-9)
    return OrganDose(
        name=organ.name, volume_ml=float(vals.size * vcc),
        d_max_gy=float(vals.max()) if vals.size else 0.0,
        d_mean_gy=float(vals.mean()) if vals.size else 0.0,
        d2cc_gy=d_cc(vals, 2.0, vcc), d1cc_gy=d_cc(vals, 1.0, vcc), d0_1cc_gy=d_cc(vals, 0.1, vcc),
        limit_metric=organ.metric, limit_gy=organ.limit_gy, limit_source=organ.source, within_limit=within)


def dose_metrics(dose_gy: np.ndarray, target: np.ndarray, voxel_mm3: float, prescription_gy: float,
                 organs: Sequence[OrganMask] = ()) -> DoseMetrics:
    """All plan indices of a total-dose array against a target mask (same grid)."""
    t = dose_gy[target]
    if t.size == 0:
        raise ValueError("the target is empty on the dose grid")
    rx = float(prescription_gy)
    tv = t.size
    tv_rx = int(np.count_nonzero(t >= rx))
    v_rx = int(np.count_nonzero(dose_gy >= rx))
    v100 = 100.0 * tv_rx / tv
    v150 = 100.0 * np.count_nonzero(t >= 1.5 * rx) / tv
    v200 = 100.0 * np.count_nonzero(t >= 2.0 * rx) / tv
    return DoseMetrics(
        prescription_gy=rx, target_volume_ml=tv * voxel_mm3 / 1000.0,
        d90_gy=d_percent(t, 90.0), d100_gy=float(t.min()),
        v100_pct=v100, v150_pct=v150, v200_pct=v200,
        ci=(tv_rx * tv_rx) / (tv * v_rx) if v_rx else 0.0,
        ei=(v_rx - tv_rx) / tv,
        hi=(v100 - v150) / v100 if v100 > 0 else 0.0,
        organs=[organ_dose(dose_gy, o, voxel_mm3) for o in organs])


def dvh(dose_gy: np.ndarray, mask: np.ndarray, name: str, max_gy: float, bins: int = 200) -> DvhCurve:
    """Cumulative DVH of ``mask`` from 0 to ``max_gy`` (percent of the structure at >= each dose)."""
    vals = np.sort(dose_gy[mask])
    edges = np.linspace(0.0, max_gy, bins + 1)
    n = vals.size
    pct = 100.0 * (n - np.searchsorted(vals, edges, side="left")) / max(n, 1)
    return DvhCurve(name=name, dose_gy=[round(float(e), 3) for e in edges],
                    volume_pct=[round(float(p), 3) for p in pct])
