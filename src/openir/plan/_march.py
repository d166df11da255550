"""Compiled ray tracer: every candidate needle path from the target out to the skin, voxel-exact.

Each ray is walked voxel by voxel with the Amanatides-Woo traversal (J. Amanatides, A. Woo, "A fast
voxel traversal algorithm for ray tracing", Eurographics 1987): every voxel the segment touches is
visited once, so a 0.5 mm chord through a rib is seen (a half-voxel step could skip it). At each
voxel the tracer reads the class code (outside body / structure) and, for every risk structure whose
distance box holds the voxel, a lower bound of the distance from the segment inside that voxel to
the structure: the voxel centre's distance minus the farthest point of the chord from that centre
(distances are 1-Lipschitz), so a clearance is never over-stated.

Two builds of one ray function: ``march`` runs many directions in parallel (numba prange) and
``march_serial`` runs a few without threads (the planner checks one candidate needle at a time).
They are separate functions with separate cache entries; compiling one ``py_func`` twice with
different flags made both share one entry and recompile in every new process.
"""

from __future__ import annotations

import numba as nb
import numpy as np

FEASIBLE, HIT, MARGIN, TOO_LONG, LEFT_IMAGE, COUNTED, ENTRY_SIDE = 0, 1, 2, 3, 4, 5, 6


@nb.njit(cache=True, nogil=True)
def _trace(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
           box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block,
           status, blocker, exit_t, clear, capsules, counted, counted_len, fissures):  # pragma: no cover
    """Trace ray ``r`` (direction ``dirs[r]``: index units (k, j, i) per mm, outward); fill row ``r``.

    With ``stop_at_block`` a first pass reads only the class codes (most rays are blocked early and
    need no clearances); rays still feasible are walked again with the distance maps.
    """
    if stop_at_block:
        _walk(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
              box_lo, box_shape, box_off, struct_of_code, margins, cap, True, False,
              status, blocker, exit_t, clear, capsules, counted, counted_len, fissures)
        if status[r] != FEASIBLE:
            return
        capsules[r] = 0
        fissures[r] = 0
        for q in range(counted.shape[1]):
            counted[r, q] = 0
            counted_len[r, q] = 0.0
    _walk(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
          box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block, True,
          status, blocker, exit_t, clear, capsules, counted, counted_len, fissures)


@nb.njit(cache=True, nogil=True)
def _walk(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
          box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block, do_clear,
          status, blocker, exit_t, clear, capsules, counted, counted_len, fissures):  # pragma: no cover
    """One Amanatides-Woo walk of ray ``r``; clearances only when ``do_clear``."""
    nk, nj, ni = codes.shape
    ns = margins.shape[0]
    for s in range(ns):
        clear[r, s] = cap
    p0 = (target[0], target[1], target[2])
    dv = (dirs[r, 0], dirs[r, 1], dirs[r, 2])
    v = [int(np.floor(p0[0] + 0.5)), int(np.floor(p0[1] + 0.5)), int(np.floor(p0[2] + 0.5))]
    step = [0, 0, 0]
    t_max = [np.inf, np.inf, np.inf]
    t_delta = [np.inf, np.inf, np.inf]
    for a in range(3):
        if dv[a] > 0:
            step[a] = 1
            t_max[a] = (v[a] + 0.5 - p0[a]) / dv[a]
            t_delta[a] = 1.0 / dv[a]
        elif dv[a] < 0:
            step[a] = -1
            t_max[a] = (v[a] - 0.5 - p0[a]) / dv[a]
            t_delta[a] = -1.0 / dv[a]
    st = FEASIBLE
    blk = -1
    cur_caps = -2
    cur_cnt = -2
    prev_code = -1
    t_in = 0.0
    while True:
        k, j, i = v[0], v[1], v[2]
        if k < 0 or j < 0 or i < 0 or k >= nk or j >= nj or i >= ni:
            if st == FEASIBLE:
                st = LEFT_IMAGE
            break
        if t_in > needle_mm:  # the needle ends before this voxel (also when it is the skin's)
            if st == FEASIBLE:
                st = TOO_LONG
            break
        c = codes[k, j, i]
        if c == 0:  # first voxel outside the body: the skin is where the segment enters it
            exit_t[r] = t_in
            break
        # the next boundary crossed
        a = 0
        if t_max[1] < t_max[a]:
            a = 1
        if t_max[2] < t_max[a]:
            a = 2
        t_out = t_max[a]
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
            elif q > 0 and c != prev_code:  # another label of the same counted structure: a fissure
                fissures[r] += 1
            if q > 0:
                counted_len[r, q - 1] += t_out - t_in
        prev_code = c
        if do_clear and not (stop_at_block and st != FEASIBLE):
            # farthest point of this voxel's chord from its centre (mm): bounds the distance error
            far = 0.0
            for tt in (t_in, t_out):
                d2 = 0.0
                for b in range(3):
                    x = (p0[b] + tt * dv[b] - v[b]) * spacing[b]
                    d2 += x * x
                if d2 > far:
                    far = d2
            far = np.sqrt(far)
            for s in range(ns):
                kk = k - box_lo[s, 0]
                jj = j - box_lo[s, 1]
                ii = i - box_lo[s, 2]
                bk = box_shape[s, 0]
                bj = box_shape[s, 1]
                bi = box_shape[s, 2]
                if kk < 0 or jj < 0 or ii < 0 or kk >= bk or jj >= bj or ii >= bi:
                    continue
                val = dist[box_off[s] + (kk * bj + jj) * bi + ii] * quantum
                if val < cap:
                    val = val - far
                    if val < 0:
                        val = 0.0
                    if val < clear[r, s]:
                        clear[r, s] = val
        v[a] += step[a]
        t_max[a] += t_delta[a]
        t_in = t_out
    if st == FEASIBLE:
        for s in range(ns):
            if margins[s] > 0 and clear[r, s] < margins[s]:
                st = MARGIN
                blk = s
                break
    status[r] = st
    blocker[r] = blk


def _alloc(n, ns, n_counted):  # pragma: no cover - compiled inline by both builds
    return (np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int32), np.full(n, np.nan, dtype=np.float32),
            np.empty((n, ns), dtype=np.float32), np.zeros(n, dtype=np.int32),
            np.zeros((n, max(n_counted, 1)), dtype=np.int32), np.zeros((n, max(n_counted, 1)), dtype=np.float32),
            np.zeros(n, dtype=np.int32))


_alloc_jit = nb.njit(cache=True)(_alloc)


@nb.njit(parallel=True, cache=True)
def march(codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, n_counted, dist, quantum,
          box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block):  # pragma: no cover
    """Every direction in parallel. Returns status, blocker, exit_t (mm), clearances (N, S),
    capsules, counted crossings (N, C), length inside counted structures (N, C), fissures."""
    n = dirs.shape[0]
    status, blocker, exit_t, clear, capsules, counted, counted_len, fissures = _alloc_jit(
        n, margins.shape[0], n_counted)
    for r in nb.prange(n):
        _trace(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
               box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block,
               status, blocker, exit_t, clear, capsules, counted, counted_len, fissures)
    return status, blocker, exit_t, clear, capsules, counted, counted_len, fissures


@nb.njit(cache=True)
def march_serial(codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, n_counted, dist,
                 quantum, box_lo, box_shape, box_off, struct_of_code, margins, cap,
                 stop_at_block):  # pragma: no cover
    """Same as ``march`` without threads: for one or a few rays per call (no thread start-up)."""
    n = dirs.shape[0]
    status, blocker, exit_t, clear, capsules, counted, counted_len, fissures = _alloc_jit(
        n, margins.shape[0], n_counted)
    for r in range(n):
        _trace(r, codes, target, dirs, spacing, needle_mm, forbid, capsule_id, counted_id, dist, quantum,
               box_lo, box_shape, box_off, struct_of_code, margins, cap, stop_at_block,
               status, blocker, exit_t, clear, capsules, counted, counted_len, fissures)
    return status, blocker, exit_t, clear, capsules, counted, counted_len, fissures


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
