"""Seed-implant planning from CT + labels: target, candidate needles, inverse placement, dose, indices.

`plan_seeds` is the entry point: tumour + site margin -> planning target; template (or free-hand)
needles checked with the trajectory module; seeds chosen by `inverse.optimise` (fewest needles,
then fewest seeds); TG-43U1 total dose on a box around the target; D90, V100, ..., organ doses and
DVHs re-computed on that full grid. A plan that misses a goal says which, in ``goals_met`` and notes.

>>> import numpy as np
>>> from openir.core import LabelMap
>>> from openir.core.volume import make_affine
>>> a = np.full((60, 60, 60), 2, np.uint8); a[:, :, :3] = 0; a[:, :, -3:] = 0   # body, air at left/right
>>> z, y, x = np.ogrid[:60, :60, :60]; a[(x - 30)**2 + (y - 30)**2 + (z - 30)**2 <= 100] = 1
>>> lm = LabelMap(a, make_affine((1.0, 1.0, 1.0)), {}, {1: "tumour", 2: "muscle"})
>>> res = plan_seeds(None, lm, SeedPlanOptions(tumour="tumour", site="liver",
...     needles=NeedleOptions(direction_lps=(1.0, 0.0, 0.0))))
>>> p = res.plan
>>> p.metrics.d90_gy >= p.prescription_gy, p.metrics.v100_pct >= 90, len(p.needles) <= 9
(True, True, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from openir.core import LabelMap
from openir.core.body import body_mask_from_arrays
from openir.core.errors import GeometryError, InputError
from openir.core.volume import Grid, Volume
from openir.plan import TrajectoryPolicy
from openir.plan.policy import is_target_label, load_policy

from .catalogue import get_seed_model
from .inverse import InverseOptions, InverseResult, OrganConstraint, optimise
from .metrics import OrganMask, dose_metrics, dvh
from .models import PlannedNeedle, Seed, SeedModel, SeedPlan
from .needles import CandidateSet, NeedleOptions, candidate_needles, hole_label
from .sites import SiteProtocol, get_site
from .tg43 import (
    DoseOptions,
    air_kerma_strength_from_apparent_activity,
    influence_matrix_rate,
    total_dose_gy,
)


@dataclass(frozen=True)
class SeedPlanOptions:
    """What to plan. None = the site protocol's value (``data/sites.yaml``)."""

    tumour: str
    site: str = "pancreas"
    seed_model: str = "6711"
    activity_mci: float | None = None
    prescription_gy: float | None = None
    margin_mm: float | None = None
    needles: NeedleOptions = field(default_factory=NeedleOptions)
    policy: TrajectoryPolicy | None = None
    dose: DoseOptions = field(default_factory=DoseOptions)
    sites_path: Path | None = None
    max_target_points: int = 8000
    max_organ_points: int = 20000
    dose_box_margin_mm: float = 30.0
    time_budget_s: float = 45.0


@dataclass
class SeedPlanResult:
    """The plan and the arrays behind it (dose and target on the dose box, for figures and files)."""

    plan: SeedPlan
    dose_gy: Volume
    target: np.ndarray
    tumour: np.ndarray
    organs: list[OrganMask]


def mask_box(mask: np.ndarray, grid: Grid, margin_mm: float) -> tuple[slice, slice, slice]:
    """Index slices of the box around ``mask`` grown by ``margin_mm``, clipped to the grid."""
    k, j, i = np.nonzero(mask)
    pad = np.ceil(margin_mm / grid.spacing[::-1]).astype(int)
    lo = np.maximum([k.min(), j.min(), i.min()] - pad, 0)
    hi = np.minimum(np.array([k.max(), j.max(), i.max()]) + pad + 1, grid.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def planning_target(labels: LabelMap, tumour: str, margin_mm: float, body: np.ndarray | None,
                    exclude: np.ndarray | None = None) -> np.ndarray:
    """Tumour grown by ``margin_mm`` (exact Euclidean distance, anisotropic voxels), inside the body,
    minus ``exclude`` (organ-at-risk voxels); mask on ``labels``' grid. Errors if the target leaves the CT."""
    tum = labels.mask(tumour)
    if not tum.any():
        raise InputError(f"tumour label {tumour!r} is empty: no target in the CT", field="tumour")
    check_inside_image(tum, labels.grid, margin_mm, tumour)
    box = mask_box(tum, labels.grid, margin_mm + 2 * float(labels.grid.spacing.max()))
    sub = tum[box]
    dist = ndimage.distance_transform_edt(~sub, sampling=labels.grid.spacing[::-1])
    ptv = np.zeros(labels.shape, bool)
    ptv[box] = dist <= margin_mm + 1e-6
    if body is not None:
        ptv &= body
    if exclude is not None:
        ptv &= ~exclude
    return ptv


def check_inside_image(tumour: np.ndarray, grid: Grid, margin_mm: float, name: str) -> None:
    """InputError when the tumour, or the tumour plus its margin, reaches beyond the image."""
    k, j, i = np.nonzero(tumour)
    idx = np.stack([i, j, k], -1)
    n = np.array(grid.shape_ijk)
    room = np.minimum(idx.min(axis=0), (n - 1) - idx.max(axis=0)) * grid.spacing
    if np.any(room < margin_mm + 1e-6) or np.any(idx.min(axis=0) == 0) or np.any(idx.max(axis=0) == n - 1):
        raise InputError(f"target {name!r} + {margin_mm:g} mm margin reaches the edge of the CT: the target lies "
                         "(partly) outside the image", field="tumour")


def _subsample(idx: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(idx) <= n:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))


def _organs(labels: LabelMap, site: SiteProtocol) -> list[OrganMask]:
    out = []
    for o in site.organs_at_risk:
        vals = o.values_in(labels)
        if vals:
            out.append(OrganMask(o.name, np.isin(labels.array, vals), o.metric, o.limit_gy, o.source))
    return out


def plan_seeds(ct: Volume | None, labels: LabelMap, options: SeedPlanOptions) -> SeedPlanResult:
    """Plan a permanent I-125 seed implant for ``options.tumour`` (see the module docstring)."""
    t0 = time.perf_counter()
    site = get_site(options.site, options.sites_path)
    model = get_seed_model(options.seed_model)
    activity = options.activity_mci if options.activity_mci is not None else site.activity_mci
    sk = air_kerma_strength_from_apparent_activity(activity, model)
    rx = options.prescription_gy if options.prescription_gy is not None else site.prescription_gy
    margin = options.margin_mm if options.margin_mm is not None else site.margin_mm
    if not (math.isfinite(rx) and 0 < rx <= 400):
        raise InputError(f"prescription must be 0-400 Gy, got {rx}", field="prescription_gy")
    if not (math.isfinite(margin) and 0 <= margin <= 30):
        raise InputError(f"margin must be 0-30 mm, got {margin}", field="margin_mm")
    if ct is not None and not ct.grid.same_as(labels.grid):
        raise GeometryError("CT and label map are not on the same grid")
    notes: list[str] = []
    tum_full = labels.mask(options.tumour)
    if not tum_full.any():
        raise InputError(f"tumour label {options.tumour!r} is empty: no target in the CT", field="tumour")
    check_inside_image(tum_full, labels.grid, margin, options.tumour)
    # everything but the needle paths is computed in a box around the tumour (margin + dose box)
    box = mask_box(tum_full, labels.grid, margin + options.dose_box_margin_mm)
    grid_box = labels.grid.subgrid([s.start for s in box], [s.stop - s.start for s in box])
    sub = LabelMap(labels.array[box], grid_box.affine, {}, labels.labels)
    body = body_mask_from_arrays(ct.array[box], sub.array) if ct is not None else sub.array > 0
    organs = _organs(sub, site)
    excl = np.zeros(sub.shape, bool)
    for o in organs:
        excl |= o.mask
    ptv_box = planning_target(sub, options.tumour, margin, body, excl if excl.any() else None)
    if not ptv_box.any():
        raise InputError(f"the planning target of {options.tumour!r} is empty (outside the body?)", field="tumour")
    if excl.any():
        notes.append("organ-at-risk voxels are excluded from the planning target")
    ptv = np.zeros(labels.shape, bool)
    ptv[box] = ptv_box
    # the tumour is the trajectory module's target whatever its name (nodule_1, mass, ...): its host
    # organ then allows the one capsule / pleural crossing the target itself needs
    tv = labels.value_of(options.tumour)
    path_labels = LabelMap(labels.array, labels.affine, labels.meta,
                           {v: (n if v != tv or is_target_label(n) else f"target_{n}") for v, n in labels.labels.items()})
    cands = _candidates_any_position(path_labels, ptv, site, options)
    notes += cands.notes

    # influence matrices (total dose, Gy) on target and organ sample points
    rows, needle_of = _slot_rows(cands, sk)
    gy_per_rate = model.mean_life_h / 100.0
    pidx = _subsample(np.flatnonzero(ptv_box), options.max_target_points)
    pts = _points(grid_box, ptv_box.shape, pidx)
    a_t = influence_matrix_rate(rows, model, pts, options.dose) * gy_per_rate
    vox_cc = labels.grid.voxel_volume_mm3 / 1000.0
    cons = []
    for o in organs:
        oidx = np.flatnonzero(o.mask)
        if oidx.size == 0:
            continue
        sel = _subsample(oidx, options.max_organ_points, 1)
        frac = sel.size / oidx.size
        cc = {"dmax": 0.0, "d0_1cc": 0.1, "d1cc": 1.0, "d2cc": 2.0, "dmean": 0.0}[o.metric or "dmax"]
        k = max(1, int(math.ceil(cc / vox_cc * frac))) if cc > 0 else 1
        m = influence_matrix_rate(rows, model, _points(grid_box, o.mask.shape, sel), options.dose)
        cons.append(OrganConstraint(o.name, m * gy_per_rate, o.metric or "dmax", float(o.limit_gy or 1e9), k))

    q = site.quality
    assert q is not None
    result = None
    for attempt in range(3):
        inv = InverseOptions(prescription_gy=rx, v100_goal_pct=q.v100_min_pct, margin_v100_pct=2.0 + 3.0 * attempt,
                             margin_d90=0.03 + 0.04 * attempt,
                             time_budget_s=max(5.0, options.time_budget_s - (time.perf_counter() - t0)))
        res = optimise(a_t, cons, needle_of, inv)
        result = _finish(_Ctx(labels, sub, options, site, model, sk, activity, rx, margin, cands, ptv_box,
                              grid_box, organs, notes, t0), res)
        g = result.plan.goals_met
        if (g["d90"] and g["v100"]) or not res.organ_ok or time.perf_counter() - t0 > options.time_budget_s:
            break
        notes.append(f"attempt {attempt + 1}: goals missed on the full grid; re-planned with a larger margin")
    assert result is not None
    result.plan.seconds = time.perf_counter() - t0
    return result


def _candidates_any_position(labels: LabelMap, ptv: np.ndarray, site: SiteProtocol,
                             options: SeedPlanOptions) -> CandidateSet:
    """Candidate needles with the first patient position (site order) that gives any safe needle."""
    if options.policy is not None:
        cands = candidate_needles(labels, ptv, options.policy, options.needles)
        cands.position = options.policy.patient_position
        return cands
    base = load_policy().model_copy(update={"needle_gauge": site.needle_gauge, "needle_diameter_mm": None})
    problems = []
    for pos in site.positions:
        try:
            cands = candidate_needles(labels, ptv, base.model_copy(update={"patient_position": pos}), options.needles)
        except InputError as exc:
            problems.append(f"{pos}: {exc.problem}")
            continue
        cands.notes.append(f"patient position: {pos}")
        cands.position = pos
        return cands
    raise InputError("no safe needle path in any patient position (" + "; ".join(problems) + ")", field="target")


def _slot_rows(cands: CandidateSet, sk: float) -> tuple[np.ndarray, np.ndarray]:
    rows, needle_of = [], []
    for n, c in enumerate(cands.needles):
        for p in c.slots:
            rows.append([*p, *c.direction, sk])
            needle_of.append(n)
    return np.asarray(rows, float), np.asarray(needle_of, np.int64)


def _points(grid: Grid, shape: tuple[int, ...], flat: np.ndarray) -> np.ndarray:
    k, j, i = np.unravel_index(flat, shape)
    return grid.index_to_world(np.stack([i, j, k], -1).astype(float))


@dataclass
class _Ctx:
    """What `plan_seeds` has prepared, handed to `_finish` as one object."""

    labels: LabelMap
    sub: LabelMap
    options: SeedPlanOptions
    site: SiteProtocol
    model: SeedModel
    sk: float
    activity: float
    rx: float
    margin: float
    cands: CandidateSet
    ptv: np.ndarray
    grid_box: Grid
    organs: list[OrganMask]
    notes: list[str]
    t0: float


def _finish(ctx: _Ctx, res: InverseResult) -> SeedPlanResult:
    """Seeds and needles of the chosen slots, full-grid dose, indices, DVHs: the `SeedPlan`."""
    labels, options, site, model, sk, activity = ctx.labels, ctx.options, ctx.site, ctx.model, ctx.sk, ctx.activity
    rx, margin, cands, ptv, grid_box = ctx.rx, ctx.margin, ctx.cands, ctx.ptv, ctx.grid_box
    organs, notes, t0 = ctx.organs, ctx.notes, ctx.t0
    from openir.plan.trajectories import trace_one

    chosen = set(res.chosen)
    needles: list[PlannedNeedle] = []
    seeds: list[Seed] = []
    slot = 0
    k, j, i = np.nonzero(ptv)
    centre = grid_box.index_to_world(np.array([i.mean(), j.mean(), k.mean()]))
    prep = cands.prep
    for c in cands.needles:
        use = [s for s in range(len(c.slots)) if slot + s in chosen]
        slot += len(c.slots)
        if not use:
            continue
        pos = c.slots[use]
        tip = pos[-1] + options.needles.tip_beyond_seed_mm * c.direction
        status, _b, length = trace_one(prep, tip, -c.direction)
        if status != 0:  # the deeper path was safe, so a shallower tip is too; keep the checked one
            tip, length = c.tip, c.depth_mm
        entry = tip - length * c.direction
        idx = len(needles)
        label = hole_label(c.row, c.col) if len(cands.frames) == 1 else f"{c.frame + 1}:{hole_label(c.row, c.col)}"
        needles.append(PlannedNeedle(
            index=idx, hole=label, row=c.row, col=c.col, direction_lps=tuple(c.direction), entry_lps=tuple(entry),
            tip_lps=tuple(tip), depth_mm=round(float(length), 1), seeds=len(use),
            seed_depths_mm=[round(float((p - entry) @ c.direction), 1) for p in pos]))
        for p in pos:
            seeds.append(Seed(position_lps=tuple(p), direction_lps=tuple(c.direction), air_kerma_strength_U=sk,
                              needle=idx))
    dose = total_dose_gy(seeds, model, grid_box, options.dose)
    tgt = ptv
    tum = ctx.sub.mask(options.tumour)
    organ_box = organs
    metrics = dose_metrics(dose, tgt, labels.grid.voxel_volume_mm3, rx, organ_box)
    q = site.quality
    goals = {"d90": metrics.d90_gy >= rx, "v100": metrics.v100_pct >= q.v100_min_pct,
             "v150": metrics.v150_pct <= q.v150_max_pct, "v200": metrics.v200_pct <= q.v200_max_pct,
             "organs": all(o.within_limit is not False for o in metrics.organs)}
    dmax = 2.5 * rx
    curves = [dvh(dose, tgt, "planning target", dmax), dvh(dose, tum, options.tumour, dmax)]
    curves += [dvh(dose, o.mask, o.name, dmax) for o in organ_box if o.mask.any()]
    extra = list(notes) + res.log
    if not goals["v150"] or not goals["v200"]:
        extra.append("V150/V200 above the prostate-LDR reference ceilings (reported, not forced)")
    if not res.organ_ok or not goals["organs"]:
        extra.append("an organ-at-risk limit is NOT kept: see metrics.organs")
    frame = cands.frames[0] if len(cands.frames) == 1 else None
    sources = {"margin": site.margin_source, "prescription": site.prescription_source,
               "activity": site.activity_source, "seed_model": model.source,
               "v100": q.v100_min_source, "v150_v200": q.hot_source}
    plan = SeedPlan(
        site=site.name, tumour=options.tumour, patient_position=cands.position, seed_model=model.name, activity_mci=activity,
        air_kerma_strength_U=sk, prescription_gy=rx, margin_mm=margin, sources=sources,
        mode=options.needles.mode, template=frame, seed_spacing_mm=options.needles.seed_spacing_mm,
        needles=needles, seeds=seeds, metrics=metrics, dvh=curves, goals_met=goals,
        total_activity_mci=round(activity * len(seeds), 3), total_air_kerma_strength_U=round(sk * len(seeds), 3),
        target_centroid_lps=tuple(centre), candidate_needles=len(cands.needles), rejected_needles=cands.rejected,
        seconds=time.perf_counter() - t0, notes=extra)
    dose_vol = Volume(dose.astype(np.float32), grid_box.affine.copy(), {"units": "Gy", "modality": "RTDOSE"})
    return SeedPlanResult(plan, dose_vol, tgt, tum, organ_box)
