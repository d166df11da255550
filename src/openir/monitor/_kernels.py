"""Fused per-frame kernels (numba, parallel): a 256x256x8 frame in a few milliseconds.

Three passes over the voxels, each fused so an array is read once:

1. `unwrap_step`: which voxels this frame can be trusted (finite, SNR above the floor, monitored),
   and the temporal unwrap of their phase; untrusted voxels keep their last unwrapped phase, so a
   NaN or a noise-only value never reaches the history.
2. `spatial_fix`: a voxel whose unwrapped phase is more than pi from most of its in-plane
   neighbours is off by a wrap (noise carried it across +-pi between two frames): it is moved to
   the cycle of the neighbours' median. A voxel with fewer than three trusted neighbours (isolated
   noise in air, a lone edge voxel) is not trusted this frame.
3. `temperature_dose_step`: drift removal, temperature, uncertainty, dose increment and lethal
   flag. The dose increments call the physics package's scalar kernels (`cem43_interval`,
   `arrhenius_interval`: exact for temperature linear between frames). A monitored voxel not trusted
   this frame holds its last temperature (a short gap is bridged, not read as cooling to 37 °C).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from openir.physics.dose import arrhenius_interval, cem43_interval

_TWO_PI = 2.0 * math.pi


@njit(parallel=True, cache=True)
def unwrap_step(phase, base_phase, mag, monitored, mag_min, prev, ok_out, step_out):  # pragma: no cover - compiled
    """ok_out <- monitored & finite & mag >= mag_min; for those, prev <- the value of
    wrap(phase - base_phase) + 2 pi n nearest prev (flat float32 arrays); step_out <- the change.

    wrap(phase - base_phase) equals angle(z conj(z_base)): the complex-conjugate product's phase.
    """
    n = phase.size
    for v in prange(n):
        p = phase[v]
        m = mag[v]
        ok = monitored[v] and math.isfinite(p) and math.isfinite(m) and m >= mag_min
        ok_out[v] = ok
        if ok:
            d = p - base_phase[v]
            d -= _TWO_PI * math.floor((d + math.pi) / _TWO_PI)
            new = d + _TWO_PI * round((prev[v] - d) / _TWO_PI)
            step_out[v] = new - prev[v]
            prev[v] = new
        else:
            step_out[v] = 0.0


@njit(parallel=True, cache=True)
def spatial_fix(u, ok, ok_prev, step, nk, nj, ni, delta, min_neighbours):  # pragma: no cover - compiled
    """Wrap correction against the in-plane neighbours (see the module docstring).

    ``u`` (unwrapped phase), ``ok``, ``ok_prev`` (trusted in the previous frame) and ``step`` (this
    frame's phase change) are flat [k, j, i]; ``delta`` a float32 scratch of the same size. Only a
    voxel whose phase just moved by more than pi/2, or that was not trusted before, is a suspect:
    real heating changes the phase by far less per frame, so a steep but genuine hot spot built up
    over many frames is never "corrected". Returns the number of voxels moved by a wrap; ``ok``
    loses voxels with fewer than ``min_neighbours`` trusted neighbours.
    """
    rows = nk * nj
    moved = np.zeros(rows, np.int64)
    isolated = np.zeros(u.size, np.bool_)
    for r in prange(rows):
        k = r // nj
        j = r - k * nj
        buf = np.empty(8, np.float32)
        for i in range(ni):
            v = (k * nj + j) * ni + i
            delta[v] = 0.0
            if not ok[v]:
                continue
            x = u[v]
            nv = 0
            far = 0
            for dj in range(-1, 2):
                jj = j + dj
                if jj < 0 or jj >= nj:
                    continue
                for di in range(-1, 2):
                    ii = i + di
                    if (dj == 0 and di == 0) or ii < 0 or ii >= ni:
                        continue
                    w = (k * nj + jj) * ni + ii
                    if ok[w]:
                        buf[nv] = u[w]
                        nv += 1
                        if abs(u[w] - x) > math.pi:
                            far += 1
            if nv < min_neighbours:
                isolated[v] = True
            elif 2 * far > nv and (abs(step[v]) > 0.5 * math.pi or not ok_prev[v]):
                med = np.median(buf[:nv])
                delta[v] = _TWO_PI * round((med - x) / _TWO_PI)
                moved[r] += 1
    for v in prange(u.size):
        if delta[v] != 0.0:
            u[v] += delta[v]
        if isolated[v]:
            ok[v] = False
    return moved.sum()


@njit(parallel=True, cache=True)
def temperature_dose_step(unwrapped, mag, ok, monitored, px, py, pz, exps, coeffs, shape, inv_k, body_c,
                          sig_factor, prev_t, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem,
                          lethal_dmg, use_cem, temp_out, sigma_out, cem, dmg, lethal):  # pragma: no cover
    """Drift removal, temperature, sigma, dose increment and lethal flag for every voxel (flat arrays)."""
    nk, nj, ni = shape
    nt = coeffs.size
    for k in prange(nk):
        for j in range(nj):
            # the drift polynomial along this row: c0 + c1 x + c2 x^2
            c0 = 0.0
            c1 = 0.0
            c2 = 0.0
            for t in range(nt):
                w = coeffs[t] * py[exps[t, 1], j] * pz[exps[t, 2], k]
                if exps[t, 0] == 0:
                    c0 += w
                elif exps[t, 0] == 1:
                    c1 += w
                else:
                    c2 += w
            for i in range(ni):
                v = (k * nj + j) * ni + i
                t0 = prev_t[v]
                if ok[v]:
                    drift = 0.0
                    if nt > 0:
                        xi = px[1, i]
                        drift = c0 + xi * (c1 + xi * c2)
                    tn = body_c + (unwrapped[v] - drift) * inv_k
                    temp_out[v] = tn
                    sigma_out[v] = sig_factor / mag[v]
                else:
                    tn = t0 if monitored[v] else body_c  # a gap in a monitored voxel: hold
                    temp_out[v] = np.nan
                    sigma_out[v] = np.nan
                cem[v] += cem43_interval(t0, tn, dt, ln_hi, ln_lo)
                dmg[v] += arrhenius_interval(t0, tn, dt, ln_a, ea_over_r, floor_c)
                prev_t[v] = tn
                lethal[v] = cem[v] >= lethal_cem if use_cem else dmg[v] >= lethal_dmg
