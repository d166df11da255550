"""Brute-force reference for the trajectory search (slow; for tests and the benchmark ratio).

Voxels: every voxel of the crop near the ray is tested against the segment with a slab test (the
segment's parameter interval inside the voxel's cube), and the touched ones are walked in order of
entry: no traversal recurrence shared with the fast tracer. Clearances: exact distances from points
every 0.1 mm along the segment to the nearest voxel centre of each structure (k-d tree over the
structure's voxel centres, 0 inside it). It shares only the label coding (policy resolution) and
the limit rules (crossing counts, entry side) with the fast path.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from . import _march
from .trajectories import CasePrep, RayTable, _apply_limits, _index_dirs


def touched_voxels(p0: np.ndarray, dv: np.ndarray, t_end: float, shape: tuple[int, ...]):
    """Voxels (k, j, i) of a grid of ``shape`` the segment p0 + t dv, 0 <= t <= t_end (index space)
    passes through with a chord longer than 1e-9, with their entry and exit t, ordered by entry."""
    # candidates: the 3 x 3 x 3 neighbourhood of the voxel of samples every 0.05 index units (any
    # touched voxel holds a segment point within 0.05 of a sample, so it is a neighbour of its voxel);
    # the slab test below decides
    n = int(np.ceil(t_end * np.abs(dv).max() / 0.05)) + 1
    samples = p0 + np.linspace(0.0, t_end, n + 1)[:, None] * dv
    base = np.unique(np.floor(samples + 0.5).astype(np.int64), axis=0)
    off = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij"), axis=-1).reshape(-1, 3)
    v = np.unique((base[:, None, :] + off[None]).reshape(-1, 3), axis=0)
    v = v[np.all((v >= 0) & (v < np.array(shape)), axis=1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (v - 0.5 - p0) / dv
        tb = (v + 0.5 - p0) / dv
    t1 = np.minimum(ta, tb)
    t2 = np.maximum(ta, tb)
    flat = dv == 0  # parallel to a slab: inside for all t or never
    if flat.any():
        ins = (np.abs(v[:, flat] - p0[flat]) < 0.5).all(axis=1)
        t1[:, flat] = np.where(ins[:, None], -np.inf, np.inf)
        t2[:, flat] = np.where(ins[:, None], np.inf, -np.inf)
    t_in = np.maximum(t1.max(axis=1), 0.0)
    t_out = np.minimum(t2.min(axis=1), t_end)
    keep = t_out - t_in > 1e-9
    v, t_in, t_out = v[keep], t_in[keep], t_out[keep]
    o = np.argsort(t_in, kind="stable")
    return v[o], t_in[o], t_out[o]


def _image_exit_t(p0: np.ndarray, dv: np.ndarray, shape: tuple[int, ...]) -> float:
    t = np.inf
    for a in range(3):
        if dv[a] > 0:
            t = min(t, (shape[a] - 0.5 - p0[a]) / dv[a])
        elif dv[a] < 0:
            t = min(t, (-0.5 - p0[a]) / dv[a])
    return float(t)


def brute_force_rays(prep: CasePrep, directions: np.ndarray, sample_mm: float = 0.1) -> RayTable:
    g = prep.grid
    d = np.asarray(directions, float).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    dvs = _index_dirs(prep, d)
    ns = len(prep.structures)
    trees = []
    for s in range(ns):
        m = np.isin(prep.codes, np.flatnonzero(prep.struct_of_code == s))
        kji = np.argwhere(m)
        trees.append(cKDTree(g.index_to_world(kji[:, ::-1])) if len(kji) else None)  # type: ignore[attr-defined]
    n = len(d)
    nc = len(prep.counted_names)
    status = np.zeros(n, np.int8)
    blocker = np.full(n, -1, np.int32)
    length = np.full(n, np.nan)
    clear = np.full((n, ns), prep.cap_mm, np.float32)
    capsules = np.zeros(n, np.int32)
    counted = np.zeros((n, nc), np.int32)
    counted_len = np.zeros((n, nc), np.float32)
    fissures = np.zeros(n, np.int32)
    shape = prep.codes.shape
    p0 = prep.target_kji.astype(float)
    for r in range(n):
        t_img = _image_exit_t(p0, dvs[r], shape)
        t_end = min(t_img, prep.needle_length_mm + 2 * float(prep.spacing_kji.max()))
        vox, t_in, t_out = touched_voxels(p0, dvs[r], t_end, shape)
        codes = prep.codes[vox[:, 0], vox[:, 1], vox[:, 2]] if len(vox) else np.zeros(0, np.uint8)
        st = _march.FEASIBLE
        stop_t = t_end
        n_walk = len(codes)
        for m in range(len(codes)):
            if t_in[m] > prep.needle_length_mm:
                st = st if st != _march.FEASIBLE else _march.TOO_LONG
                stop_t, n_walk = t_in[m], m
                break
            if codes[m] == 0:
                length[r] = t_in[m]
                stop_t, n_walk = t_in[m], m
                break
            if prep.forbid[codes[m]] and st == _march.FEASIBLE:
                st = _march.HIT
                blocker[r] = prep.struct_of_code[codes[m]]
        else:
            if st == _march.FEASIBLE:
                st = _march.LEFT_IMAGE if t_img <= t_end else _march.TOO_LONG
        t = np.arange(0.0, stop_t + 1e-9, sample_mm)
        pts = prep.target_lps + t[:, None] * d[r]
        for s, tree in enumerate(trees):
            if tree is None or len(t) == 0:
                continue
            dd, _ = tree.query(pts, distance_upper_bound=prep.cap_mm + 1e-6)
            clear[r, s] = min(float(dd.min()), prep.cap_mm)
        cur_c, cur_q, prev = -2, -2, -1
        for m in range(n_walk):
            c = codes[m]
            cid = prep.capsule_id[c]
            if cid != -1:
                if cur_c == -2:
                    cur_c = cid
                elif cid != cur_c:
                    capsules[r] += (cur_c > 0) + (cid > 0)
                    cur_c = cid
            q = prep.counted_id[c]
            if q != -1:
                if cur_q == -2:
                    cur_q = q
                elif q != cur_q:
                    if cur_q > 0:
                        counted[r, cur_q - 1] += 1
                    if q > 0:
                        counted[r, q - 1] += 1
                    cur_q = q
                elif q > 0 and c != prev:
                    fissures[r] += 1
                if q > 0:
                    counted_len[r, q - 1] += t_out[m] - t_in[m]
            prev = c
        if st == _march.FEASIBLE:
            for s in range(ns):
                if prep.margins[s] > 0 and clear[r, s] < prep.margins[s]:
                    st, blocker[r] = _march.MARGIN, s
                    break
        status[r] = st
    _apply_limits(prep, d, status, blocker, counted)
    return RayTable(directions=d, status=status, blocker=blocker, length_mm=length, clearance_mm=clear,
                    capsules=capsules, counted=counted, counted_length_mm=counted_len, fissures=fissures)
