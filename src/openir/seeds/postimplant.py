"""Post-implant dosimetry: match the seeds found on the CT to the plan, recompute the dose, compare.

Found seeds are paired with planned ones by the Hungarian algorithm on their distances
(`scipy.optimize.linear_sum_assignment`); a pair farther apart than ``match_max_mm`` is no pair (a
seed lost or migrated, and a seed found where none was planned). Each needle's error is the mean
displacement of its matched seeds, split into the part across the needle (where it went) and along
it (how deep). The dose is recomputed with the TG-43 engine from the found seeds, each given the
plan's air-kerma strength, on the CT's grid around the target, and compared with the plan's dose on
the same grid (`metrics.dose_metrics`: D90, D100, V100, V150, V200, CI, EI, HI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field
from scipy.optimize import linear_sum_assignment

from openir.core import Grid, InputError, Volume

from .detect import DetectOptions, SeedDetection, detect_seeds
from .metrics import dose_metrics
from .models import DoseMetrics, Seed
from .tg43 import total_dose_gy


@dataclass(frozen=True)
class VerifyOptions:
    """``model``: seed model of the implant (catalogue name); ``match_max_mm``: farther pairs are no
    pairs; ``dose_margin_mm``: the dose grid covers the target's box grown by this much; ``detect``:
    the detector's options."""

    model: str = "6711"
    match_max_mm: float = 10.0
    dose_margin_mm: float = 15.0
    detect: DetectOptions = field(default_factory=DetectOptions)


class SeedMatch(BaseModel):
    """One planned seed and the found seed paired with it (None when it was not found)."""

    planned_index: int
    found_index: int | None
    needle: int | None
    error_mm: float | None = Field(None, description="distance planned -> found, mm")
    error_lps: tuple[float, float, float] | None = None


class NeedleError(BaseModel):
    """How far a needle's seeds landed from the plan: across the needle and along it (+ = deeper)."""

    needle: int
    seeds_planned: int
    seeds_found: int
    lateral_mm: float | None = Field(None, description="None when none of its seeds was found")
    depth_mm: float | None = None


class PostImplantReport(BaseModel):
    """Post-implant dosimetry of one implant: detection, matching, needle and seed errors, dose vs plan."""

    prescription_gy: float
    model: str
    target_volume_ml: float
    planned_seeds: int
    found_seeds: int
    matched_seeds: int
    missing_planned: list[int] = Field(description="planned seeds with no found seed within match_max_mm")
    extra_found: list[int] = Field(description="found seeds with no planned seed within match_max_mm")
    seed_error_mean_mm: float | None
    seed_error_max_mm: float | None
    needles: list[NeedleError]
    plan: DoseMetrics = Field(description="the planned seeds' dose on the same grid")
    post: DoseMetrics = Field(description="the found seeds' dose")
    delta_d90_gy: float = Field(description="post - plan")
    delta_v100_pct: float = Field(description="post - plan, percentage points")
    matches: list[SeedMatch]
    detection: SeedDetection
    warnings: list[str] = Field(default_factory=list)


def match_seeds(planned_lps: np.ndarray, found_lps: np.ndarray, max_mm: float) -> list[tuple[int, int, float]]:
    """Optimal one-to-one pairs (planned index, found index, distance mm) closer than ``max_mm``.

    >>> match_seeds(np.array([[0, 0, 0], [10, 0, 0.]]), np.array([[10.5, 0, 0], [0, 0.5, 0], [50, 0, 0.]]), 5.0)
    [(0, 1, 0.5), (1, 0, 0.5)]
    """
    p = np.asarray(planned_lps, float).reshape(-1, 3)
    f = np.asarray(found_lps, float).reshape(-1, 3)
    if len(p) == 0 or len(f) == 0:
        return []
    d = np.linalg.norm(p[:, None, :] - f[None, :, :], axis=-1)
    cost = np.where(d <= max_mm, d, max_mm * 1e3)  # far pairs only when nothing else is left
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c), float(d[r, c])) for r, c in zip(rows, cols, strict=True) if d[r, c] <= max_mm]


def _dose_grid(ct: Volume, target: np.ndarray, margin_mm: float) -> tuple[Grid, tuple[slice, ...]]:
    kji = np.argwhere(target)
    pad = np.ceil(margin_mm / ct.spacing[::-1]).astype(int)
    lo = np.maximum(kji.min(0) - pad, 0)
    hi = np.minimum(kji.max(0) + pad + 1, ct.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    return ct.grid.subgrid(lo, hi - lo), box


def _needle_errors(planned: Sequence[Seed], found: np.ndarray, pairs: list[tuple[int, int, float]]) -> list[NeedleError]:
    by_needle: dict[int, list[int]] = {}
    for i, s in enumerate(planned):
        if s.needle is not None:
            by_needle.setdefault(int(s.needle), []).append(i)
    found_of = {p: f for p, f, _ in pairs}
    out = []
    for needle, idx in sorted(by_needle.items()):
        hit = [i for i in idx if i in found_of]
        if not hit:
            out.append(NeedleError(needle=needle, seeds_planned=len(idx), seeds_found=0))
            continue
        d = np.asarray(planned[idx[0]].direction_lps)
        disp = np.mean([found[found_of[i]] - np.asarray(planned[i].position_lps) for i in hit], axis=0)
        along = float(disp @ d)
        out.append(NeedleError(needle=needle, seeds_planned=len(idx), seeds_found=len(hit),
                               lateral_mm=float(np.linalg.norm(disp - along * d)), depth_mm=along))
    return out


def verify_implant(ct: Volume, target: np.ndarray, planned: Sequence[Seed], prescription_gy: float,
                   options: VerifyOptions | None = None, source: str | None = None) -> PostImplantReport:
    """Detect the seeds on ``ct``, match them to ``planned``, recompute the dose and compare with the plan.

    ``target`` is a boolean mask on the CT grid ([k, j, i]). Bad input (a CT not in HU, without
    seeds, an empty target or no planned seeds) raises InputError.

    >>> from openir.phantom.post_implant import make_post_implant_ct  # doctest: +SKIP
    >>> p = make_post_implant_ct()  # doctest: +SKIP
    >>> plan = [Seed(position_lps=s.planned_lps, air_kerma_strength_U=0.6, needle=s.needle) for s in p.seeds]  # doctest: +SKIP
    >>> r = verify_implant(p.ct, p.labels.mask(p.tumour.name), plan, 120.0)  # doctest: +SKIP
    >>> r.matched_seeds == len(plan)  # doctest: +SKIP
    True
    """
    opts = options or VerifyOptions()
    if not planned:
        raise InputError("the plan holds no seeds", source=source, field="seeds")
    if not np.isfinite(prescription_gy) or prescription_gy <= 0:
        raise InputError(f"prescription must be a positive dose in Gy, got {prescription_gy}", field="prescription_gy")
    mask = np.asarray(target, bool)
    if mask.shape != ct.shape:
        raise InputError(f"target mask shape {mask.shape} does not match the CT {ct.shape}", field="target")
    if not mask.any():
        raise InputError("the target mask is empty", field="target")
    det = detect_seeds(ct, opts.detect, source)
    found = det.positions_lps
    plan_xyz = np.array([s.position_lps for s in planned], float)
    pairs = match_seeds(plan_xyz, found, opts.match_max_mm)
    matched_p = {p for p, _, _ in pairs}
    matched_f = {f for _, f, _ in pairs}
    matches = []
    found_of = {p: (f, d) for p, f, d in pairs}
    for i, s in enumerate(planned):
        if i in found_of:
            f, d = found_of[i]
            err = tuple(float(v) for v in found[f] - plan_xyz[i])
            matches.append(SeedMatch(planned_index=i, found_index=f, needle=s.needle, error_mm=d, error_lps=err))
        else:
            matches.append(SeedMatch(planned_index=i, found_index=None, needle=s.needle))
    sk = float(np.median([s.air_kerma_strength_U for s in planned]))
    found_seeds = [Seed(position_lps=tuple(d.position_lps), direction_lps=tuple(d.direction_lps),
                        air_kerma_strength_U=sk) for d in det.seeds]
    grid, box = _dose_grid(ct, mask, opts.dose_margin_mm)
    sub_mask = mask[box]
    plan_dose = total_dose_gy(list(planned), opts.model, grid)
    post_dose = total_dose_gy(found_seeds, opts.model, grid)
    plan_m = dose_metrics(plan_dose, sub_mask, grid.voxel_volume_mm3, prescription_gy)
    post_m = dose_metrics(post_dose, sub_mask, grid.voxel_volume_mm3, prescription_gy)
    errs = [d for _, _, d in pairs]
    warnings = list(det.warnings)
    missing = sorted(set(range(len(planned))) - matched_p)
    extra = sorted(set(range(len(found))) - matched_f)
    if missing:
        warnings.append(f"{len(missing)} planned seed(s) not found within {opts.match_max_mm:g} mm (lost or migrated)")
    if len(set(s.air_kerma_strength_U for s in planned)) > 1:
        warnings.append(f"planned seeds differ in strength; found seeds were given the median S_K {sk:.3g} U")
    return PostImplantReport(
        prescription_gy=float(prescription_gy), model=opts.model,
        target_volume_ml=float(mask.sum() * ct.grid.voxel_volume_mm3 / 1000.0),
        planned_seeds=len(planned), found_seeds=len(found), matched_seeds=len(pairs),
        missing_planned=missing, extra_found=extra,
        seed_error_mean_mm=float(np.mean(errs)) if errs else None,
        seed_error_max_mm=float(np.max(errs)) if errs else None,
        needles=_needle_errors(planned, found, pairs), plan=plan_m, post=post_m,
        delta_d90_gy=post_m.d90_gy - plan_m.d90_gy, delta_v100_pct=post_m.v100_pct - plan_m.v100_pct,
        matches=matches, detection=det, warnings=warnings)


def registry_dosimetry_post(report: PostImplantReport, seed_model: str | None = None) -> dict:
    """The fields the registry records for the post-implant check (its ``SeedDosimetryIn``, stage
    "post_implant"), the same shape as `models.registry_dosimetry` gives for the plan."""
    m = report.post
    return {"stage": "post_implant", "seed_model": seed_model or report.model, "seeds": report.found_seeds,
            "prescription_gy": report.prescription_gy, "d90_gy": round(m.d90_gy, 2), "d100_gy": round(m.d100_gy, 2),
            "v100_pct": round(m.v100_pct, 2), "v150_pct": round(m.v150_pct, 2), "v200_pct": round(m.v200_pct, 2)}
