"""Fused per-frame kernels (numba, parallel): one main pass over the voxels per frame.

A voxel is trusted in a frame when it is monitored (tissue with a baseline above the SNR floor, not
fat), its phase and magnitude are finite, its magnitude is above the floor, and at least three of
its in-plane neighbours are trusted too (a lone voxel is noise in air or a stray edge voxel).

1. `usable_mask` and `reference_values`: cheap passes that decide whether the frame can be used
   and give the unwrapped phase of the drift reference voxels, so the drift is fitted before the
   main pass and nothing is changed for a frame that is then skipped.
2. `frame_step`, one pass over every voxel: trust, temporal unwrap (untrusted voxels keep their
   last unwrapped phase, so a NaN or a noise-only value never reaches the history), drift removal,
   temperature, uncertainty, CEM43 and Arrhenius increments (exact for temperature linear between
   frames: the physics package's Arrhenius kernel, and its CEM43 integral with R^(43 - T) kept from
   the previous frame so each voxel needs one exponential, `cem43_cached`) and the lethal flag. A monitored voxel not trusted
   this frame holds its last temperature (a short gap is bridged, not read as cooling to 37 °C).
   A voxel whose phase just moved by more than pi/2, or that was not trusted in the previous frame,
   is a suspect: real heating changes the phase far less per frame, so only a suspect can have
   picked up a wrap through noise. Suspects are deferred to
3. `fix_deferred`: a suspect more than pi from most of its trusted in-plane neighbours is moved to
   the cycle of their median (a block of them from its rim inwards, one round per ring), then gets
   its temperature and dose. A steep but genuine hot spot, built up over many frames in small
   steps, is never a suspect and never "corrected".
"""

from __future__ import annotations

import math
import os

# OpenMP threads spin while they wait by default; on a machine shared with other work (a scanner's
# reconstruction, other users) a parallel frame then took 10-30x longer (measured: 34 ms against
# 1.2 ms for one pass). Waiting passively costs microseconds per pass. Set before numba starts
# OpenMP; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from openir.physics.dose import arrhenius_interval

_TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always", error_model="numpy")
def _usable(p, m, mon, mag_min):  # pragma: no cover - compiled
    return mon and math.isfinite(p) and math.isfinite(m) and m >= mag_min


@njit(cache=True, inline="always", error_model="numpy")
def _unwrap(p, base, prev):  # pragma: no cover - compiled
    """The value of wrap(p - base) + 2 pi n nearest ``prev``; wrap(p - base) = angle(z conj(z_base))."""
    d = p - base
    d -= _TWO_PI * math.floor((d + math.pi) / _TWO_PI)
    return d + _TWO_PI * round((prev - d) / _TWO_PI)


@njit(parallel=True, cache=True, error_model="numpy")
def usable_mask(phase, mag, monitored, mag_min, out):  # pragma: no cover - compiled
    """out <- monitored & finite & above the SNR floor (flat); returns (monitored, usable) counts."""
    n = phase.size
    tot = 0
    good = 0
    for v in prange(n):
        u = _usable(phase[v], mag[v], monitored[v], mag_min)
        out[v] = u
        if monitored[v]:
            tot += 1
            if u:
                good += 1
    return tot, good


@njit(parallel=True, cache=True, error_model="numpy")
def baseline_sse(mag, stack, stride):  # pragma: no cover - compiled
    """Sum of squared differences between ``mag`` [k, j, i] sampled every ``stride`` voxels in plane
    and each baseline of ``stack`` [b, k, j', i'] (already sampled); a non-finite voxel counts as 0."""
    nb, nk, nj, ni = stack.shape
    out = np.zeros((nk, nb))
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                m = mag[k, j * stride, i * stride]
                if not math.isfinite(m):
                    m = 0.0
                for b in range(nb):
                    d = m - stack[b, k, j, i]
                    out[k, b] += d * d
    return out.sum(axis=0)


@njit(cache=True)
def reference_values(idx, phase, base, mag, monitored, mag_min, u, ok_prev, vals, use, suspect):  # pragma: no cover
    """Unwrapped phase of the drift reference voxels ``idx`` this frame (``u`` is not changed)."""
    for q in range(idx.size):
        v = idx[q]
        if _usable(phase[v], mag[v], monitored[v], mag_min):
            new = _unwrap(phase[v], base[v], u[v])
            vals[q] = new
            use[q] = True
            suspect[q] = abs(new - u[v]) > 0.5 * math.pi or not ok_prev[v]
        else:
            use[q] = False
            suspect[q] = False


@njit(cache=True, inline="always", error_model="numpy")
def _piece(e0, e1, x, dt):  # pragma: no cover - compiled
    """Integral over ``dt`` of E(s) = e0 exp(x s / dt) (E = R^(43 - T) for T linear): dt (e1 - e0) / x."""
    if abs(x) < 1e-3:
        return dt * e0 * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))))
    return dt * (e1 - e0) / x


@njit(cache=True, inline="always", error_model="numpy")
def cem43_cached(t0, t1, e0, dt, ln_hi, ln_lo):  # pragma: no cover - compiled
    """(CEM43 minutes, R^(43 - t1)) for T linear from ``t0`` to ``t1`` over ``dt`` s, given
    ``e0`` = R^(43 - t0) from the previous frame: the same exact integral as
    `physics.dose.cem43_interval`, with one exponential per voxel and frame instead of two
    (none while the temperature holds)."""
    if t1 == t0:
        return dt * e0 / 60.0, e0
    ln1 = ln_hi if t1 >= 43.0 else ln_lo
    e1 = math.exp(ln1 * (43.0 - t1))
    if (t0 >= 43.0) == (t1 >= 43.0) or t0 == 43.0 or t1 == 43.0:
        ln = ln_hi if (t0 >= 43.0 and t1 >= 43.0) else ln_lo
        return _piece(e0, e1, -ln * (t1 - t0), dt) / 60.0, e1
    ln0 = ln_hi if t0 >= 43.0 else ln_lo
    f = (43.0 - t0) / (t1 - t0)  # fraction of the step before crossing 43 °C, where R^(43 - T) = 1
    a = _piece(e0, 1.0, -ln0 * (43.0 - t0), f * dt)
    b = _piece(1.0, e1, -ln1 * (t1 - 43.0), (1.0 - f) * dt)
    return (a + b) / 60.0, e1


@njit(cache=True, inline="always", error_model="numpy")
def _dose(v, t0, tn, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem, lethal_dmg, use_cem, prev_t, cem, dmg,
          lethal, e_prev):  # pragma: no cover - compiled
    inc, e1 = cem43_cached(t0, tn, e_prev[v], dt, ln_hi, ln_lo)
    cem[v] += inc
    e_prev[v] = e1
    if t0 > floor_c or tn > floor_c:
        dmg[v] += arrhenius_interval(t0, tn, dt, ln_a, ea_over_r, floor_c)
    prev_t[v] = tn
    lethal[v] = cem[v] >= lethal_cem if use_cem else dmg[v] >= lethal_dmg


@njit(parallel=True, cache=True, error_model="numpy")
def frame_step(phase, base, mag, usable, monitored, row_lo, row_hi, min_nb, u, ok_prev, ok_out, deferred, px, py, pz,
               exps, coeffs,
               shape, inv_k, body_c, sig_factor, prev_t, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem,
               lethal_dmg, use_cem, temp_out, sigma_out, cem, dmg, lethal, e_prev):  # pragma: no cover - compiled
    """The main pass (see the module docstring); flat arrays. Only voxels from ``row_lo[r]`` to
    ``row_hi[r]`` of each row r are visited (the monitored span); the caller fills ``temp_out`` and
    ``sigma_out`` with NaN and ``ok_out``/``deferred`` with False. Unmonitored voxels get no dose.
    Returns the number of deferred suspects."""
    nk, nj, ni = shape
    nt = coeffs.size
    rows = nk * nj
    n_def = np.zeros(rows, np.int64)
    for r in prange(rows):
        k = r // nj
        j = r - k * nj
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
        for i in range(row_lo[r], row_hi[r]):
            v = r * ni + i
            if not monitored[v]:
                continue
            ok = usable[v]
            if ok and min_nb > 0:
                cnt = 0
                for dj in range(-1, 2):
                    jj = j + dj
                    if jj < 0 or jj >= nj or cnt >= min_nb:
                        continue
                    for di in range(-1, 2):
                        ii = i + di
                        if (dj == 0 and di == 0) or ii < 0 or ii >= ni:
                            continue
                        w = (k * nj + jj) * ni + ii
                        if usable[w]:
                            cnt += 1
                ok = cnt >= min_nb
            ok_out[v] = ok
            t0 = prev_t[v]
            if ok:
                new = _unwrap(phase[v], base[v], u[v])
                step = new - u[v]
                u[v] = new
                if abs(step) > 0.5 * math.pi or not ok_prev[v]:
                    deferred[v] = True
                    n_def[r] += 1
                    continue
                drift = 0.0
                if nt > 0:
                    xi = px[1, i]
                    drift = c0 + xi * (c1 + xi * c2)
                tn = body_c + (new - drift) * inv_k
                temp_out[v] = tn
                sigma_out[v] = sig_factor / mag[v]
            else:
                tn = t0  # a gap in a monitored voxel: hold its last temperature
            _dose(v, t0, tn, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem, lethal_dmg, use_cem, prev_t, cem,
                  dmg, lethal, e_prev)
    return n_def.sum()


@njit(parallel=True, cache=True, error_model="numpy")
def fix_deferred(dlist, u, ok, mag, px, py, pz, exps, coeffs, shape, inv_k, body_c, sig_factor, prev_t, dt, ln_hi,
                 ln_lo, ln_a, ea_over_r, floor_c, lethal_cem, lethal_dmg, use_cem, temp_out, sigma_out, cem, dmg,
                 lethal, e_prev, rounds):  # pragma: no cover - compiled
    """Wrap check of the deferred suspects ``dlist`` against their neighbours, then their temperature
    and dose. Returns the number of voxels moved by a wrap."""
    nk, nj, ni = shape
    nt = coeffs.size
    m = dlist.size
    delta = np.zeros(m, np.float32)
    moved = 0
    for _ in range(rounds):
        for q in prange(m):
            v = dlist[q]
            i = v % ni
            j = (v // ni) % nj
            k = v // (ni * nj)
            x = u[v]
            buf = np.empty(8, np.float32)
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
            delta[q] = 0.0
            if nv > 0 and 2 * far > nv:
                delta[q] = _TWO_PI * round((np.median(buf[:nv]) - x) / _TWO_PI)
        n = 0
        for q in range(m):
            if delta[q] != 0.0:
                u[dlist[q]] += delta[q]
                n += 1
        moved += n
        if n == 0:
            break
    for q in prange(m):
        v = dlist[q]
        i = v % ni
        j = (v // ni) % nj
        k = v // (ni * nj)
        drift = 0.0
        for t in range(nt):
            drift += coeffs[t] * px[exps[t, 0], i] * py[exps[t, 1], j] * pz[exps[t, 2], k]
        tn = body_c + (u[v] - drift) * inv_k
        temp_out[v] = tn
        sigma_out[v] = sig_factor / mag[v]
        _dose(v, prev_t[v], tn, dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c, lethal_cem, lethal_dmg, use_cem, prev_t,
              cem, dmg, lethal, e_prev)
    return moved
