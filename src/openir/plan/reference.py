"""Brute-force reference for the trajectory search (slow; for tests and the benchmark ratio).

Every path is sampled at 0.25 mm in world coordinates; each sample is checked voxel by voxel (the
code of its nearest voxel), and clearances are exact distances from each sample to the nearest
voxel centre of each structure (k-d tree over the structure's voxel centres, 0 inside it). It
shares only the label coding (policy resolution) with the fast path, not its sampling or distances.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from . import _march
from .trajectories import CasePrep, RayTable


def brute_force_rays(prep: CasePrep, directions: np.ndarray, step_mm: float = 0.25) -> RayTable:
    g = prep.grid
    d = np.asarray(directions, float).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    ns = len(prep.structures)
    trees = []
    for s in range(ns):
        codes_s = np.flatnonzero(prep.struct_of_code == s)
        m = np.isin(prep.codes, codes_s)
        kji = np.argwhere(m)
        trees.append((cKDTree(g.index_to_world(kji[:, ::-1])) if len(kji) else None, m))  # type: ignore[attr-defined]
    n = len(d)
    status = np.zeros(n, np.int8)
    blocker = np.full(n, -1, np.int32)
    length = np.full(n, np.nan)
    clear = np.full((n, ns), prep.cap_mm, np.float32)
    capsules = np.zeros(n, np.int32)
    counted = np.zeros((n, len(prep.counted_names)), np.int32)
    shape = np.array(prep.codes.shape)
    nmax = int(math.floor(prep.needle_length_mm / step_mm))
    for r in range(n):
        t = np.arange(nmax + 2) * step_mm
        pts = prep.target_lps + t[:, None] * d[r]
        idx = np.floor(g.world_to_index(pts)[:, ::-1] + 0.5).astype(int)  # type: ignore[attr-defined]
        inside_img = np.all((idx >= 0) & (idx < shape), axis=1)
        st = _march.FEASIBLE
        stop = len(t)
        codes = np.zeros(len(t), np.int64)
        codes[inside_img] = prep.codes[idx[inside_img, 0], idx[inside_img, 1], idx[inside_img, 2]]
        for m in range(len(t)):
            if not inside_img[m]:
                st = st if st != _march.FEASIBLE else _march.LEFT_IMAGE
                stop = m
                break
            if codes[m] == 0:
                length[r] = (m - 0.5) * step_mm
                stop = m
                break
            if t[m] > prep.needle_length_mm:
                st = st if st != _march.FEASIBLE else _march.TOO_LONG
                stop = m
                break
            if prep.forbid[codes[m]] and st == _march.FEASIBLE:
                st = _march.HIT
                blocker[r] = prep.struct_of_code[codes[m]]
        path_codes = codes[:stop]
        for s, (tree, m) in enumerate(trees):
            if tree is None or stop == 0:
                continue
            dd, _ = tree.query(pts[:stop], distance_upper_bound=prep.cap_mm + 1e-6)
            ii = idx[:stop]
            dd = np.where(m[ii[:, 0], ii[:, 1], ii[:, 2]], 0.0, dd)
            clear[r, s] = min(float(dd.min()), prep.cap_mm)
        # capsule and counted crossings, walking the label sequence
        cur_c, cur_q = -2, -2
        for c in path_codes:
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
        if st == _march.FEASIBLE:
            for s in range(ns):
                if prep.margins[s] > 0 and clear[r, s] < prep.margins[s]:
                    st, blocker[r] = _march.MARGIN, s
                    break
        status[r] = st
    return RayTable(directions=d, status=status, blocker=blocker, length_mm=length, clearance_mm=clear,
                    capsules=capsules, counted=counted)
