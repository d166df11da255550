"""Candidate needles for a seed implant: template holes (coplanar, parallel) or free-hand directions.

A template is a plate of holes on a square grid (5 mm by default) in the plane normal to the needle
direction; every hole whose line crosses the planning target is a candidate needle, and seed slots
lie on it at the chosen spacing, inside the target. Every candidate path is traced with the
trajectory module of `openir.plan` (same policy: bone, vessels, organs that must not be crossed,
keep-away margins, entry side): only feasible needles are offered to the optimiser.
Free-hand mode offers several non-coplanar template directions at once (oblique needles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from openir.core import LabelMap
from openir.core.errors import InputError
from openir.plan import (
    TrajectoryPolicy,
    evaluate_directions,
    fibonacci_directions,
    prepare_case,
    trace_one,
)
from openir.plan.trajectories import CasePrep

from .models import TemplateFrame

STATUS_NAMES = {0: "feasible", 1: "crosses a structure that must not be crossed", 2: "too close to a structure",
                3: "longer than the needle", 4: "leaves the image", 5: "too many counted crossings",
                6: "enters from the table side"}


@dataclass(frozen=True)
class NeedleOptions:
    """How candidate needles are laid out.

    ``direction_lps``: needle direction (entry toward tip) for a coplanar template; None chooses it
    from the feasible trajectories of the target centre (shortest safe paths). ``mode='freehand'``
    uses ``n_directions`` non-coplanar directions at once.
    """

    mode: Literal["template", "freehand"] = "template"
    direction_lps: tuple[float, float, float] | None = None
    hole_spacing_mm: float = 5.0
    seed_spacing_mm: float = 5.0
    needle_length_mm: float = 200.0
    tip_beyond_seed_mm: float = 5.0
    n_directions: int = 3
    min_separation_deg: float = 25.0


@dataclass
class Candidate:
    """A feasible candidate needle and its seed slots (LPS mm), deepest last."""

    frame: int
    row: int
    col: int
    direction: np.ndarray
    slots: np.ndarray
    tip: np.ndarray
    entry: np.ndarray
    depth_mm: float


@dataclass
class CandidateSet:
    frames: list[TemplateFrame]
    needles: list[Candidate]
    rejected: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    prep: CasePrep | None = None  # the trajectory case, to re-trace the final needles
    position: str = "any"


def template_frame(direction_lps: Sequence[float], centre_lps: Sequence[float], spacing_mm: float) -> TemplateFrame:
    """A template plane through ``centre_lps`` normal to the needle direction; columns run left-right
    (or head-foot for a left-right needle) so hole labels read as on the printed plate."""
    d = np.asarray(direction_lps, float)
    d = d / np.linalg.norm(d)
    ref = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    col = ref - (ref @ d) * d
    col /= np.linalg.norm(col)
    row = np.cross(d, col)
    return TemplateFrame(origin_lps=tuple(np.asarray(centre_lps, float)), direction_lps=tuple(d),
                         col_axis_lps=tuple(col), row_axis_lps=tuple(row), hole_spacing_mm=spacing_mm)


def hole_label(row: int, col: int) -> str:
    """Printed hole name: row letter from the template centre (A..Z, 'M' = centre row), column number."""
    letter = chr(ord("M") + row) if -12 <= row <= 13 else f"R{row}"
    return f"{letter}{col:+d}"


def _mask_at(mask: np.ndarray, labels: LabelMap, pts: np.ndarray) -> np.ndarray:
    idx = np.rint(labels.grid.world_to_index(pts)).astype(np.int64)
    n = np.array(labels.grid.shape_ijk)
    ok = np.all((idx >= 0) & (idx < n), axis=-1)
    out = np.zeros(pts.shape[:-1], bool)
    ii = idx[ok]
    out[ok] = mask[ii[..., 2], ii[..., 1], ii[..., 0]]
    return out


def _frame_lines(frame: TemplateFrame, ptv: np.ndarray, labels: LabelMap, opts: NeedleOptions):
    """Holes whose line crosses the target, and their seed slots (inside the target)."""
    o = np.asarray(frame.origin_lps)
    d, cu, rv = (np.asarray(v) for v in (frame.direction_lps, frame.col_axis_lps, frame.row_axis_lps))
    k, j, i = np.nonzero(ptv)
    pts = labels.grid.index_to_world(np.stack([i, j, k], -1).astype(float)) - o
    h = frame.hole_spacing_mm
    cols = np.arange(math.floor((pts @ cu).min() / h) - 1, math.ceil((pts @ cu).max() / h) + 2)
    rows = np.arange(math.floor((pts @ rv).min() / h) - 1, math.ceil((pts @ rv).max() / h) + 2)
    s = opts.seed_spacing_mm
    tlo, thi = (pts @ d).min(), (pts @ d).max()
    ts = np.arange(math.floor(tlo / s) * s, thi + s, s)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    base = o + (cc.ravel()[:, None] * h) * cu + (rr.ravel()[:, None] * h) * rv
    slot_pts = base[:, None, :] + ts[None, :, None] * d
    inside = _mask_at(ptv, labels, slot_pts)
    out = []
    for q in np.flatnonzero(inside.any(axis=1)):
        out.append((int(rr.ravel()[q]), int(cc.ravel()[q]), slot_pts[q][inside[q]]))
    return out


def feasible_directions(prep: CasePrep, n: int, min_sep_deg: float, count: int = 800) -> list[np.ndarray]:
    """Up to ``n`` needle directions (entry toward tip) from the target centre, shortest safe first,
    at least ``min_sep_deg`` apart."""
    dirs = fibonacci_directions(count)
    rays = evaluate_directions(prep, dirs)
    ok = np.flatnonzero(rays.feasible)
    if ok.size == 0:
        return []
    order = ok[np.argsort(rays.length_mm[ok])]
    chosen: list[np.ndarray] = []
    cos_sep = math.cos(math.radians(min_sep_deg))
    for q in order:
        v = rays.directions[q]
        if all(float(v @ c) < cos_sep for c in chosen):
            chosen.append(v)
        if len(chosen) >= n:
            break
    return [-v for v in chosen]  # outward ray -> insertion direction


def _check(prep: CasePrep, slots: np.ndarray, d: np.ndarray, opts: NeedleOptions):
    """Trace the needle to just past its deepest slot; drop deep slots until the path is safe."""
    status = -1
    for drop in range(min(3, len(slots))):
        use = slots[: len(slots) - drop] if drop else slots
        tip = use[-1] + opts.tip_beyond_seed_mm * d
        status, _blk, length = trace_one(prep, tip, -d)
        if status == 0:
            return use, tip, tip - length * d, length, 0
    return None, None, None, 0.0, status


def candidate_needles(labels: LabelMap, ptv: np.ndarray, policy: TrajectoryPolicy,
                      opts: NeedleOptions | None = None) -> CandidateSet:
    """Every feasible candidate needle through the planning target ``ptv`` (mask on ``labels``' grid)."""
    opts = opts or NeedleOptions()
    if opts.hole_spacing_mm <= 0 or opts.seed_spacing_mm <= 0:
        raise InputError("hole and seed spacing must be positive (mm)", field="spacing")
    if not ptv.any():
        raise InputError("the planning target is empty", field="target")
    k, j, i = np.nonzero(ptv)
    centre = labels.grid.index_to_world(np.array([i.mean(), j.mean(), k.mean()]))
    prep = prepare_case(labels, centre, policy, needle_length_mm=opts.needle_length_mm)
    notes = list(prep.notes)
    if opts.direction_lps is not None:
        dirs = [np.asarray(opts.direction_lps, float) / np.linalg.norm(opts.direction_lps)]
    else:
        n = opts.n_directions if opts.mode == "freehand" else 6
        dirs = feasible_directions(prep, n, opts.min_separation_deg)
        if not dirs:
            raise InputError("no safe needle path reaches the target centre (every direction is blocked)",
                             field="target")
    best: CandidateSet | None = None
    pts = labels.grid.index_to_world(np.stack([i, j, k], -1)[:: max(1, len(i) // 4000)].astype(float))
    best_cov = -1.0
    for d in dirs:
        frame = template_frame(d, centre, opts.hole_spacing_mm)
        cs = _candidates_for(prep, labels, ptv, [frame], opts)
        if opts.mode == "freehand":
            best = cs if best is None else _merge(best, cs)
            continue
        cov = _coverage(cs, pts, opts.seed_spacing_mm)
        if cov > best_cov:
            best, best_cov = cs, cov
    assert best is not None
    best.notes = notes + best.notes
    best.prep = prep
    if not best.needles:
        raise InputError("no candidate needle path through the target is safe", field="target")
    return best


def _coverage(cs: CandidateSet, pts: np.ndarray, reach_mm: float) -> float:
    """Fraction of target points within ``reach_mm`` of a feasible seed slot (how well a template can cover)."""
    if not cs.needles:
        return 0.0
    from scipy.spatial import cKDTree

    slots = np.concatenate([c.slots for c in cs.needles])
    dist, _ = cKDTree(slots).query(pts, distance_upper_bound=reach_mm)
    return float(np.mean(np.isfinite(dist)))


def _merge(a: CandidateSet, b: CandidateSet) -> CandidateSet:
    off = len(a.frames)
    for c in b.needles:
        c.frame += off
    rej = dict(a.rejected)
    for key, v in b.rejected.items():
        rej[key] = rej.get(key, 0) + v
    return CandidateSet(a.frames + b.frames, a.needles + b.needles, rej, a.notes + b.notes)


def _candidates_for(prep: CasePrep, labels: LabelMap, ptv: np.ndarray, frames: list[TemplateFrame],
                    opts: NeedleOptions) -> CandidateSet:
    needles: list[Candidate] = []
    rejected: dict[str, int] = {}
    for f_i, frame in enumerate(frames):
        d = np.asarray(frame.direction_lps)
        for row, col, slots in _frame_lines(frame, ptv, labels, opts):
            use, tip, entry, length, status = _check(prep, slots, d, opts)
            if use is None:
                why = STATUS_NAMES.get(status, f"status {status}")
                rejected[why] = rejected.get(why, 0) + 1
                continue
            needles.append(Candidate(f_i, row, col, d, use, tip, entry, float(length)))
    return CandidateSet(frames, needles, rejected)


def needle_path(prep: CasePrep, tip: np.ndarray, d: np.ndarray) -> tuple[int, np.ndarray, float]:
    """(status, entry point, skin-to-tip length) of one needle, traced with the trajectory module."""
    status, _blk, length = trace_one(prep, tip, -d)
    return status, tip - length * d, length
