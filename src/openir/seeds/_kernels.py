"""Compiled dose accumulation: sum precomputed TG-43 kernels of many seeds on a voxel grid.

The kernel is a table ``K[ir, iu]`` of dose rate per unit air-kerma strength (cGy h^-1 U^-1) on
a regular grid of distance r (mm) and u = sqrt(1 - |cos theta|) (theta: angle to the seed axis;
u is about linear in theta near the axis, where F(r, theta) changes fastest, and smooth at 90 deg).
Each seed only visits the voxels of the index box around its kernel sphere; the k planes of the
grid are shared among threads, so no two threads write the same voxel.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _lookup(table, r, c, inv_dr, nu_m1):  # pragma: no cover - compiled
    """Bilinear K(r, u) with r in mm and c = |cos theta|."""
    fr = r * inv_dr
    ir = int(fr)
    if ir >= table.shape[0] - 1:
        ir = table.shape[0] - 2
        fr = float(ir + 1)
    wr = fr - ir
    u = np.sqrt(max(0.0, 1.0 - c)) * nu_m1
    iu = int(u)
    if iu >= nu_m1:
        iu = nu_m1 - 1
    wu = u - iu
    a = table[ir, iu] + wu * (table[ir, iu + 1] - table[ir, iu])
    b = table[ir + 1, iu] + wu * (table[ir + 1, iu + 1] - table[ir + 1, iu])
    return a + wr * (b - a)


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def accumulate_grid(out, affine, seeds, boxes, table, dr_mm, r_max_mm):  # pragma: no cover
    """Add every seed's dose rate to ``out[k, j, i]``.

    ``seeds`` rows: x, y, z (LPS mm), dx, dy, dz (unit axis), S_K (U). ``boxes`` rows: index box
    i0, i1, j0, j1, k0, k1 (inclusive) of the seed's kernel sphere, clipped to the grid.
    Each row is done in two passes: table coordinates (r, u) for the whole row first (no branches,
    no table reads: the compiler vectorises the square roots and the division), then the table
    look-ups. This is 1.7x faster than one pass per voxel.
    """
    nk, nj, ni = out.shape
    ns = seeds.shape[0]
    inv_dr = 1.0 / dr_mm
    nu_m1 = table.shape[1] - 1
    nr_lim = table.shape[0] - 1.0001
    r2max = r_max_mm * r_max_mm
    a00, a10, a20 = affine[0, 0], affine[1, 0], affine[2, 0]
    for k in nb.prange(nk):
        fr = np.empty(ni, np.float64)
        fu = np.empty(ni, np.float64)
        for s in range(ns):
            if k < boxes[s, 4] or k > boxes[s, 5]:
                continue
            px, py, pz = seeds[s, 0], seeds[s, 1], seeds[s, 2]
            dx, dy, dz = seeds[s, 3], seeds[s, 4], seeds[s, 5]
            sk = seeds[s, 6]
            i0, i1 = boxes[s, 0], boxes[s, 1] + 1
            for j in range(boxes[s, 2], boxes[s, 3] + 1):
                bx = affine[0, 3] + affine[0, 1] * j + affine[0, 2] * k - px
                by = affine[1, 3] + affine[1, 1] * j + affine[1, 2] * k - py
                bz = affine[2, 3] + affine[2, 1] * j + affine[2, 2] * k - pz
                for i in range(i0, i1):
                    vx = bx + a00 * i
                    vy = by + a10 * i
                    vz = bz + a20 * i
                    r2 = vx * vx + vy * vy + vz * vz
                    r = np.sqrt(r2)
                    c = abs(vx * dx + vy * dy + vz * dz) / max(r, 1e-9)
                    fr[i] = min(r * inv_dr, nr_lim) if r2 <= r2max else -1.0
                    fu[i] = np.sqrt(max(0.0, 1.0 - c)) * nu_m1
                row = out[k, j]
                for i in range(i0, i1):
                    f = fr[i]
                    if f < 0.0:
                        continue
                    ir = int(f)
                    wr = f - ir
                    u = fu[i]
                    iu = min(int(u), nu_m1 - 1)
                    wu = u - iu
                    a = table[ir, iu] + wu * (table[ir, iu + 1] - table[ir, iu])
                    b = table[ir + 1, iu] + wu * (table[ir + 1, iu + 1] - table[ir + 1, iu])
                    row[i] += sk * (a + wr * (b - a))


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def accumulate_points(out, points, seeds, table, dr_mm, r_max_mm):  # pragma: no cover
    """Dose rate at arbitrary points ``(n, 3)`` LPS mm from all seeds (same kernel as the grid)."""
    inv_dr = 1.0 / dr_mm
    nu_m1 = table.shape[1] - 1
    r2max = r_max_mm * r_max_mm
    for p in nb.prange(points.shape[0]):
        acc = 0.0
        for s in range(seeds.shape[0]):
            vx = points[p, 0] - seeds[s, 0]
            vy = points[p, 1] - seeds[s, 1]
            vz = points[p, 2] - seeds[s, 2]
            r2 = vx * vx + vy * vy + vz * vz
            if r2 > r2max:
                continue
            r = np.sqrt(r2)
            c = 1.0
            if r > 1e-9:
                c = abs(vx * seeds[s, 3] + vy * seeds[s, 4] + vz * seeds[s, 5]) / r
            acc += seeds[s, 6] * _lookup(table, r, c, inv_dr, nu_m1)
        out[p] = acc


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def influence_matrix(out, points, seeds, table, dr_mm, r_max_mm):  # pragma: no cover
    """``out[p, s]`` = dose rate at point p from seed s (seeds' S_K column included), float32."""
    inv_dr = 1.0 / dr_mm
    nu_m1 = table.shape[1] - 1
    r2max = r_max_mm * r_max_mm
    for p in nb.prange(points.shape[0]):
        for s in range(seeds.shape[0]):
            vx = points[p, 0] - seeds[s, 0]
            vy = points[p, 1] - seeds[s, 1]
            vz = points[p, 2] - seeds[s, 2]
            r2 = vx * vx + vy * vy + vz * vz
            if r2 > r2max:
                out[p, s] = 0.0
                continue
            r = np.sqrt(r2)
            c = 1.0
            if r > 1e-9:
                c = abs(vx * seeds[s, 3] + vy * seeds[s, 4] + vz * seeds[s, 5]) / r
            out[p, s] = seeds[s, 6] * _lookup(table, r, c, inv_dr, nu_m1)
