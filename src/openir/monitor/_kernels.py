"""Fused per-frame kernels (numba, parallel) so one 256x256x8 frame stays well under 50 ms.

The dose increments call the physics package's scalar numba kernels (`cem43_interval`,
`arrhenius_interval`: exact for temperature linear between frames), fused here with drift removal,
temperature, uncertainty and the lethal flag in one pass over the voxels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from openir.physics.dose import arrhenius_interval, cem43_interval

_TWO_PI = 2.0 * math.pi


@njit(parallel=True, cache=True)
def unwrap_step(phase, base_phase, prev):  # pragma: no cover - compiled
    """prev <- the value of wrap(phase - base_phase) + 2 pi n nearest prev (flat float32 arrays).

    wrap(phase - base_phase) equals angle(z conj(z_base)): the complex-conjugate product's phase.
    """
    n = phase.size
    for v in prange(n):
        d = phase[v] - base_phase[v]
        d -= _TWO_PI * math.floor((d + math.pi) / _TWO_PI)
        prev[v] = d + _TWO_PI * round((prev[v] - d) / _TWO_PI)


@njit(parallel=True, cache=True)
def temperature_dose_step(unwrapped, mag, valid, px, py, pz, exps, coeffs, shape, inv_k, body_c, mag_min,
                          sig_factor, prev_t, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem,
                          lethal_dmg, use_cem, temp_out, sigma_out, cem, dmg, lethal, valid_out):  # pragma: no cover
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
                ok = valid[v] and mag[v] >= mag_min
                valid_out[v] = ok
                if ok:
                    drift = 0.0
                    if nt > 0:
                        xi = px[1, i]
                        drift = c0 + xi * (c1 + xi * c2)
                    tn = body_c + (unwrapped[v] - drift) * inv_k
                    temp_out[v] = tn
                    sigma_out[v] = sig_factor / mag[v]
                else:
                    tn = body_c
                    temp_out[v] = np.nan
                    sigma_out[v] = np.nan
                t0 = prev_t[v]
                cem[v] += cem43_interval(t0, tn, dt, ln_hi, ln_lo)
                dmg[v] += arrhenius_interval(t0, tn, dt, ln_a, ea_over_r, floor_c)
                prev_t[v] = tn
                lethal[v] = cem[v] >= lethal_cem if use_cem else dmg[v] >= lethal_dmg
