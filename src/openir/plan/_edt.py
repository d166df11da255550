"""Parallel exact Euclidean distance transform (numba), float32, anisotropic spacing.

scipy's ``distance_transform_edt`` is exact but single-threaded and float64; on a 60-million-voxel
abdomen crop it takes ~10 s per structure, which would spend the whole per-case preparation budget
on one map. This is the same exact separable algorithm (Felzenszwalb & Huttenlocher's lower envelope
of parabolas, one 1-D pass per axis), parallel over lines, in float32, with an optional cap so
distances beyond the cap are stored as the cap.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_INF = np.float32(np.inf)


@nb.njit(cache=True, nogil=True)
def _envelope_1d(f, n, s, out, v, z):  # pragma: no cover - compiled
    """Squared distance along one line: out[q] = min_r (s*(q-r))**2 + f[r]."""
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == np.inf:
            continue
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
            continue
        xq = q * s
        while k >= 0:
            r = v[k]
            xr = r * s
            inter = ((fq + xq * xq) - (f[r] + xr * xr)) / (2.0 * (xq - xr))
            if inter <= z[k]:
                k -= 1
            else:
                break
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
        else:
            k += 1
            v[k] = q
            z[k] = inter
            z[k + 1] = np.inf
    if k < 0:
        for q in range(n):
            out[q] = np.inf
        return
    k = 0
    for q in range(n):
        x = q * s
        while z[k + 1] < x:
            k += 1
        d = x - v[k] * s
        out[q] = d * d + f[v[k]]


@nb.njit(parallel=True, cache=True)
def _edt_sq(mask, sk, sj, si):  # pragma: no cover - compiled
    nk, nj, ni = mask.shape
    d = np.empty((nk, nj, ni), dtype=np.float32)
    nmax = max(nk, nj, ni)
    # pass 1: along i (contiguous)
    for k in nb.prange(nk):
        f = np.empty(nmax, dtype=np.float64)
        out = np.empty(nmax, dtype=np.float64)
        v = np.empty(nmax, dtype=np.int64)
        z = np.empty(nmax + 1, dtype=np.float64)
        for j in range(nj):
            for i in range(ni):
                f[i] = 0.0 if mask[k, j, i] else np.inf
            _envelope_1d(f, ni, si, out, v, z)
            for i in range(ni):
                d[k, j, i] = out[i]
    # pass 2: along j
    for k in nb.prange(nk):
        f = np.empty(nmax, dtype=np.float64)
        out = np.empty(nmax, dtype=np.float64)
        v = np.empty(nmax, dtype=np.int64)
        z = np.empty(nmax + 1, dtype=np.float64)
        for i in range(ni):
            for j in range(nj):
                f[j] = d[k, j, i]
            _envelope_1d(f, nj, sj, out, v, z)
            for j in range(nj):
                d[k, j, i] = out[j]
    # pass 3: along k
    for j in nb.prange(nj):
        f = np.empty(nmax, dtype=np.float64)
        out = np.empty(nmax, dtype=np.float64)
        v = np.empty(nmax, dtype=np.int64)
        z = np.empty(nmax + 1, dtype=np.float64)
        for i in range(ni):
            for k in range(nk):
                f[k] = d[k, j, i]
            _envelope_1d(f, nk, sk, out, v, z)
            for k in range(nk):
                d[k, j, i] = out[k]
    return d


@nb.njit(parallel=True, cache=True)
def _sqrt_cap(d, cap):  # pragma: no cover - compiled
    flat = d.reshape(-1)
    for n in nb.prange(flat.size):
        x = np.sqrt(flat[n])
        flat[n] = x if x < cap else cap
    return d


def distance_map_mm(mask: np.ndarray, spacing_kji, cap_mm: float = np.inf) -> np.ndarray:
    """Distance (mm, float32) from every voxel centre to the nearest true voxel centre of ``mask``.

    ``spacing_kji`` is the voxel size along the array axes (k, j, i). Values above ``cap_mm`` are
    stored as ``cap_mm``; with no true voxel every value is the cap (or inf).
    """
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    sk, sj, si = (float(s) for s in spacing_kji)
    d = _edt_sq(m, sk, sj, si)
    return _sqrt_cap(d, np.float32(cap_mm))
