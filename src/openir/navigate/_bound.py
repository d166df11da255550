"""Compiled clearance bound (numba): the per-pose hot loop of `guidance.Guide`.

For samples x along the needle and one structure's distance map d (voxel centres, mm) on a box of
the grid: ``d(x)^2 >= sum_c w_c d(c)^2 - sum_c w_c |c - x|^2`` over the 8 voxel centres c around x with
trilinear weights w_c (the squared distance less ``|x|^2`` is concave; Jensen). Centres outside the
box count as ``cap`` (the box holds every centre nearer than the cap). Same bound as
`guidance.clearance_bound_numpy`, which the tests compare it with.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def min_bound(pts, inv, aff, dist, lo, use, cap):  # pragma: no cover - compiled
    """Smallest lower-bound distance over the samples ``pts`` with ``use[n]`` true (inf if none)."""
    nk, nj, ni = dist.shape
    cap2 = cap * cap
    best = np.inf
    for n in range(pts.shape[0]):
        if not use[n]:
            continue
        x, y, z = pts[n, 0], pts[n, 1], pts[n, 2]
        fi = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2] * z + inv[0, 3]
        fj = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2] * z + inv[1, 3]
        fk = inv[2, 0] * x + inv[2, 1] * y + inv[2, 2] * z + inv[2, 3]
        bi, bj, bk = np.floor(fi), np.floor(fj), np.floor(fk)
        ti, tj, tk = fi - bi, fj - bj, fk - bk
        acc = 0.0
        for a in range(2):
            wi = ti if a else 1.0 - ti
            ii = int(bi) + a
            for b in range(2):
                wj = tj if b else 1.0 - tj
                jj = int(bj) + b
                for c in range(2):
                    wk = tk if c else 1.0 - tk
                    kk = int(bk) + c
                    w = wi * wj * wk
                    if w == 0.0:
                        continue
                    cx = aff[0, 0] * ii + aff[0, 1] * jj + aff[0, 2] * kk + aff[0, 3]
                    cy = aff[1, 0] * ii + aff[1, 1] * jj + aff[1, 2] * kk + aff[1, 3]
                    cz = aff[2, 0] * ii + aff[2, 1] * jj + aff[2, 2] * kk + aff[2, 3]
                    li, lj, lk = ii - lo[2], jj - lo[1], kk - lo[0]
                    if 0 <= li < ni and 0 <= lj < nj and 0 <= lk < nk:
                        dv = float(dist[lk, lj, li])
                        d2 = min(dv * dv, cap2)
                    else:
                        d2 = cap2
                    acc += w * (d2 - ((cx - x) ** 2 + (cy - y) ** 2 + (cz - z) ** 2))
        if acc < best:
            best = acc
    if best == np.inf:
        return np.inf
    return np.sqrt(max(best, 0.0))
