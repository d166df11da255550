"""Compiled ray marcher: every candidate direction from the target out to the skin, in parallel.

Each ray steps outward from the target in index space; at each step it reads the class code of the
nearest voxel (outside body / structure) and, for every risk structure whose distance box it is in,
the precomputed distance. Parallel over directions (numba prange).
"""

from __future__ import annotations

import numba as nb
import numpy as np

FEASIBLE, HIT, MARGIN, TOO_LONG, LEFT_IMAGE, COUNTED = 0, 1, 2, 3, 4, 5


@nb.njit(parallel=True, cache=True)
def march(codes, target, steps, step_mm, max_steps, forbid, capsule_id, counted_id, n_counted,
          dist, quantum, box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block):  # pragma: no cover
    n = steps.shape[0]
    nk, nj, ni = codes.shape
    ns = margins.shape[0]
    status = np.zeros(n, dtype=np.int8)
    blocker = np.full(n, -1, dtype=np.int32)
    exit_t = np.full(n, np.nan, dtype=np.float32)
    clear = np.empty((n, ns), dtype=np.float32)
    capsules = np.zeros(n, dtype=np.int32)
    counted = np.zeros((n, max(n_counted, 1)), dtype=np.int32)
    for r in nb.prange(n):
        for s in range(ns):
            clear[r, s] = cap
        sk, sj, si = steps[r, 0], steps[r, 1], steps[r, 2]
        cur_caps = -2
        cur_cnt = -2
        st = FEASIBLE
        blk = -1
        last = 0
        for m in range(max_steps + 1):
            last = m
            fk = target[0] + m * sk
            fj = target[1] + m * sj
            fi = target[2] + m * si
            k = int(np.floor(fk + 0.5))
            j = int(np.floor(fj + 0.5))
            i = int(np.floor(fi + 0.5))
            if k < 0 or j < 0 or i < 0 or k >= nk or j >= nj or i >= ni:
                if st == FEASIBLE:
                    st = LEFT_IMAGE
                break
            c = codes[k, j, i]
            if c == 0:  # first sample outside the body: the skin lies half a step back
                exit_t[r] = (m - 0.5) * step_mm
                break
            if m == max_steps:
                if st == FEASIBLE:
                    st = TOO_LONG
                break
            if forbid[c] and st == FEASIBLE:
                st = HIT
                blk = struct_of_code[c]
                if stop_at_block:
                    break
            cid = capsule_id[c]
            if cid != -1:
                if cur_caps == -2:
                    cur_caps = cid
                elif cid != cur_caps:
                    if cur_caps > 0:
                        capsules[r] += 1
                    if cid > 0:
                        capsules[r] += 1
                    cur_caps = cid
            q = counted_id[c]
            if q != -1:
                if cur_cnt == -2:
                    cur_cnt = q
                elif q != cur_cnt:
                    if cur_cnt > 0:
                        counted[r, cur_cnt - 1] += 1
                    if q > 0:
                        counted[r, q - 1] += 1
                    cur_cnt = q
        # distances: for each structure only the steps inside its box (slab test), up to the
        # last step the label march reached
        m_end = last - 1 if last > 0 else 0
        ns_ray = 0 if stop_at_block and st != FEASIBLE else ns  # rejected rays need no clearances
        for s in range(ns_ray):
            bk = box_shape[s, 0]
            bj = box_shape[s, 1]
            bi = box_shape[s, 2]
            if bk == 0:
                continue
            lo_t = 0.0
            hi_t = float(m_end)
            o = (target[0], target[1], target[2])
            st3 = (sk, sj, si)
            empty = False
            for a in range(3):
                lo_b = box_lo[s, a] - 0.5
                hi_b = box_lo[s, a] + box_shape[s, a] - 0.5
                if st3[a] == 0.0:
                    if o[a] < lo_b or o[a] >= hi_b:
                        empty = True
                        break
                else:
                    t1 = (lo_b - o[a]) / st3[a]
                    t2 = (hi_b - o[a]) / st3[a]
                    if t1 > t2:
                        t1, t2 = t2, t1
                    if t1 > lo_t:
                        lo_t = t1
                    if t2 < hi_t:
                        hi_t = t2
            if empty or hi_t < lo_t:
                continue
            m0 = max(int(np.floor(lo_t)) - 1, 0)
            m1 = min(int(np.ceil(hi_t)) + 1, m_end)
            best = clear[r, s]
            for mm in range(m0, m1 + 1):
                k = int(np.floor(target[0] + mm * sk + 0.5)) - box_lo[s, 0]
                j = int(np.floor(target[1] + mm * sj + 0.5)) - box_lo[s, 1]
                i = int(np.floor(target[2] + mm * si + 0.5)) - box_lo[s, 2]
                if k < 0 or j < 0 or i < 0 or k >= bk or j >= bj or i >= bi:
                    continue
                v = dist[box_off[s] + (k * bj + j) * bi + i] * quantum
                if v < best:
                    best = v
            clear[r, s] = best
        if st == FEASIBLE:
            for s in range(ns):
                if margins[s] > 0 and clear[r, s] < margins[s]:
                    st = MARGIN
                    blk = s
                    break
        status[r] = st
        blocker[r] = blk
    return status, blocker, exit_t, clear, capsules, counted


@nb.njit(parallel=True, cache=True)
def skin_normals(codes, points, radius_kji):  # pragma: no cover
    """Outward normal (index space, k j i) at each skin point: from the local body centroid outward."""
    n = points.shape[0]
    nk, nj, ni = codes.shape
    out = np.zeros((n, 3), dtype=np.float64)
    rk, rj, ri = radius_kji[0], radius_kji[1], radius_kji[2]
    for r in nb.prange(n):
        ck = int(np.floor(points[r, 0] + 0.5))
        cj = int(np.floor(points[r, 1] + 0.5))
        ci = int(np.floor(points[r, 2] + 0.5))
        sk = 0.0
        sj = 0.0
        si = 0.0
        cnt = 0
        for k in range(max(ck - rk, 0), min(ck + rk + 1, nk)):
            for j in range(max(cj - rj, 0), min(cj + rj + 1, nj)):
                for i in range(max(ci - ri, 0), min(ci + ri + 1, ni)):
                    dk = (k - ck) / rk
                    dj = (j - cj) / rj
                    di = (i - ci) / ri
                    if dk * dk + dj * dj + di * di > 1.0:
                        continue
                    if codes[k, j, i] != 0:
                        sk += k
                        sj += j
                        si += i
                        cnt += 1
        if cnt > 0:
            out[r, 0] = points[r, 0] - sk / cnt
            out[r, 1] = points[r, 1] - sj / cnt
            out[r, 2] = points[r, 2] - si / cnt
    return out


@nb.njit(cache=True)
def pareto_mask(obj):  # pragma: no cover
    """Non-dominated rows of ``obj`` (minimise every column); rows pre-sorted lexicographically."""
    n, m = obj.shape
    front = np.empty(n, dtype=np.int64)
    nf = 0
    keep = np.zeros(n, dtype=np.bool_)
    for a in range(n):
        dominated = False
        for f in range(nf):
            b = front[f]
            le = True
            lt = False
            for c in range(m):
                if obj[b, c] > obj[a, c]:
                    le = False
                    break
                if obj[b, c] < obj[a, c]:
                    lt = True
            if le and lt:
                dominated = True
                break
        if not dominated:
            front[nf] = a
            nf += 1
            keep[a] = True
    return keep
