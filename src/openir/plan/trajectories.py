"""Safe straight needle trajectories from the skin to a target.

Preparation (once per case): crop a box of radius needle length + clearance cap around the target,
code every voxel by structure, and compute one capped Euclidean distance map (mm) per risk structure
inside that structure's own box. Search: N directions on a Fibonacci sphere, each traced from the
target outward voxel by voxel (every voxel the segment touches, Amanatides-Woo) until it first
leaves the body (the skin). A direction is feasible when it crosses no must-not-cross structure,
keeps every keep-away (structure class default or per case, plus the needle's radius from its
gauge), reaches the skin within the needle length, stays within the crossing limits (pleural
surfaces) and enters from a side the patient position leaves free. Feasible paths are scored on
length, clearance, angle to the axial plane (CT gantry), angle to the skin normal and capsule
crossings; the Pareto-optimal set and a ranked, angularly spread shortlist are returned, each path
with the gantry and craniocaudal angles and skin-to-target depth a CT operator sets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from openir.core import LabelMap, normalise_label_name
from openir.core.crop import world_box
from openir.core.errors import GeometryError, InputError

from . import _march
from ._edt import distance_map_mm
from .models import Trajectory, TrajectoryResult
from .policy import (
    TABLE_DOWN_LPS,
    ResolvedStructure,
    TrajectoryPolicy,
    is_target_label,
    load_policy,
    needle_diameter_mm,
    resolve,
)

REASONS = {_march.HIT: "crosses", _march.MARGIN: "too close to", _march.TOO_LONG: "longer than the needle",
           _march.LEFT_IMAGE: "leaves the image before the skin", _march.COUNTED: "too many crossings of",
           _march.ENTRY_SIDE: "enters from the table side"}


def fibonacci_directions(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (LPS) on the sphere."""
    i = np.arange(n, dtype=float) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def coherent_order(d: np.ndarray, bands: int | None = None) -> np.ndarray:
    """An order of unit vectors in which consecutive ones are close (theta bands, snaking in phi)."""
    n = len(d)
    nb = bands or max(1, int(math.sqrt(n / 2)))
    theta = np.arccos(np.clip(d[:, 2], -1, 1))
    phi = np.arctan2(d[:, 1], d[:, 0])
    band = np.minimum((theta / math.pi * nb).astype(int), nb - 1)
    key_phi = np.where(band % 2 == 0, phi, -phi)
    return np.lexsort((key_phi, band))


@dataclass
class CasePrep:
    """Everything the search needs, computed once per case (target, policy, needle length)."""

    grid: object  # the crop's Grid
    codes: np.ndarray
    target_lps: np.ndarray
    target_kji: np.ndarray
    needle_length_mm: float
    spacing_kji: np.ndarray
    structures: list[ResolvedStructure]
    forbid: np.ndarray
    capsule_id: np.ndarray
    counted_id: np.ndarray
    counted_names: list[str]
    struct_of_code: np.ndarray
    dist: np.ndarray
    quantum_mm: float
    box_lo: np.ndarray
    box_shape: np.ndarray
    box_off: np.ndarray
    margins: np.ndarray
    cap_mm: float
    policy: TrajectoryPolicy
    counted_limits: np.ndarray  # (C,) int, -1 = no limit (already raised by one for a target inside)
    needle_diameter_mm: float = 0.0
    table_down_lps: np.ndarray | None = None  # None: any entry side
    max_below_horizontal_deg: float = 90.0
    exempt: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.structures]


@dataclass
class RayTable:
    """Per-direction results of the search (arrays, one row per direction)."""

    directions: np.ndarray  # (N, 3) LPS, outward from the target (the needle goes the other way)
    status: np.ndarray
    blocker: np.ndarray
    length_mm: np.ndarray
    clearance_mm: np.ndarray  # (N, S)
    capsules: np.ndarray
    counted: np.ndarray  # (N, C)
    counted_length_mm: np.ndarray | None = None  # (N, C)
    fissures: np.ndarray | None = None  # (N,)
    seconds: float = 0.0

    @property
    def feasible(self) -> np.ndarray:
        return self.status == _march.FEASIBLE


def _body_mask(labels_arr: np.ndarray, body: np.ndarray | None) -> np.ndarray:
    m = labels_arr > 0
    if body is not None:
        m |= body
    return m


def _host_value(arr: np.ndarray, ti: np.ndarray, tval: int, lm: LabelMap, pol: TrajectoryPolicy) -> int:
    """The organ around a target label (e.g. the lung holding a nodule): the commonest other label in
    a one-voxel shell around the target's connected blob (0 if none)."""
    blob = arr == tval
    lab, _ = ndimage.label(blob)
    blob = lab == lab[tuple(ti)]
    shell = ndimage.binary_dilation(blob) & ~blob
    vals = arr[shell]
    vals = vals[(vals > 0) & ~np.isin(vals, [v for v, n in lm.labels.items() if pol.is_target(n)])]
    if vals.size == 0:
        return 0
    u, c = np.unique(vals, return_counts=True)
    return int(u[np.argmax(c)])


def prepare_case(labels: LabelMap, target_lps: Sequence[float], policy: TrajectoryPolicy | None = None,
                 needle_length_mm: float = 150.0, *, body_mask: np.ndarray | None = None,
                 keep_away: dict[str, float] | None = None) -> CasePrep:
    """Crop, code and distance-map the case around ``target_lps`` (the per-case preparation).

    The needle's gauge and the patient position come from the policy (``needle_gauge``,
    ``patient_position``); keep-aways are the larger of the structure's margin and its class default,
    plus the needle radius for every must-not-cross structure.
    """
    t0 = time.perf_counter()
    pol = policy or load_policy()
    strict: tuple[str, ...] = ()
    if keep_away:
        pol = pol.with_keep_away(keep_away)
        strict = tuple(keep_away)
    if needle_length_mm <= 0:
        raise InputError(f"needle length must be positive, got {needle_length_mm}", field="needle_length_mm")
    if body_mask is not None and body_mask.shape != labels.shape:
        raise GeometryError(f"body mask shape {body_mask.shape} differs from labels {labels.shape}")
    grid = labels.grid
    target = np.asarray(target_lps, dtype=float).reshape(3)
    if not bool(grid.contains_world(target)):
        raise InputError(f"target {target.round(1).tolist()} mm LPS lies outside the image", field="target")
    cap = float(pol.clearance_cap_mm)
    box = world_box(grid, target, 2 * (needle_length_mm + cap) + 4 * grid.spacing.max())
    sub = grid.subgrid([s.start for s in box], [s.stop - s.start for s in box])
    arr = labels.array[box]
    body = _body_mask(arr, body_mask[box] if body_mask is not None else None)
    if not body.any():
        raise InputError("no body found around the target: the label map is empty there (no skin)",
                         field="labels")
    full_body_outside = not _body_mask(labels.array, body_mask).all()
    if not full_body_outside:
        raise InputError("no skin: the body fills the whole image, so no path can reach the skin",
                         field="labels")
    tk = sub.world_to_index(target)[::-1]
    ti = np.rint(tk).astype(int)
    if not body[tuple(ti)]:
        raise InputError(f"target {target.round(1).tolist()} mm LPS lies outside the body", field="target")

    if arr.dtype.kind in "ui" and arr.dtype.itemsize <= 2:
        present = set(np.flatnonzero(np.bincount(arr.ravel().astype(np.intp, copy=False))).tolist()) - {0}
    else:
        present = set(np.unique(arr).tolist()) - {0}
    unknown = present - set(labels.labels)
    notes: list[str] = []
    if unknown:
        notes.append(f"label values without names treated as unlisted: {sorted(unknown)}")
    lm = LabelMap(arr, sub.affine, {}, {**{v: f"label_{v}" for v in unknown}, **labels.labels})
    structures, rnotes = resolve(pol, lm, present=present, strict_names=strict)
    notes += rnotes
    # exempt structures that contain the target (e.g. a kidney holding a renal tumour)
    tval = int(arr[tuple(ti)])
    host = _host_value(arr, ti, tval, lm, pol) if pol.is_target(lm.labels.get(tval, "")) else tval
    exempt = []
    for s in structures:
        if tval in s.values and s.rule.cross == "forbid":
            exempt.append(s.name)
            s.rule = s.rule.model_copy(update={"cross": "allow"})
            notes.append(f"{s.name!r} holds the target: crossing it is allowed")

    # codes: 0 outside, 1 unlabelled body, then one per present label value
    values = sorted(present)
    if len(values) > 250:
        raise InputError(f"too many labels around the target ({len(values)}); at most 250", field="labels")
    lut = np.zeros(int(max(values, default=0)) + 1, dtype=np.uint8)
    ncode = len(values) + 2
    forbid = np.zeros(ncode, dtype=np.bool_)
    capsule_id = np.zeros(ncode, dtype=np.int32)
    counted_id = np.zeros(ncode, dtype=np.int32)
    struct_of_code = np.full(ncode, -1, dtype=np.int32)
    risk = [s for s in structures if s.rule.cross != "allow" or pol.margin_for(s.rule) > 0]
    risk_index = {s.name: n for n, s in enumerate(risk)}
    counted_names = [s.name for s in structures if s.rule.cross == "count"]
    caps = [s.name for s in structures if s.rule.capsule]
    by_value = {v: s for s in structures for v in s.values}
    for c, v in enumerate(values, start=2):
        lut[v] = c
        s = by_value.get(v)
        if s is None:  # target / tumour labels: transparent for capsules and counting
            capsule_id[c] = -1
            counted_id[c] = -1
            continue
        forbid[c] = s.rule.cross == "forbid"
        capsule_id[c] = caps.index(s.name) + 1 if s.name in caps else 0
        counted_id[c] = counted_names.index(s.name) + 1 if s.name in counted_names else 0
        struct_of_code[c] = risk_index.get(s.name, -1)
    codes = lut[arr]
    if body_mask is not None:
        codes[body & (codes == 0)] = 1

    # distance maps, each in its structure's box grown by the cap
    sp = sub.spacing[::-1]
    grow = np.ceil(cap / sp).astype(int) + 1
    chunks, lo, shp, off = [], [], [], []
    total = 0
    quantum = cap / 255.0  # distances stored as uint8: 4x less memory traffic, error <= quantum/2
    sidx = np.zeros(ncode, dtype=np.uint8)
    sidx[struct_of_code >= 0] = struct_of_code[struct_of_code >= 0] + 1
    svol = sidx[codes]
    objs = ndimage.find_objects(svol, max_label=len(risk))
    for s in range(len(risk)):
        sl = objs[s] if s < len(objs) else None
        if sl is None:
            lo.append((0, 0, 0))
            shp.append((0, 0, 0))
            off.append(total)
            continue
        b0 = [max(0, int(q.start) - g) for q, g in zip(sl, grow, strict=True)]
        b1 = [min(n, int(q.stop) + g) for q, n, g in zip(sl, arr.shape, grow, strict=True)]
        m = svol[b0[0]:b1[0], b0[1]:b1[1], b0[2]:b1[2]] == s + 1
        d = distance_map_mm(m, sp, cap_mm=cap)
        chunks.append(np.rint(d.reshape(-1) / quantum).astype(np.uint8))
        lo.append(tuple(b0))
        shp.append(tuple(b - a for a, b in zip(b0, b1, strict=True)))
        off.append(total)
        total += d.size
    dist = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    diam = pol.needle_diameter_mm or needle_diameter_mm(pol.needle_gauge)
    margins = []
    for s in risk:
        base = 0.0 if s.name in exempt else pol.margin_for(s.rule)
        needs_body = s.name not in exempt and (s.rule.cross == "forbid" or base > 0)
        margins.append(base + diam / 2 if needs_body else base)
    limits = np.full(len(counted_names), -1, np.int64)
    for q, name in enumerate(counted_names):
        lim = pol.max_counted_crossings.get(name)
        if lim is None:
            continue
        inside = any(s.name == name and (tval in s.values or host in s.values) for s in structures)
        limits[q] = lim + (1 if inside else 0)
        if inside:
            notes.append(f"the target lies in {name!r}: one crossing of its surface is needed and allowed "
                         f"beyond the limit of {lim}")
    down = None
    if pol.patient_position != "any":
        down = np.asarray(TABLE_DOWN_LPS[pol.patient_position], float)
    return CasePrep(
        grid=sub, codes=codes, target_lps=target, target_kji=tk, needle_length_mm=float(needle_length_mm),
        spacing_kji=np.ascontiguousarray(sp, dtype=np.float64), structures=risk, forbid=forbid,
        capsule_id=capsule_id, counted_id=counted_id,
        counted_names=counted_names, struct_of_code=struct_of_code, dist=dist,
        box_lo=np.asarray(lo, np.int64).reshape(-1, 3), box_shape=np.asarray(shp, np.int64).reshape(-1, 3),
        box_off=np.asarray(off, np.int64), margins=np.asarray(margins, np.float32),
        quantum_mm=quantum, cap_mm=cap, policy=pol, counted_limits=limits, needle_diameter_mm=diam,
        table_down_lps=down, max_below_horizontal_deg=float(pol.entry_sides.max_below_horizontal_deg),
        exempt=exempt, notes=notes, seconds=time.perf_counter() - t0)


def _index_dirs(prep: CasePrep, d: np.ndarray) -> np.ndarray:
    """Unit LPS directions -> index units (k, j, i) per mm of path."""
    inv = getattr(prep, "_inv_affine", None)
    if inv is None:
        inv = np.linalg.inv(prep.grid.affine)  # type: ignore[attr-defined]
        prep._inv_affine = inv  # type: ignore[attr-defined]
    return np.ascontiguousarray((d @ inv[:3, :3].T)[:, ::-1])


def _apply_limits(prep: CasePrep, d: np.ndarray, status: np.ndarray, blocker: np.ndarray,
                  counted: np.ndarray) -> None:
    """Counted-crossing limits and the patient position's entry side, on the traced rays (in place)."""
    names = [s.name for s in prep.structures]
    for q, name in enumerate(prep.counted_names):
        lim = int(prep.counted_limits[q])
        if lim >= 0:
            over = (status == _march.FEASIBLE) & (counted[:, q] > lim)
            status[over] = _march.COUNTED
            blocker[over] = names.index(name)
    if prep.table_down_lps is not None:
        below = d @ prep.table_down_lps > math.sin(math.radians(prep.max_below_horizontal_deg)) + 1e-12
        bad = (status == _march.FEASIBLE) & below
        status[bad] = _march.ENTRY_SIDE
        blocker[bad] = -1


def trace_one(prep: CasePrep, tip_lps: Sequence[float], outward_lps: Sequence[float]) -> tuple[int, int, float]:
    """Trace one needle from ``tip_lps`` out along ``outward_lps`` (serial build: no thread start-up).

    Returns (status, blocker index, skin-to-tip length mm); the same rules as the search.
    """
    inv = getattr(prep, "_inv_affine", None)
    if inv is None:  # thousands of calls per plan: invert the crop's affine once
        inv = np.linalg.inv(prep.grid.affine)  # type: ignore[attr-defined]
        prep._inv_affine = inv  # type: ignore[attr-defined]
    tip = np.asarray(tip_lps, float)
    d = np.asarray(outward_lps, float).reshape(1, 3)
    d = d / np.linalg.norm(d)
    tk = np.ascontiguousarray((inv[:3, :3] @ tip + inv[:3, 3])[::-1], dtype=np.float64)
    status, blocker, exit_t, _c, _cap, counted, _cl, _f = _march.march_serial(
        prep.codes, tk, _index_dirs(prep, d), prep.spacing_kji, prep.needle_length_mm, prep.forbid,
        prep.capsule_id, prep.counted_id, len(prep.counted_names), prep.dist, np.float32(prep.quantum_mm),
        prep.box_lo, prep.box_shape, prep.box_off, prep.struct_of_code, prep.margins, np.float32(prep.cap_mm), True)
    _apply_limits(prep, d, status, blocker, counted[:, : len(prep.counted_names)])
    return int(status[0]), int(blocker[0]), float(exit_t[0])


def evaluate_directions(prep: CasePrep, directions: np.ndarray, stop_at_block: bool = True) -> RayTable:
    """Trace every direction (LPS unit vectors, outward from the target) through the prepared case."""
    t0 = time.perf_counter()
    d = np.asarray(directions, dtype=float).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    order = coherent_order(d)  # neighbouring rays share cache lines: much faster tracing
    out = _march.march(
        prep.codes, prep.target_kji.astype(np.float64), _index_dirs(prep, d[order]), prep.spacing_kji,
        prep.needle_length_mm, prep.forbid, prep.capsule_id, prep.counted_id, len(prep.counted_names), prep.dist,
        np.float32(prep.quantum_mm), prep.box_lo, prep.box_shape, prep.box_off, prep.struct_of_code, prep.margins,
        np.float32(prep.cap_mm), stop_at_block)
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    status, blocker, exit_t, clear, capsules, counted, counted_len, fissures = (a[back] for a in out)
    nc = len(prep.counted_names)
    counted, counted_len = counted[:, :nc], counted_len[:, :nc]
    _apply_limits(prep, d, status, blocker, counted)
    return RayTable(directions=d, status=status, blocker=blocker, length_mm=exit_t.astype(float),
                    clearance_mm=clear, capsules=capsules, counted=counted, counted_length_mm=counted_len,
                    fissures=fissures, seconds=time.perf_counter() - t0)


def block_summary(prep: CasePrep, rays: RayTable) -> dict[str, int]:
    out: dict[str, int] = {}
    names = prep.names
    for st in (_march.HIT, _march.MARGIN, _march.COUNTED):
        sel = rays.status == st
        if sel.any():
            ids, cnt = np.unique(rays.blocker[sel], return_counts=True)
            for i, c in zip(ids.tolist(), cnt.tolist(), strict=True):
                nm = names[i] if 0 <= i < len(names) else "unknown"
                extra = f" (margin {prep.margins[i]:g} mm)" if st == _march.MARGIN else ""
                out[f"{REASONS[st]} {nm}{extra}"] = c
    for st in (_march.TOO_LONG, _march.LEFT_IMAGE, _march.ENTRY_SIDE):
        c = int((rays.status == st).sum())
        if c:
            key = REASONS[st] + (f" ({prep.needle_length_mm:g} mm)" if st == _march.TOO_LONG else "")
            if st == _march.ENTRY_SIDE:
                key += f" (patient {prep.policy.patient_position})"
            out[key] = c
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _angles(prep: CasePrep, rays: RayTable, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = rays.directions[idx]
    entry = prep.target_lps + d * rays.length_mm[idx, None]
    axial = np.degrees(np.arcsin(np.clip(np.abs(d[:, 2]), 0, 1)))
    g = prep.grid
    ekji = g.world_to_index(entry)[:, ::-1]  # type: ignore[attr-defined]
    sp = g.spacing[::-1]  # type: ignore[attr-defined]
    rad = np.maximum(2, np.ceil(3.0 / sp)).astype(np.int64)
    n_kji = _march.skin_normals(prep.codes, np.ascontiguousarray(ekji), rad)
    n_world = n_kji[:, ::-1] @ g.affine[:3, :3].T  # type: ignore[attr-defined]
    norm = np.linalg.norm(n_world, axis=1)
    ok = norm > 1e-9
    cosang = np.ones(len(idx))
    cosang[ok] = np.einsum("ij,ij->i", n_world[ok] / norm[ok, None], d[ok])
    skin = np.degrees(np.arccos(np.clip(cosang, -1, 1)))
    return entry, axial, skin


def operator_angles(outward_lps: np.ndarray, position: str = "supine") -> tuple[np.ndarray, np.ndarray]:
    """(gantry in-plane angle, craniocaudal angle) in degrees for outward unit directions (N, 3) LPS.

    In-plane: in the axial plane, from the vertical above the table; + toward the patient's left
    (supine, prone, any) or anterior (lateral positions). Craniocaudal: out of the axial plane, + when
    the entry is cranial to the target.

    >>> [round(float(a), 1) for a in np.concatenate(operator_angles(np.array([[0.0, -1.0, 0.0]])))]
    [0.0, 0.0]
    """
    d = np.asarray(outward_lps, float).reshape(-1, 3)
    down = np.asarray(TABLE_DOWN_LPS.get(position, TABLE_DOWN_LPS["supine"]))
    up = -down
    side = np.array([0.0, -1.0, 0.0]) if position in ("left_lateral", "right_lateral") else np.array([1.0, 0.0, 0.0])
    inplane = np.degrees(np.arctan2(d @ side, d @ up))
    cc = np.degrees(np.arcsin(np.clip(d[:, 2], -1, 1)))
    return inplane, cc


def find_trajectories(labels: LabelMap, target_lps: Sequence[float], policy: TrajectoryPolicy | None = None,
                      needle_length_mm: float = 150.0, n_directions: int = 20000, *,
                      body_mask: np.ndarray | None = None, keep_away: dict[str, float] | None = None,
                      shortlist_size: int = 5, min_separation_deg: float = 10.0,
                      prep: CasePrep | None = None) -> TrajectoryResult:
    """All feasible straight paths from the skin to ``target_lps``; Pareto set and ranked shortlist.

    Raises InputError naming the constraint that blocked most directions when none is feasible.
    """
    prep = prep or prepare_case(labels, target_lps, policy, needle_length_mm, body_mask=body_mask,
                                keep_away=keep_away)
    rays = evaluate_directions(prep, fibonacci_directions(n_directions))
    blocked = block_summary(prep, rays)
    idx = np.flatnonzero(rays.feasible)
    res = TrajectoryResult(
        target_lps=tuple(prep.target_lps.tolist()), needle_length_mm=prep.needle_length_mm,
        n_directions=n_directions, n_feasible=int(idx.size), blocked_by=blocked,
        clearance_cap_mm=prep.cap_mm, risk_structures=prep.names, exempt_structures=prep.exempt,
        policy_version=prep.policy.policy_version, prep_seconds=prep.seconds, search_seconds=rays.seconds,
        notes=list(prep.notes), needle_gauge=prep.policy.needle_gauge, needle_diameter_mm=prep.needle_diameter_mm,
        patient_position=prep.policy.patient_position,
        keep_away_mm={nm: float(m) for nm, m in zip(prep.names, prep.margins.tolist(), strict=True)})
    if idx.size == 0:
        worst = next(iter(blocked), "unknown")
        raise InputError(f"no feasible path to the target among {n_directions} directions with a "
                         f"{prep.needle_length_mm:g} mm needle; most were blocked because the path "
                         f"{worst} ({blocked.get(worst, 0)} of {n_directions}). Blocked: "
                         + "; ".join(f"{k}: {v}" for k, v in blocked.items()), field="target")
    entry, axial, skin = _angles(prep, rays, idx)
    clear = rays.clearance_mm[idx].astype(float)
    min_clear = clear.min(axis=1) if clear.shape[1] else np.full(idx.size, prep.cap_mm)
    length = rays.length_mm[idx]
    caps = rays.capsules[idx].astype(float)
    cnt = rays.counted[idx].sum(axis=1).astype(float) if rays.counted.shape[1] else np.zeros(idx.size)
    clen = rays.counted_length_mm[idx] if rays.counted_length_mm is not None else np.zeros((idx.size, 0))
    fis = rays.fissures[idx] if rays.fissures is not None else np.zeros(idx.size, int)
    w = prep.policy.weights
    ref = prep.policy.clearance_reference_mm
    score = (w.length * length / prep.needle_length_mm
             + w.clearance * np.clip(1 - min_clear / ref, 0, 1)
             + w.axial_angle * axial / 90 + w.skin_angle * skin / 90
             + w.capsules * caps + w.counted * cnt
             + w.counted_length * clen.sum(axis=1) / ref + w.fissures * fis)
    obj = np.stack([np.round(length, 1), -np.round(min_clear, 1), np.round(axial, 1), np.round(skin, 1),
                    caps, cnt], axis=1)
    order = np.lexsort(obj.T[::-1])
    keep_sorted = _march.pareto_mask(np.ascontiguousarray(obj[order]))
    pareto = order[keep_sorted]
    pareto = pareto[np.argsort(score[pareto], kind="stable")]

    inplane, cc = operator_angles(rays.directions[idx], prep.policy.patient_position)

    def traj(n: int, rank: int = 0) -> Trajectory:
        d = rays.directions[idx[n]]
        return Trajectory(
            entry_lps=tuple(entry[n].tolist()), target_lps=tuple(prep.target_lps.tolist()),
            direction_lps=tuple((-d).tolist()), length_mm=float(length[n]),
            clearances_mm={nm: float(clear[n, s]) for s, nm in enumerate(prep.names)},
            min_clearance_mm=float(min_clear[n]), angle_to_axial_deg=float(axial[n]),
            angle_to_skin_normal_deg=float(skin[n]), capsules_crossed=int(caps[n]),
            counted_crossings={nm: int(rays.counted[idx[n], q]) for q, nm in enumerate(prep.counted_names)},
            score=float(score[n]), rank=rank, depth_mm=float(length[n]), inplane_angle_deg=float(inplane[n]),
            craniocaudal_angle_deg=float(cc[n]),
            counted_length_mm={nm: float(clen[n, q]) for q, nm in enumerate(prep.counted_names)},
            fissures_crossed=int(fis[n]))

    short: list[int] = []
    cos_sep = math.cos(math.radians(min_separation_deg))
    for n in pareto:
        dn = rays.directions[idx[n]]
        if all(float(dn @ rays.directions[idx[m]]) < cos_sep for m in short):
            short.append(int(n))
        if len(short) >= shortlist_size:
            break
    res.pareto = [traj(int(n)) for n in pareto]
    res.shortlist = [traj(n, rank=r + 1) for r, n in enumerate(short)]
    return res


def target_from_label(labels: LabelMap, name: str) -> np.ndarray:
    """Centroid (LPS mm) of a label, e.g. a tumour, to use as the target."""
    m = labels.mask(name)
    if not m.any():
        raise InputError(f"label {name!r} is empty", field="target")
    c = np.array(ndimage.center_of_mass(m))[::-1]
    return labels.grid.index_to_world(c)


def tumour_labels(labels: LabelMap) -> list[str]:
    return [n for n in labels.names if is_target_label(normalise_label_name(n))]
