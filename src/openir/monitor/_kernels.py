"""Fused per-frame kernels (numba, parallel) so one 256x256x8 frame stays well under 50 ms.

Private helper: physics exposes CEM43/Arrhenius over whole histories (`physics.cem43`), not a
per-frame in-place increment over a voxel subset, so the exact linear-interval formulas are
restated here (same closed form: Sapareto-Dewey R^(43-T) integrated exactly for T linear in time,
split at 43 °C; Arrhenius by 3-point Gauss-Legendre) and tested against `physics.cem43` /
`physics.arrhenius_damage`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always")
def _cem_piece(t0, t1, dt, ln_r):
    a = ln_r * (43.0 - t0)
    x = -ln_r * (t1 - t0)
    if abs(x) < 1e-3:
        g = 1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0)))
    else:
        g = math.expm1(x) / x
    return dt * math.exp(a) * g


@njit(cache=True, inline="always")
def _cem_interval(t0, t1, dt, ln_hi, ln_lo):
    if t0 >= 43.0 and t1 >= 43.0:
        return _cem_piece(t0, t1, dt, ln_hi) / 60.0
    if t0 <= 43.0 and t1 <= 43.0:
        return _cem_piece(t0, t1, dt, ln_lo) / 60.0
    f = (43.0 - t0) / (t1 - t0)
    if t0 < 43.0:
        return (_cem_piece(t0, 43.0, f * dt, ln_lo) + _cem_piece(43.0, t1, (1 - f) * dt, ln_hi)) / 60.0
    return (_cem_piece(t0, 43.0, f * dt, ln_hi) + _cem_piece(43.0, t1, (1 - f) * dt, ln_lo)) / 60.0


@njit(cache=True, inline="always")
def _arr_interval(t0, t1, dt, ln_a, ea_over_r, floor_c):
    if t0 <= floor_c and t1 <= floor_c:
        return 0.0
    s = 0.0
    for q in range(3):
        if q == 0:
            xq, wq = -0.7745966692414834, 0.5555555555555556
        elif q == 1:
            xq, wq = 0.0, 0.8888888888888888
        else:
            xq, wq = 0.7745966692414834, 0.5555555555555556
        tq = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * xq
        if tq > floor_c:
            s += wq * math.exp(ln_a - ea_over_r / (tq + 273.15))
    return 0.5 * dt * s


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
                cem[v] += _cem_interval(t0, tn, dt, ln_hi, ln_lo)
                dmg[v] += _arr_interval(t0, tn, dt, ln_a, ea_over_r, floor_c)
                prev_t[v] = tn
                lethal[v] = cem[v] >= lethal_cem if use_cem else dmg[v] >= lethal_dmg
