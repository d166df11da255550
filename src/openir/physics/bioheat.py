"""Pennes bioheat solver on a voxel grid.

    rho c dT/dt = div(k grad T) + w_b rho_b c_b (T_a - T) + Q

written in enthalpy form (H per volume) so that freezing tissue releases latent heat between the
solidus and liquidus (cryoablation ice balls). Finite volumes on the 7-point stencil: the face
conductance between two voxels is the series sum of their half-cell resistances (the harmonic mean
of conductivities for equal spacing). Large vessels and cryoprobes are *held* voxels: their
temperature is fixed (blood at 37 °C, probe at its set temperature) and heat reaches them through an
extra wall resistance 1/h, so a vessel's strength follows its flow (see vessels.py). The outer
faces of the grid are held at the initial temperature.

Time stepping is chosen automatically: forward Euler within its stability limit (numba, parallel),
or backward Euler with conjugate gradients (scipy.sparse; coefficients lagged one step) when the
explicit step count would be too large. Thermal dose (CEM43) and Arrhenius damage are accumulated
inside the step loop, exactly (CEM43) for a temperature linear between steps, so no history is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import njit, prange
from scipy import sparse
from scipy.sparse.linalg import cg

from openir.core.errors import InputError

from .dose import arrhenius_interval, cem43_interval, dose_constants
from .tissues import TissueTable, load_tissue_table

Schedule = Sequence[tuple[float, float, float]]  # (start_s, end_s, level): W for heat, 1/0 for held
Method = Literal["auto", "explicit", "implicit"]
Backend = Literal["numba", "numpy"]
_F32_CAP = 1e30  # dose values are stored as float32 snapshots; beyond this they only mean "dead"


# ---- problem description ------------------------------------------------------------------------
@dataclass
class ThermalMedium:
    """Per-voxel material fields in SI units, arrays ``[k, j, i]``.

    ``spacing_mm`` is (si, sj, sk) as the core Grid gives it. ``held`` marks large-vessel lumen
    voxels held at ``held_temperature_c`` behind ``wall_resistance`` (m^2 K / W; 0 = Dirichlet).
    """

    heat_capacity_vol: np.ndarray  # rho*c, J/m^3/K (unfrozen)
    conductivity: np.ndarray  # W/m/K (unfrozen)
    perfusion: np.ndarray  # w_b rho_b c_b, W/m^3/K
    spacing_mm: tuple[float, float, float]
    held: np.ndarray | None = None
    held_temperature_c: float | np.ndarray = 37.0
    wall_resistance: np.ndarray | float = 0.0
    initial_temperature_c: float | np.ndarray = 37.0

    def __post_init__(self) -> None:
        shape = self.heat_capacity_vol.shape
        for name in ("conductivity", "perfusion"):
            if getattr(self, name).shape != shape:
                raise InputError(f"{name} shape {getattr(self, name).shape} != {shape}", field=name)
        if len(shape) != 3 or min(shape) < 3:
            raise InputError(f"grid must be 3-D with at least 3 voxels per axis, got {shape}")
        if np.any(self.heat_capacity_vol <= 0) or np.any(self.conductivity <= 0):
            raise InputError("heat capacity and conductivity must be positive everywhere")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.heat_capacity_vol.shape  # type: ignore[return-value]


@dataclass
class HeatSource:
    """A volumetric heat source: ``pattern`` in W/m^3 per W of setting, times the scheduled power."""

    pattern: np.ndarray
    schedule: Schedule
    name: str = "source"


@dataclass
class HeldSource:
    """Voxels clamped to ``temperature_c`` while the schedule level is > 0 (cryoprobe freeze)."""

    mask: np.ndarray
    temperature_c: float
    schedule: Schedule
    name: str = "cryoprobe"


@dataclass
class BioheatSolution:
    """Snapshots at the requested times plus the final fields (float32 arrays ``[k, j, i]``)."""

    times_s: list[float]
    temperature_c: list[np.ndarray]
    cem43_min: list[np.ndarray]
    damage: list[np.ndarray]
    max_temperature_c: np.ndarray
    min_temperature_c: np.ndarray
    dt_s: float
    dt_limit_s: float
    method: str
    backend: str
    n_steps: int
    runtime_s: float
    voxel_updates: int = 0
    meta: dict = field(default_factory=dict)


@dataclass
class _Consts:
    ts: float
    tl: float
    lat: float
    cf: float
    invkf: float
    ta: float
    shut_c: float
    shut_dmg: float
    ln_r_above: float
    ln_r_below: float
    ln_a: float
    ea_over_r: float
    floor_c: float


def _consts(table: TissueTable) -> _Consts:
    f = table.freezing
    d = dose_constants(table)
    return _Consts(
        ts=f.solidus_c.value,
        tl=f.liquidus_c.value,
        lat=f.latent_heat_j_m3.value,
        cf=f.frozen_heat_capacity_j_m3_k.value,
        invkf=1.0 / f.frozen_conductivity_w_m_k.value,
        ta=table.blood.arterial_temperature_c.value,
        shut_c=table.perfusion_shutdown.temperature_c.value,
        shut_dmg=table.perfusion_shutdown.damage.value,
        **d,
    )


# ---- enthalpy relations (scalar, numba) -----------------------------------------------------------
@njit(cache=True, inline="always")
def _h_of_t(t: float, cu: float, cf: float, lat: float, ts: float, tl: float) -> float:
    cm = 0.5 * (cu + cf)
    if t <= ts:
        return cf * (t - ts)
    if t < tl:
        return (t - ts) * (lat / (tl - ts) + cm)
    return lat + cm * (tl - ts) + cu * (t - tl)


@njit(cache=True, inline="always")
def _t_of_h(h: float, cu: float, cf: float, lat: float, ts: float, tl: float) -> float:
    cm = 0.5 * (cu + cf)
    if h <= 0.0:
        return ts + h / cf
    hl = lat + cm * (tl - ts)
    if h < hl:
        return ts + h / (lat / (tl - ts) + cm)
    return tl + (h - hl) / cu


@njit(cache=True, inline="always")
def _invk_of_t(t: float, invku: float, invkf: float, ts: float, tl: float) -> float:
    if t >= tl:
        return invku
    if t <= ts:
        return invkf
    fl = (t - ts) / (tl - ts)
    k = 1.0 / invkf + (1.0 / invku - 1.0 / invkf) * fl
    return 1.0 / k


# ---- explicit step (numba) -------------------------------------------------------------------------
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: thresholds may be inf


@njit(parallel=True, cache=True, fastmath=_FAST)
def _step_numba(T, Tn, H, ik, ikn, rwall, held, thold, cu, invku, W, shut, q, cem, dmg, tmax, tmin,
                dt, dk, dj, di, ts, tl, lat, cf, invkf, ta, shut_c, shut_dmg,
                ln_hi, ln_lo, ln_a, ea_over_r, floor_c):  # pragma: no cover - compiled
    nk, nj, ni = T.shape
    hk = 0.5 * dk
    hj = 0.5 * dj
    hi = 0.5 * di
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                t0 = T[k, j, i]
                if k == 0 or j == 0 or i == 0 or k == nk - 1 or j == nj - 1 or i == ni - 1:
                    Tn[k, j, i] = t0
                    ikn[k, j, i] = ik[k, j, i]
                    continue
                if held[k, j, i]:
                    t1 = thold[k, j, i]
                    Tn[k, j, i] = t1
                    ikn[k, j, i] = 0.0
                    H[k, j, i] = _h_of_t(t1, cu[k, j, i], cf, lat, ts, tl)
                else:
                    rc = ik[k, j, i]
                    fl = (T[k - 1, j, i] - t0) / (hk * (rc + ik[k - 1, j, i]) + rwall[k - 1, j, i])
                    fl += (T[k + 1, j, i] - t0) / (hk * (rc + ik[k + 1, j, i]) + rwall[k + 1, j, i])
                    fj = (T[k, j - 1, i] - t0) / (hj * (rc + ik[k, j - 1, i]) + rwall[k, j - 1, i])
                    fj += (T[k, j + 1, i] - t0) / (hj * (rc + ik[k, j + 1, i]) + rwall[k, j + 1, i])
                    fi = (T[k, j, i - 1] - t0) / (hi * (rc + ik[k, j, i - 1]) + rwall[k, j, i - 1])
                    fi += (T[k, j, i + 1] - t0) / (hi * (rc + ik[k, j, i + 1]) + rwall[k, j, i + 1])
                    rate = fl / dk + fj / dj + fi / di + q[k, j, i]
                    if shut[k, j, i] == 0:
                        rate += W[k, j, i] * (ta - t0)
                    h = H[k, j, i] + dt * rate
                    H[k, j, i] = h
                    c = cu[k, j, i]
                    t1 = _t_of_h(h, c, cf, lat, ts, tl)
                    Tn[k, j, i] = t1
                    ikn[k, j, i] = _invk_of_t(t1, invku[k, j, i], invkf, ts, tl)
                cem[k, j, i] += cem43_interval(t0, t1, dt, ln_hi, ln_lo)
                om = dmg[k, j, i] + arrhenius_interval(t0, t1, dt, ln_a, ea_over_r, floor_c)
                dmg[k, j, i] = om
                if t1 > tmax[k, j, i]:
                    tmax[k, j, i] = t1
                if t1 < tmin[k, j, i]:
                    tmin[k, j, i] = t1
                if t1 >= shut_c or om >= shut_dmg or t1 <= ts:
                    shut[k, j, i] = 1


@njit(parallel=True, cache=True, fastmath=_FAST)
def _step_linear_numba(T, Tn, gk, gj, gi, icu, W, shut, q, cem, dmg, tmax, dt, ta, shut_c, shut_dmg,
                       ln_hi, ln_lo, ln_a, ea_over_r, floor_c):  # pragma: no cover - compiled
    """Forward Euler without phase change: face conductances precomputed, no divisions per voxel.

    Held and boundary voxels have ``icu == 0`` (their temperature never changes); boundary rows are
    skipped and must already hold their values in ``Tn``.
    """
    nk, nj, ni = T.shape
    for k in prange(1, nk - 1):
        for j in range(1, nj - 1):
            for i in range(1, ni - 1):
                t0 = T[k, j, i]
                rate = (gk[k - 1, j, i] * (T[k - 1, j, i] - t0) + gk[k, j, i] * (T[k + 1, j, i] - t0)
                        + gj[k, j - 1, i] * (T[k, j - 1, i] - t0) + gj[k, j, i] * (T[k, j + 1, i] - t0)
                        + gi[k, j, i - 1] * (T[k, j, i - 1] - t0) + gi[k, j, i] * (T[k, j, i + 1] - t0)
                        + q[k, j, i])
                if shut[k, j, i] == 0:
                    rate += W[k, j, i] * (ta - t0)
                t1 = t0 + dt * icu[k, j, i] * rate
                Tn[k, j, i] = t1
                cem[k, j, i] += cem43_interval(t0, t1, dt, ln_hi, ln_lo)
                om = dmg[k, j, i]
                if t0 > floor_c or t1 > floor_c:
                    om += arrhenius_interval(t0, t1, dt, ln_a, ea_over_r, floor_c)
                    dmg[k, j, i] = om
                if t1 > tmax[k, j, i]:
                    tmax[k, j, i] = t1
                if t1 >= shut_c or om >= shut_dmg:
                    shut[k, j, i] = 1


def _face_conductances(ik: np.ndarray, rwall: np.ndarray, d: tuple[float, float, float]) -> list[np.ndarray]:
    """Per-axis conductance/spacing (W/m^3/K) of the face between voxel n and n+1 (full shape, last 0)."""
    out = []
    for axis, dd in enumerate(d):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis] = slice(0, ik.shape[axis] - 1)
        b[axis] = slice(1, ik.shape[axis])
        g = np.zeros(ik.shape)
        g[tuple(a)] = 1.0 / (0.5 * dd * (ik[tuple(a)] + ik[tuple(b)]) + rwall[tuple(a)] + rwall[tuple(b)]) / dd
        out.append(g)
    return out


def _step_linear_numpy(st: dict, dt: float, c: _Consts) -> None:
    """The plain-numpy version of _step_linear_numba (the benchmark's baseline)."""
    T = st["T"]
    gk, gj, gi = st["g"]
    t0 = T[1:-1, 1:-1, 1:-1]
    rate = (gk[:-2, 1:-1, 1:-1] * (T[:-2, 1:-1, 1:-1] - t0) + gk[1:-1, 1:-1, 1:-1] * (T[2:, 1:-1, 1:-1] - t0)
            + gj[1:-1, :-2, 1:-1] * (T[1:-1, :-2, 1:-1] - t0) + gj[1:-1, 1:-1, 1:-1] * (T[1:-1, 2:, 1:-1] - t0)
            + gi[1:-1, 1:-1, :-2] * (T[1:-1, 1:-1, :-2] - t0) + gi[1:-1, 1:-1, 1:-1] * (T[1:-1, 1:-1, 2:] - t0)
            + st["q"][1:-1, 1:-1, 1:-1])
    inner = (slice(1, -1),) * 3
    rate += np.where(st["shut"][inner] == 0, st["W"][inner] * (c.ta - t0), 0.0)
    t1 = t0 + dt * st["icu"][inner] * rate
    st["cem"][inner] += _np_cem(t0, t1, dt, c)
    st["dmg"][inner] += _np_arr(t0, t1, dt, c)
    np.maximum(st["tmax"][inner], t1, out=st["tmax"][inner])
    st["shut"][inner] |= ((t1 >= c.shut_c) | (st["dmg"][inner] >= c.shut_dmg)).astype(np.uint8)
    Tn = T.copy()
    Tn[inner] = t1
    st["T"] = Tn


# ---- explicit step (plain numpy: the benchmark's baseline, same scheme) -------------------------------
def _np_h_of_t(t, cu, c: _Consts):
    cm = 0.5 * (cu + c.cf)
    return np.where(
        t <= c.ts, c.cf * (t - c.ts),
        np.where(t < c.tl, (t - c.ts) * (c.lat / (c.tl - c.ts) + cm), c.lat + cm * (c.tl - c.ts) + cu * (t - c.tl)),
    )


def _np_t_of_h(h, cu, c: _Consts):
    cm = 0.5 * (cu + c.cf)
    hl = c.lat + cm * (c.tl - c.ts)
    return np.where(h <= 0, c.ts + h / c.cf, np.where(h < hl, c.ts + h / (c.lat / (c.tl - c.ts) + cm), c.tl + (h - hl) / cu))


def _np_invk(t, invku, c: _Consts):
    fl = np.clip((t - c.ts) / (c.tl - c.ts), 0.0, 1.0)
    return 1.0 / (1.0 / c.invkf + (1.0 / invku - 1.0 / c.invkf) * fl)


def _np_cem(t0, t1, dt, c: _Consts):
    """Vectorised CEM43 increment (minutes), same closed form as dose.cem43_interval."""
    def piece(a, b, tau, ln_r):
        x = -ln_r * (b - a)
        small = np.abs(x) < 1e-6
        xs = np.where(small, 1.0, x)
        g = np.where(small, 1.0 + 0.5 * x, np.expm1(x) / xs)
        return tau * np.exp(ln_r * (43.0 - a)) * g

    lh, ll = c.ln_r_above, c.ln_r_below
    both_hi = (t0 >= 43) & (t1 >= 43)
    both_lo = (t0 <= 43) & (t1 <= 43)
    cross = ~(both_hi | both_lo)
    dT = np.where(cross, t1 - t0, 1.0)
    f = np.clip((43.0 - t0) / dT, 0.0, 1.0)
    up = t0 < 43
    cross_val = np.where(
        up,
        piece(t0, 43.0, f * dt, ll) + piece(43.0, t1, (1 - f) * dt, lh),
        piece(t0, 43.0, f * dt, lh) + piece(43.0, t1, (1 - f) * dt, ll),
    )
    out = np.where(both_hi, piece(t0, t1, dt, lh), np.where(both_lo, piece(t0, t1, dt, ll), cross_val))
    return out / 60.0


def _np_arr(t0, t1, dt, c: _Consts):
    s = np.zeros_like(t0)
    for xq, wq in ((-0.7745966692414834, 5 / 9), (0.0, 8 / 9), (0.7745966692414834, 5 / 9)):
        tq = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * xq
        s += np.where(tq > c.floor_c, wq * np.exp(c.ln_a - c.ea_over_r / (np.maximum(tq, c.floor_c) + 273.15)), 0.0)
    return 0.5 * dt * s


def _step_numpy(st: dict, dt: float, d: tuple[float, float, float], c: _Consts) -> None:
    T, ik, rw = st["T"], st["ik"], st["rwall"]
    inner = (slice(1, -1),) * 3
    t0 = T[inner]
    rc = ik[inner]
    rate = st["q"][inner].copy()
    for axis, dd in enumerate(d):
        for off in (-1, 1):
            sl = [slice(1, -1)] * 3
            sl[axis] = slice(1 + off, T.shape[axis] - 1 + off)
            sl = tuple(sl)
            with np.errstate(divide="ignore", invalid="ignore"):  # held-held faces; replaced below
                rate += (T[sl] - t0) / (0.5 * dd * (rc + ik[sl]) + rw[sl]) / dd
    rate += np.where(st["shut"][inner] == 0, st["W"][inner] * (c.ta - t0), 0.0)
    held = st["held"][inner]
    cu = st["cu"][inner]
    h = st["H"][inner] + dt * rate
    t_free = _np_t_of_h(h, cu, c)
    t1 = np.where(held, st["thold"][inner], t_free)
    st["H"][inner] = np.where(held, _np_h_of_t(t1, cu, c), h)
    ik_new = ik.copy()
    ik_new[inner] = np.where(held, 0.0, _np_invk(t1, st["invku"][inner], c))
    st["cem"][inner] += _np_cem(t0, t1, dt, c)
    st["dmg"][inner] += _np_arr(t0, t1, dt, c)
    np.maximum(st["tmax"][inner], t1, out=st["tmax"][inner])
    np.minimum(st["tmin"][inner], t1, out=st["tmin"][inner])
    st["shut"][inner] |= ((t1 >= c.shut_c) | (st["dmg"][inner] >= c.shut_dmg) | (t1 <= c.ts)).astype(np.uint8)
    Tn = T.copy()
    Tn[inner] = t1
    st["T"], st["ik"] = Tn, ik_new


# ---- implicit step (backward Euler, lagged coefficients, CG) ------------------------------------------
def _step_implicit(st: dict, dt: float, d: tuple[float, float, float], c: _Consts) -> int:
    T, ik, rw, held = st["T"], st["ik"], st["rwall"], st["held"]
    shape = T.shape
    n = T.size
    fixed = held.copy()
    fixed[0, :, :] = fixed[-1, :, :] = True
    fixed[:, 0, :] = fixed[:, -1, :] = True
    fixed[:, :, 0] = fixed[:, :, -1] = True
    t_fixed = np.where(held, st["thold"], T)
    free = ~fixed
    cu = st["cu"]
    cm = 0.5 * (cu + c.cf)
    capp = np.where(c.ts >= T, c.cf, np.where(c.tl > T, c.lat / (c.tl - c.ts) + cm, cu))
    w_eff = np.where(st["shut"] == 0, st["W"], 0.0)
    diag = capp / dt + w_eff
    rhs = capp / dt * T + w_eff * c.ta + st["q"]
    idx = np.arange(n).reshape(shape)
    rows, cols, vals = [], [], []
    for axis, dd in enumerate(d):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis] = slice(0, shape[axis] - 1)
        b[axis] = slice(1, shape[axis])
        a, b = tuple(a), tuple(b)
        g = 1.0 / (0.5 * dd * (ik[a] + ik[b]) + rw[a] + rw[b]) / dd
        fa, fb = free[a], free[b]
        # each free voxel's row gets the face conductance on its diagonal
        dia = np.zeros(shape)
        dia[a] = np.where(fa, g, 0.0)
        dia[b] += np.where(fb, g, 0.0)
        diag += dia
        both = fa & fb
        rows.append(idx[a][both])
        cols.append(idx[b][both])
        vals.append(-g[both])
        # a free, b fixed -> rhs of a; b free, a fixed -> rhs of b
        ra = np.zeros(shape)
        ra[a] = np.where(fa & ~fb, g * t_fixed[b], 0.0)
        rb = np.zeros(shape)
        rb[b] = np.where(fb & ~fa, g * t_fixed[a], 0.0)
        rhs += ra + rb
    fidx = np.full(n, -1, dtype=np.int64)
    fl = free.ravel()
    fidx[fl] = np.arange(int(fl.sum()))
    r = np.concatenate(rows)
    cc = np.concatenate(cols)
    v = np.concatenate(vals)
    m = int(fl.sum())
    off = sparse.coo_matrix((v, (fidx[r], fidx[cc])), shape=(m, m))
    dg = diag.ravel()[fl]
    mat = (off + off.T + sparse.diags(dg)).tocsr()
    precond = sparse.diags(1.0 / dg)
    x, info = cg(mat, rhs.ravel()[fl], x0=T.ravel()[fl], rtol=1e-10, atol=0.0, M=precond, maxiter=2000)
    t1 = t_fixed.copy().ravel()
    t1[fl] = x
    t1 = t1.reshape(shape)
    t0 = T
    upd = free | held
    st["cem"] += np.where(upd, _np_cem(t0, t1, dt, c), 0.0)
    st["dmg"] += np.where(upd, _np_arr(t0, t1, dt, c), 0.0)
    np.maximum(st["tmax"], t1, out=st["tmax"])
    np.minimum(st["tmin"], t1, out=st["tmin"])
    st["shut"] |= ((t1 >= c.shut_c) | (st["dmg"] >= c.shut_dmg) | (t1 <= c.ts)).astype(np.uint8)
    st["H"] = _np_h_of_t(t1, cu, c)
    st["ik"] = np.where(held, 0.0, _np_invk(t1, st["invku"], c))
    st["T"] = t1
    return info


# ---- stability and driver ------------------------------------------------------------------------------
def stable_time_step(
    medium: ThermalMedium,
    *,
    may_freeze: bool = False,
    extra_held: np.ndarray | None = None,
    table: TissueTable | None = None,
) -> float:
    """Largest forward-Euler step (s) that is stable everywhere (worst case over freezing states).

    Per voxel: dt <= C_min / (sum of face conductances / spacing + perfusion). ``extra_held`` are
    voxels that may be clamped at some time (cryoprobes), counted as Dirichlet neighbours.
    """
    c = _consts(table or load_tissue_table())
    ku = medium.conductivity
    kmax = np.maximum(ku, 1.0 / c.invkf) if may_freeze else ku
    cmin = np.minimum(medium.heat_capacity_vol, c.cf) if may_freeze else medium.heat_capacity_vol
    held = np.zeros(medium.shape, bool) if medium.held is None else medium.held.copy()
    rwall = np.broadcast_to(np.asarray(medium.wall_resistance, float), medium.shape).copy()
    if extra_held is not None:
        held |= extra_held
        rwall[extra_held] = 0.0
    r = np.where(held, 0.0, 1.0 / kmax)
    rwall = np.where(held, rwall, 0.0)
    d = tuple(s * 1e-3 for s in medium.spacing_mm[::-1])  # (dk, dj, di)
    total = medium.perfusion.astype(float).copy()
    for axis, dd in enumerate(d):
        pad = [(0, 0)] * 3
        pad[axis] = (1, 1)
        rp = np.pad(r, pad, mode="edge")
        wp = np.pad(rwall, pad, mode="edge")
        for off in (0, 2):
            sl = [slice(None)] * 3
            sl[axis] = slice(off, off + medium.shape[axis])
            sl = tuple(sl)
            with np.errstate(divide="ignore"):  # two adjacent held voxels: no face, never updated
                total += 1.0 / (0.5 * dd * (r + rp[sl]) + wp[sl]) / dd
    ratio = np.where(held, np.inf, cmin / total)
    return float(ratio.min())


def _level(schedule: Schedule, t: float) -> float:
    for s, e, lev in schedule:
        if s <= t < e:
            return float(lev)
    return 0.0


def solve_pennes(
    medium: ThermalMedium,
    duration_s: float,
    *,
    sources: Sequence[HeatSource] = (),
    held_sources: Sequence[HeldSource] = (),
    snapshot_times_s: Sequence[float] = (),
    dt_s: float | None = None,
    method: Method = "auto",
    backend: Backend = "numba",
    max_explicit_steps: int = 20000,
    safety: float = 0.9,
    perfusion_shutdown: bool = True,
    table: TissueTable | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> BioheatSolution:
    """Integrate the Pennes equation for ``duration_s`` seconds.

    Sources are piecewise constant in time (their schedules); steps are shortened to land exactly on
    every schedule change and snapshot time. ``method='auto'`` takes forward Euler at ``safety`` x the
    stability limit unless that needs more than ``max_explicit_steps`` steps, then backward Euler
    with ``dt_s`` (default: duration / 500). ``perfusion_shutdown`` stops perfusion irreversibly
    where tissue coagulates (tissues.yaml thresholds) or freezes. Returns snapshots (temperature, CEM43 in minutes,
    Arrhenius damage) at ``snapshot_times_s`` (the end time is always included).
    """
    if not duration_s > 0:
        raise InputError(f"duration must be > 0 s, got {duration_s}", field="duration_s")
    tab = table or load_tissue_table()
    c = _consts(tab)
    if not perfusion_shutdown:
        c.shut_c = math.inf
        c.shut_dmg = math.inf
    shape = medium.shape
    for s in sources:
        if s.pattern.shape != shape:
            raise InputError(f"source {s.name!r} pattern shape {s.pattern.shape} != grid {shape}")
    for hs in held_sources:
        if hs.mask.shape != shape:
            raise InputError(f"held source {hs.name!r} mask shape {hs.mask.shape} != grid {shape}")
    any_cryo = bool(held_sources)
    cryo_union = np.zeros(shape, bool)
    for hs in held_sources:
        cryo_union |= hs.mask
    limit = stable_time_step(medium, may_freeze=any_cryo, extra_held=cryo_union if any_cryo else None, table=tab)
    if method == "auto":
        method = "explicit" if duration_s / (safety * limit) <= max_explicit_steps else "implicit"
    if method == "explicit":
        dt_max = safety * limit if dt_s is None else float(dt_s)
        if dt_max > limit * (1 + 1e-9):
            raise InputError(f"dt {dt_max:.3g} s exceeds the explicit stability limit {limit:.3g} s", field="dt_s")
    elif method == "implicit":
        dt_max = float(dt_s) if dt_s is not None else duration_s / 500.0
    else:
        raise InputError(f"unknown method {method!r}", field="method")
    if backend not in ("numba", "numpy"):
        raise InputError(f"unknown backend {backend!r}", field="backend")

    # state
    t_init = np.broadcast_to(np.asarray(medium.initial_temperature_c, float), shape)
    T = np.ascontiguousarray(t_init, dtype=np.float64).copy()
    cu = np.ascontiguousarray(medium.heat_capacity_vol, dtype=np.float64)
    invku = np.ascontiguousarray(1.0 / medium.conductivity, dtype=np.float64)
    base_held = np.zeros(shape, bool) if medium.held is None else medium.held.astype(bool)
    base_thold = np.broadcast_to(np.asarray(medium.held_temperature_c, float), shape).astype(np.float64)
    base_rwall = np.where(base_held, np.broadcast_to(np.asarray(medium.wall_resistance, float), shape), 0.0)
    T[base_held] = base_thold[base_held]
    st = {
        "T": T,
        "H": np.zeros(shape),
        "ik": np.zeros(shape),
        "cu": cu,
        "invku": invku,
        "W": np.ascontiguousarray(medium.perfusion, dtype=np.float64),
        "shut": np.zeros(shape, np.uint8),
        "q": np.zeros(shape),
        "cem": np.zeros(shape),
        "dmg": np.zeros(shape),
        "tmax": T.copy(),
        "tmin": T.copy(),
        "held": base_held.copy(),
        "thold": base_thold.copy(),
        "rwall": np.ascontiguousarray(base_rwall, dtype=np.float64),
    }
    st["H"] = _np_h_of_t(T, cu, c).astype(np.float64)
    st["ik"] = np.where(base_held, 0.0, _np_invk(T, invku, c))
    d = tuple(s * 1e-3 for s in medium.spacing_mm[::-1])  # (dk, dj, di) in m

    # time breakpoints: schedule changes and snapshots
    marks = {0.0, float(duration_s)}
    for s in sources:
        for a, b, _ in s.schedule:
            marks.update((float(a), float(b)))
    for hs in held_sources:
        for a, b, _ in hs.schedule:
            marks.update((float(a), float(b)))
    snaps = sorted({float(x) for x in snapshot_times_s if 0 < x <= duration_s} | {float(duration_s)})
    marks.update(snaps)
    marks_sorted = sorted(m for m in marks if 0 <= m <= duration_s)

    out_t: list[float] = []
    out_T: list[np.ndarray] = []
    out_cem: list[np.ndarray] = []
    out_dmg: list[np.ndarray] = []
    n_steps = 0
    t_start = time.perf_counter()
    Tn = np.empty_like(T)
    ikn = np.empty_like(T)
    dt_used = dt_max
    for a, b in zip(marks_sorted[:-1], marks_sorted[1:], strict=True):
        mid = 0.5 * (a + b)
        q = np.zeros(shape)
        for s in sources:
            lev = _level(s.schedule, mid)
            if lev:
                q += lev * s.pattern
        st["q"] = q
        held = base_held.copy()
        thold = base_thold.copy()
        rwall = base_rwall.copy()
        for hs in held_sources:
            if _level(hs.schedule, mid) > 0:
                held |= hs.mask
                thold[hs.mask] = hs.temperature_c
                rwall[hs.mask] = 0.0
        released = st["held"] & ~held
        if released.any():  # a probe switched off: its voxels become tissue again
            Tcur = st["T"]
            st["H"][released] = _np_h_of_t(Tcur[released], cu[released], c)
            st["ik"][released] = _np_invk(Tcur[released], invku[released], c)
        st["held"], st["thold"], st["rwall"] = held, thold, rwall
        nsub = max(1, math.ceil((b - a) / dt_max - 1e-9))
        dt = (b - a) / nsub
        dt_used = min(dt_used, dt) if n_steps else dt
        linear = method == "explicit" and not any_cryo
        if linear:
            st["g"] = _face_conductances(st["ik"], st["rwall"], d)
            icu = np.where(st["held"], 0.0, 1.0 / cu)
            icu[0, :, :] = icu[-1, :, :] = 0.0
            icu[:, 0, :] = icu[:, -1, :] = 0.0
            icu[:, :, 0] = icu[:, :, -1] = 0.0
            st["icu"] = icu
            Tn[...] = st["T"]
        for m in range(nsub):
            if progress is not None and m % 25 == 24:
                progress(a + m * dt, duration_s)
            if linear and backend == "numba":
                gk, gj, gi = st["g"]
                _step_linear_numba(st["T"], Tn, gk, gj, gi, st["icu"], st["W"], st["shut"], st["q"], st["cem"],
                                   st["dmg"], st["tmax"], dt, c.ta, c.shut_c, c.shut_dmg, c.ln_r_above,
                                   c.ln_r_below, c.ln_a, c.ea_over_r, c.floor_c)
                st["T"], Tn = Tn, st["T"]
            elif linear:
                _step_linear_numpy(st, dt, c)
            elif method == "implicit":
                _step_implicit(st, dt, d, c)
            elif backend == "numba":
                _step_numba(st["T"], Tn, st["H"], st["ik"], ikn, st["rwall"], st["held"], st["thold"], cu, invku,
                            st["W"], st["shut"], st["q"], st["cem"], st["dmg"], st["tmax"], st["tmin"],
                            dt, d[0], d[1], d[2], c.ts, c.tl, c.lat, c.cf, c.invkf, c.ta, c.shut_c,
                            c.shut_dmg, c.ln_r_above, c.ln_r_below, c.ln_a, c.ea_over_r, c.floor_c)
                st["T"], Tn = Tn, st["T"]
                st["ik"], ikn = ikn, st["ik"]
            else:
                _step_numpy(st, dt, d, c)
            n_steps += 1
        if progress is not None:
            progress(b, duration_s)
        if any(abs(b - s) < 1e-9 for s in snaps):
            out_t.append(b)
            out_T.append(st["T"].astype(np.float32))
            out_cem.append(np.minimum(st["cem"], _F32_CAP).astype(np.float32))
            out_dmg.append(np.minimum(st["dmg"], _F32_CAP).astype(np.float32))
    runtime = time.perf_counter() - t_start
    return BioheatSolution(
        times_s=out_t,
        temperature_c=out_T,
        cem43_min=out_cem,
        damage=out_dmg,
        max_temperature_c=st["tmax"].astype(np.float32),
        min_temperature_c=np.minimum(st["tmin"], np.min(out_T, axis=0)).astype(np.float32),
        dt_s=float(dt_used),
        dt_limit_s=float(limit),
        method=method,
        backend=backend if method == "explicit" else "scipy",
        n_steps=n_steps,
        runtime_s=runtime,
        voxel_updates=n_steps * int(np.prod(shape)),
    )
