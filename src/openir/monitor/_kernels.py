"""Fused per-frame kernels (numba, parallel): one main pass over the voxels per frame.

A voxel is trusted in a frame when it is monitored (tissue with a baseline above the SNR floor, not
fat), its phase and magnitude are finite, its magnitude is above the floor, and at least three of
its in-plane neighbours are trusted too (a lone voxel is noise in air or a stray edge voxel).

1. `usable_mask` and `reference_values`: cheap passes that decide whether the frame can be used
   and give the unwrapped phase of the drift reference voxels, so the drift is fitted before the
   main pass and nothing is changed for a frame that is then skipped.
2. `frame_pass`, one pass over every voxel, row by row: trust, temporal unwrap (untrusted voxels
   keep their last unwrapped phase, so a NaN or a noise-only value never reaches the history),
   drift removal, temperature, uncertainty, CEM43 and Arrhenius increments (exact for temperature
   linear between frames, as `physics.dose`: the exponentials by a range-reduced polynomial, the
   exact scalar `cem43_cached` only where the temperature crosses 43 °C) and the lethal flag. The
   row loops index array views from 0 and use selects, not branches, so they vectorise (a flat
   index from a row's span start made numba test every access for a negative index, and the
   libm exp per voxel did not vectorise: 5x slower). A monitored voxel not trusted
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


_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: NaN phases are seen, then selected away
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_PI32 = np.float32(math.pi)
_TWO_PI32 = np.float32(_TWO_PI)
_INV_TWO_PI32 = np.float32(1.0 / _TWO_PI)
_HALF_PI32 = np.float32(0.5 * math.pi)
_HALF32 = np.float32(0.5)
_NAN32 = np.float32(np.nan)
_EXP_ONE = 1023 << 52  # float64 bits of 1.0: the bits of 2^n are (n << 52) + this


@njit(cache=True, inline="always", error_model="numpy")
def _usable(p, m, mon, mag_min):  # pragma: no cover - compiled
    return mon and math.isfinite(p) and math.isfinite(m) and m >= mag_min


@njit(cache=True, inline="always", error_model="numpy")
def _unwrap(p, base, prev):  # pragma: no cover - compiled
    """The value of wrap(p - base) + 2 pi n nearest ``prev``; wrap(p - base) = angle(z conj(z_base)).
    float32 throughout (no libm call, no float/int conversion), so a loop of it vectorises."""
    d = p - base
    d = d - _TWO_PI32 * np.floor((d + _PI32) * _INV_TWO_PI32)
    return d + _TWO_PI32 * np.floor((prev - d) * _INV_TWO_PI32 + _HALF32)


@njit(parallel=True, cache=True, error_model="numpy")
def usable_mask(phase, mag, monitored, mag_min, row_lo, row_hi, pad):  # pragma: no cover - compiled
    """pad[k, j + 1, i + 1] <- monitored & finite & above the SNR floor over each row's monitored span
    (``pad`` is [k, j + 2, i + 2], zero on its border and outside the spans, so the neighbour count
    of the main pass needs no bounds test); returns the (monitored, usable) counts."""
    nk, nj2, ni2 = pad.shape
    nj, ni = nj2 - 2, ni2 - 2
    tot = 0
    good = 0
    for r in prange(nk * nj):
        k = r // nj
        lo, hi = row_lo[r], row_hi[r]
        row = pad[k, r - k * nj + 1, lo + 1:hi + 1]
        ph, mg, mo = phase[r * ni + lo:r * ni + hi], mag[r * ni + lo:r * ni + hi], monitored[r * ni + lo:r * ni + hi]
        t = 0
        g = 0
        for q in range(hi - lo):  # views indexed from 0: no negative-index test, so this vectorises
            m = mg[q]
            us = mo[q] & (abs(ph[q]) < np.inf) & (abs(m) < np.inf) & (m >= mag_min)
            row[q] = us
            t += mo[q]
            g += us
        tot += t
        good += g
    return tot, good


@njit(parallel=True, cache=True, fastmath=_FAST, error_model="numpy")
def baseline_sse(mag, stack, stride):  # pragma: no cover - compiled
    """Sum of squared differences between ``mag`` [k, j, i] sampled every ``stride`` voxels in plane
    and each baseline of ``stack`` [b, k, j', i'] (already sampled); a non-finite voxel counts as 0."""
    nb, nk, nj, ni = stack.shape
    out = np.zeros((nk, nb))
    for k in prange(nk):
        buf = np.empty(ni, np.float32)
        for j in range(nj):
            row = mag[k, j * stride]
            for i in range(ni):
                m = row[i * stride]
                buf[i] = m if abs(m) < np.inf else np.float32(0.0)
            for b in range(nb):
                s = stack[b, k, j]
                acc = 0.0
                for i in range(ni):
                    d = buf[i] - s[i]
                    acc += d * d
                out[k, b] += acc
    return out.sum(axis=0)


@njit(cache=True, fastmath=_FAST, error_model="numpy")
def reference_values(idx, phase, base, mag, monitored, mag_min, u, ok_prev, vals, use, suspect):  # pragma: no cover
    """Unwrapped phase of the drift reference voxels ``idx`` (unsigned, so no negative-index test and
    the gathers vectorise) this frame; 0 where unusable. ``u`` is not changed."""
    for q in range(idx.size):
        v = idx[q]
        p = phase[v]
        m = mag[v]
        uo = u[v]
        us = monitored[v] & (abs(p) < np.inf) & (abs(m) < np.inf) & (m >= mag_min)
        new = _unwrap(p, base[v], uo)
        vals[q] = new if us else 0.0
        use[q] = us
        suspect[q] = us & ((abs(new - uo) > _HALF_PI32) | (ok_prev[v] == 0))


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


@njit(cache=True, inline="always", fastmath=_FAST)
def _exp_row(z, pb, kd, kb, n):  # pragma: no cover - compiled
    """kd[q] <- exp(z[q]) for q < n, by 2^m p(x): m = round(z / ln 2) as exponent bits (through the
    int64 view ``kb`` of ``kd``), p a degree-8 polynomial on |x| <= ln 2 / 2 (relative error < 3e-10;
    the device of `physics.bioheat`). A loop without calls or branches, so it vectorises."""
    for q in range(n):
        y = min(max(z[q] * _LOG2E, -1000.0), 1000.0)
        m = np.floor(y + 0.5)
        x = (y - m) * _LN2
        pb[q] = 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (
            1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))))
        kb[q] = (np.int64(m) << 52) + _EXP_ONE
    for q in range(n):
        kd[q] *= pb[q]


_GAUSS3 = ((-0.7745966692414834, 0.5555555555555556), (0.0, 0.8888888888888888), (0.7745966692414834, 0.5555555555555556))


@njit(cache=True, fastmath=_FAST)
def _arrhenius_row(pt, t1b, act, dm, le, zb, pb, kd, kb, acc, n, dt, ln_a, ea_over_r, floor_c, lethal_dmg,
                   use_cem):  # pragma: no cover - compiled
    """Arrhenius damage of one row for T linear from ``pt`` to ``t1b``: `physics.dose.arrhenius_interval`
    (3-point Gauss, the rate only above ``floor_c``, nothing when both ends are at or below it) with
    the polynomial exponential, for the voxels that get a dose (``act`` != 0)."""
    for g in range(3):
        xg, wg = _GAUSS3[g]
        for q in range(n):
            t0 = np.float64(pt[q])
            tq = 0.5 * (t0 + t1b[q]) + 0.5 * (t1b[q] - t0) * xg
            zb[q] = ln_a - ea_over_r / (tq + 273.15)
        _exp_row(zb, pb, kd, kb, n)
        for q in range(n):
            t0 = np.float64(pt[q])
            tq = 0.5 * (t0 + t1b[q]) + 0.5 * (t1b[q] - t0) * xg
            pb[q] = wg * kd[q] if tq > floor_c else 0.0
        if g == 0:
            for q in range(n):
                acc[q] = pb[q]
        else:
            for q in range(n):
                acc[q] += pb[q]
    for q in range(n):
        t0 = np.float64(pt[q])
        h = (act[q] != 0) & ((t0 > floor_c) | (t1b[q] > floor_c))
        om = dm[q] + 0.5 * dt * acc[q]
        dm[q] = om if h else dm[q]
        le[q] = (om >= lethal_dmg) if (h & (not use_cem)) else le[q]


@njit(cache=True, inline="always")
def _clear(ok, deferred, temp, sigma):  # pragma: no cover - compiled
    for q in range(ok.size):
        ok[q] = False
        deferred[q] = False
        temp[q] = _NAN32
        sigma[q] = _NAN32


@njit(parallel=True, cache=True, fastmath=_FAST, error_model="numpy")
def frame_pass(phase, base, mag, pad, monitored, row_lo, row_hi, min_nb, u, ok_prev, rowc, xs, tc, dc, prev_t, cem, dmg,
               e_prev, lethal, ok_out, deferred, temp_out, sigma_out, stats):  # pragma: no cover - compiled
    """The main pass (see the module docstring) over flat arrays, a block of rows per task.

    ``pad``: the trusted-input mask of `usable_mask`. ``rowc[r]``: the drift polynomial along row r,
    c0 + c1 x + c2 x^2 with x = ``xs[i]``. ``tc`` = (body_c, 1 / k, sigma factor); ``dc`` = (dt, ln R
    above 43, ln R below 43, ln A, Ea / R, Arrhenius floor, lethal CEM43, lethal damage, 1 for the
    CEM43 criterion). Every voxel of ``ok_out``, ``deferred``, ``temp_out`` and ``sigma_out`` is
    written (NaN outside the trusted voxels). ``stats[c]`` <- (trusted, deferred, exact-dose voxels,
    hottest temperature) of block c; the number of blocks is ``stats.shape[0]``.

    Each row runs as loops without calls or branches the compiler cannot turn into selects, so they
    vectorise: trust + unwrap + drift + temperature; R^(43 - T) by a range-reduced polynomial
    (2^n from exponent bits times a degree-8 polynomial, relative error < 3e-10: `physics.bioheat`'s
    device); the CEM43 increment. Voxels that cross 43 °C or are above the Arrhenius floor (a few %
    of the tissue while heating) then take the exact scalar path (`cem43_cached`, Arrhenius), as do
    no others. Deferred suspects get no dose here (`fix_deferred`)."""
    nk, nj2, ni2 = pad.shape
    nj, ni = nj2 - 2, ni2 - 2
    rows = nk * nj
    nch = stats.shape[0]
    per = (rows + nch - 1) // nch
    body_c, inv_k, sig_factor = tc[0], tc[1], tc[2]
    dt, ln_hi, ln_lo, ln_a, ea_over_r, floor_c = dc[0], dc[1], dc[2], dc[3], dc[4], dc[5]
    lethal_cem, lethal_dmg, use_cem = dc[6], dc[7], dc[8] != 0.0
    c60 = dt / 60.0
    for c in prange(nch):
        t1b = np.empty(ni)
        pb = np.empty(ni)
        kd = np.empty(ni)
        kb = kd.view(np.int64)
        acc = np.empty(ni)
        zb = np.empty(ni)
        kbuf = np.empty(1, np.int32)
        act = np.empty(ni, np.uint8)  # 0: no dose now, 1: the vectorised CEM43, 2: the exact one (crosses 43 °C)
        kmax = np.int32(-2147483648)  # the hottest trusted temperature, as an ordered integer key
        n_ok = 0
        n_def = 0
        n_rare = 0
        for r in range(c * per, min(rows, (c + 1) * per)):
            k = r // nj
            j = r - k * nj
            o = r * ni
            lo = row_lo[r]
            hi = row_hi[r]
            _clear(ok_out[o:o + lo], deferred[o:o + lo], temp_out[o:o + lo], sigma_out[o:o + lo])
            _clear(ok_out[o + hi:o + ni], deferred[o + hi:o + ni], temp_out[o + hi:o + ni], sigma_out[o + hi:o + ni])
            # row views from the span's start: the loops below index them from 0 (no negative-index
            # wrap test per access, which would stop the compiler from vectorising)
            a, b = o + lo, o + hi
            n = hi - lo
            up, cen, dn = pad[k, j, lo:hi + 2], pad[k, j + 1, lo:hi + 2], pad[k, j + 2, lo:hi + 2]
            ph, bs, mg, mo, uu, okp = phase[a:b], base[a:b], mag[a:b], monitored[a:b], u[a:b], ok_prev[a:b]
            pt, cm, ep, le, dm = prev_t[a:b], cem[a:b], e_prev[a:b], lethal[a:b], dmg[a:b]
            oko, de, te, si, xv = ok_out[a:b], deferred[a:b], temp_out[a:b], sigma_out[a:b], xs[lo:hi]
            c0, c1, c2 = rowc[r, 0], rowc[r, 1], rowc[r, 2]
            nr = 0
            nh = 0
            for q in range(n):
                cnt = (np.int32(up[q]) + up[q + 1] + up[q + 2] + cen[q] + cen[q + 2] + dn[q] + dn[q + 1] + dn[q + 2])
                okv = (cen[q + 1] != 0) & (cnt >= min_nb)
                uo = uu[q]
                new = _unwrap(ph[q], bs[q], uo)
                sus = (abs(new - uo) > _HALF_PI32) | (okp[q] == 0)
                good = okv & (sus == 0)
                dfr = okv & sus
                uu[q] = new if okv else uo
                oko[q] = okv
                de[q] = dfr
                xi = xv[q]
                tr = body_c + (new - (c0 + xi * (c1 + xi * c2))) * inv_k
                t0 = np.float64(pt[q])
                te[q] = tr if good else _NAN32
                si[q] = sig_factor / mg[q] if good else _NAN32
                t1 = tr if good else t0  # a gap in a monitored voxel: hold its last temperature
                t1b[q] = t1
                dose = mo[q] & (dfr == 0)
                w = np.uint8(dose) * (np.uint8(1) + np.uint8((t0 >= 43.0) != (t1 >= 43.0)))
                act[q] = w
                n_ok += okv
                n_def += dfr
                nr += w == 2
                nh += dose & ((t0 > floor_c) | (t1 > floor_c))
            # max of the trusted temperatures through their bits (an integer max vectorises, a float
            # max with NaN does not): for IEEE floats b ^ ((b >> 31) & 0x7fffffff) orders as they do
            tb = te.view(np.int32)
            for q in range(n):
                bq = tb[q]
                key = bq ^ ((bq >> 31) & 0x7FFFFFFF)
                kmax = max(kmax, key if (bq & 0x7FFFFFFF) <= 0x7F800000 else np.int32(-2147483648))
            if nh:
                _arrhenius_row(pt, t1b, act, dm, le, zb, pb, kd, kb, acc, n, dt, ln_a, ea_over_r, floor_c, lethal_dmg,
                               use_cem)
            # R^(43 - t1) = 2^m p(x), m = round(z), x = (z - m) ln 2, z = ln R (43 - t1) / ln 2
            for q in range(n):
                t1 = t1b[q]
                z = (ln_hi if t1 >= 43.0 else ln_lo) * (43.0 - t1) * _LOG2E
                z = min(max(z, -1000.0), 1000.0)
                m = np.floor(z + 0.5)
                x = (z - m) * _LN2
                pb[q] = 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (
                    1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))))
                kb[q] = (np.int64(m) << 52) + _EXP_ONE
            for q in range(n):
                e1 = pb[q] * kd[q]
                t0 = np.float64(pt[q])
                t1 = t1b[q]
                e0 = np.float64(ep[q])
                x = -(ln_hi if (t0 >= 43.0) & (t1 >= 43.0) else ln_lo) * (t1 - t0)
                small = abs(x) < 1e-3
                ser = e0 * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))))
                full = (e1 - e0) / (1.0 if small else x)
                fast = act[q] == 1
                cn = cm[q] + c60 * (ser if small else full)
                cm[q] = cn if fast else cm[q]
                ep[q] = e1 if fast else e0
                pt[q] = t1 if fast else t0
                le[q] = (cn >= lethal_cem) if (fast & use_cem) else le[q]
            if nr:
                for q in range(n):
                    if act[q] == 2:
                        inc, e1 = cem43_cached(np.float64(pt[q]), t1b[q], np.float64(ep[q]), dt, ln_hi, ln_lo)
                        cm[q] += inc
                        ep[q] = e1
                        pt[q] = t1b[q]
                        if use_cem:
                            le[q] = cm[q] >= lethal_cem
            n_rare += nr
        stats[c, 0] = n_ok
        stats[c, 1] = n_def
        stats[c, 2] = n_rare
        kbuf[0] = kmax ^ ((kmax >> 31) & 0x7FFFFFFF)  # back to the float32 bits
        stats[c, 3] = kbuf.view(np.float32)[0] if kmax != np.int32(-2147483648) else -np.inf


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
