"""Pennes bioheat solver on a voxel grid.

    rho c dT/dt = div(k grad T) + w_b rho_b c_b (T_a - T) + Q

written in enthalpy form (H per volume) so that freezing tissue releases latent heat between the
solidus and liquidus (cryoablation ice balls). Finite volumes on the 7-point stencil: the face
conductance between two voxels is the series sum of their half-cell resistances (the harmonic mean
of conductivities for equal spacing). Large vessels and cryoprobes are *held* voxels: their
temperature is fixed (blood at 37 °C, probe at its set temperature) and heat reaches them through an
extra wall resistance 1/h, so a vessel's strength follows its flow (see vessels.py). The outer
faces of the grid are held at the initial temperature, or insulated (zero flux) on request.

Time stepping is chosen once per run (a *stepper*): forward Euler within its stability limit, or
backward Euler with conjugate gradients (scipy.sparse; coefficients lagged one step) when the explicit
step count would be too large. Runs with freezing probes take RKL2 super-steps (Runge-Kutta-Legendre,
second order: s stages stable up to (s^2 + s - 2) / 4 explicit steps) on the box where the temperature
has left its steady baseline (see SolverOptions). Without phase change or temperature-dependent properties the explicit
step is one fused numba kernel (stencil, perfusion, CEM43, Arrhenius, shutdown, Tmax in one pass;
temperature stored as float32 rise above arterial by default; the CEM43 exponential evaluated with a
vectorisable range-reduced polynomial instead of libm). Thermal dose (CEM43) and Arrhenius damage are
accumulated inside the step loop, exactly (CEM43) for a temperature linear between steps, so no
history is kept.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

# OpenMP threads spin while they wait by default; on a shared machine the spinning thread takes the
# core the working one needs (bioheat_bench: 1.79x over numpy spinning vs 3.32x passive, 2 threads,
# load 7-8). Set before numba starts OpenMP; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402
from scipy import sparse
from scipy.sparse.linalg import cg

from openir.core.errors import DataFileError, InputError

from .dose import arrhenius_interval, cem43_interval, dose_constants
from .tissues import TissueTable, load_tissue_table

Schedule = Sequence[tuple[float, float, float]]  # (start_s, end_s, level): W for heat, 1/0 for held
Method = Literal["auto", "explicit", "implicit"]
Backend = Literal["numba", "numpy"]
Boundary = Literal["fixed", "insulated"]
Precision = Literal["float32", "float64"]
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
    """Voxels clamped to ``temperature_c`` while the schedule level is > 0 (cryoprobe freeze).

    ``max_power_w``: a probe of finite cooling power (Joule-Thomson gas). It then holds, for each
    control interval (SolverOptions.power_control_s), the lowest temperature at which the heat
    conducted into its voxels from their neighbours stays <= ``max_power_w``; ``temperature_c`` is
    the floor (the gas). Under a high heat load the probe runs warmer; neighbours that pre-cool the
    tissue let it run colder. None = fixed temperature.
    """

    mask: np.ndarray
    temperature_c: float
    schedule: Schedule
    name: str = "cryoprobe"
    max_power_w: float | None = None


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


@dataclass(frozen=True)
class SolverOptions:
    """Solver choices added after the first release (the classic ones stay keywords of solve_pennes).

    ``boundary``: 'fixed' holds the outer voxel layer at its initial temperature (the grid's edge
    is body at rest); 'insulated' lets no heat through the outer faces (an ex vivo sample in air, a
    symmetry plane). ``temperature_dependent``: unfrozen conductivity rises with temperature as
    published for liver (tissues.yaml ``temperature_dependence``); explicit runs then take the
    enthalpy kernel. ``precision``: storage of the fused explicit kernel; 'float32' stores the rise
    above arterial temperature (rounding < 2e-6 °C per step, checked against the analytic cases),
    'float64' for bit-level comparisons. ``backend``: explicit kernel ('numba' fused, 'numpy' the
    plain reference). ``safety`` x the stability limit is the explicit step; ``method='auto'`` turns
    implicit when that needs more than ``max_explicit_steps`` steps. ``perfusion_shutdown`` stops
    perfusion irreversibly where tissue coagulates or freezes (off only for analytic checks).
    ``active_region``: the explicit enthalpy step (cryo, k(T)) updates only the box where the
    temperature has left its steady baseline, grown as the front moves (the rest of a steady
    baseline does not change); the box's outer layer is held at baseline and the box grows by a
    margin as soon as a voxel within two layers of it departs by more than
    ``active_tolerance_c``, so the result differs from the full-grid step by about that much.
    ``super_step_s``: runs with freezing probes (whose frozen tissue limits the explicit step to
    ~0.1 s at 1 mm) take RKL2 super-steps of this length (Runge-Kutta-Legendre, second order,
    ~2 sqrt(step / explicit step) stages each; fixed boundary); None = plain forward Euler.
    ``power_control_s``: how often a power-limited probe (HeldSource.max_power_w) resets its
    temperature to the load it carries.

    >>> SolverOptions(boundary="insulated").boundary
    'insulated'
    """

    boundary: Boundary = "fixed"
    temperature_dependent: bool = False
    precision: Precision = "float32"
    backend: Backend = "numba"
    max_explicit_steps: int = 20000
    safety: float = 0.9
    perfusion_shutdown: bool = True
    active_region: bool = True
    active_tolerance_c: float = 1e-3
    super_step_s: float | None = 8.0
    power_control_s: float = 8.0


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
    k_slope: float = 0.0
    k_ref: float = 37.0
    k_cap: float = 37.0


def _consts(table: TissueTable, temperature_dependent: bool = False) -> _Consts:
    f = table.freezing
    d = dose_constants(table)
    td = table.temperature_dependence
    if temperature_dependent and td is None:
        raise DataFileError("temperature-dependent properties requested but the tissue table has no "
                            "temperature_dependence section")
    kdep = {}
    if temperature_dependent and td is not None:
        kdep = {"k_slope": td.conductivity_slope_per_c.value, "k_ref": td.conductivity_reference_c.value,
                "k_cap": max(td.conductivity_cap_c.value, td.conductivity_reference_c.value)}
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
        **kdep,
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
def _invk_of_t(t: float, invku: float, invkf: float, ts: float, tl: float, k_slope: float, k_ref: float,
               k_cap: float) -> float:
    if t >= tl:
        return invku / (1.0 + k_slope * (min(max(t, k_ref), k_cap) - k_ref))
    if t <= ts:
        return invkf
    fl = (t - ts) / (tl - ts)
    k = 1.0 / invkf + (1.0 / invku - 1.0 / invkf) * fl
    return 1.0 / k


# ---- fused explicit step without phase change (numba) ------------------------------------------------
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: thresholds may be inf
_FAST_NOREASSOC = {"nsz", "arcp", "contract", "afn"}  # the exp's rounding trick must not be reassociated
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_MAGIC = 6755399441055744.0  # 1.5 * 2**52: x + MAGIC rounds x to an integer held in the low mantissa bits
_EXP_BIAS = int(np.array([_MAGIC]).view(np.int64)[0]) - 1023


@njit(parallel=True, cache=True, fastmath=_FAST_NOREASSOC)
def _step_fused(U, Un, gk, gj, gi, icu, W, q, cem, dmg, umax, dt, ta, shut_c, shut_dmg,
                ln_hi, ln_lo, ln_a, ea_over_r, floor_c):  # pragma: no cover - compiled
    """One forward-Euler step of the linear problem with dose, perfusion shutdown and Tmax, fused.

    ``U`` is the temperature rise above ``ta`` (float32 or float64). Faces: ``g*[n]`` couples voxel n
    and n+1 along that axis (W/m^3/K); outer neighbours are clamped to the voxel itself, so the outer
    faces carry no flux (insulated) and a fixed boundary is made by ``icu == 0`` there, as for held
    voxels. Row by row: the stencil, then CEM43 for every voxel with a branch-free exponential
    (2^n by exponent bits times a degree-8 polynomial, relative error < 3e-10) so that the loop
    vectorises, then an exact pass only for the rare voxels that need it (crossing 43 °C, fast change,
    above the Arrhenius floor, perfusion shutdown).
    """
    nk, nj, ni = U.shape
    c60 = dt / 60.0
    for k in prange(nk):
        km = k - 1 if k > 0 else 0
        kp = k + 1 if k < nk - 1 else nk - 1
        val = np.empty(ni)
        kd = np.empty(ni)
        kb = kd.view(np.int64)
        for j in range(nj):
            jm = j - 1 if j > 0 else 0
            jp = j + 1 if j < nj - 1 else nj - 1
            u = U[k, j]
            un = Un[k, j]
            ukm = U[km, j]
            ukp = U[kp, j]
            ujm = U[k, jm]
            ujp = U[k, jp]
            gkm = gk[km, j]
            gkc = gk[k, j]
            gjm = gj[k, jm]
            gjc = gj[k, j]
            gic = gi[k, j]
            ic = icu[k, j]
            wr = W[k, j]
            qr = q[k, j]
            for i in range(ni):
                u0 = u[i]
                val[i] = (gkm[i] * (ukm[i] - u0) + gkc[i] * (ukp[i] - u0) + gjm[i] * (ujm[i] - u0)
                          + gjc[i] * (ujp[i] - u0) + qr[i] - wr[i] * u0)
            for i in range(1, ni - 1):
                u0 = u[i]
                val[i] += gic[i - 1] * (u[i - 1] - u0) + gic[i] * (u[i + 1] - u0)
            val[0] += gic[0] * (u[1] - u[0])
            val[ni - 1] += gic[ni - 2] * (u[ni - 2] - u[ni - 1])
            for i in range(ni):
                un[i] = u[i] + dt * ic[i] * val[i]
            # CEM43 = dt/60 R^(43 - Tmid) sinh(y)/y for T linear in the step, y half the exponent change
            for i in range(ni):
                t0 = u[i] + ta
                t1 = un[i] + ta
                tm = 0.5 * (t0 + t1)
                lnr = ln_hi if tm >= 43.0 else ln_lo
                y = 0.5 * lnr * (t0 - t1)
                y2 = y * y
                s = 1.0 + y2 * (1.0 / 6.0 + y2 * (1.0 / 120.0))
                z = min(max(lnr * (43.0 - tm), -700.0), 700.0) * _LOG2E
                kk = z + _MAGIC
                x = (z - (kk - _MAGIC)) * _LN2
                p = 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (
                    1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))))
                kd[i] = kk
                val[i] = c60 * p * s
            um = umax[k, j]
            nfix = 0
            for i in range(ni):
                t0 = u[i] + ta
                t1 = un[i] + ta
                big = abs(0.5 * (ln_hi if t0 + t1 >= 86.0 else ln_lo) * (t0 - t1)) >= 0.05
                nfix += (t0 > floor_c) | (t1 > floor_c) | (t1 >= shut_c) | ((t0 - 43.0) * (t1 - 43.0) < 0.0) | big
                um[i] = max(um[i], un[i])
            for i in range(ni):
                kb[i] = (kb[i] - _EXP_BIAS) << 52  # 2^n as float64 bits
            cr = cem[k, j]
            for i in range(ni):
                cr[i] += val[i] * kd[i]
            if nfix == 0:
                continue
            for i in range(ni):
                t0 = u[i] + ta
                t1 = un[i] + ta
                lnr = ln_hi if 0.5 * (t0 + t1) >= 43.0 else ln_lo
                if (t0 - 43.0) * (t1 - 43.0) < 0.0 or abs(0.5 * lnr * (t0 - t1)) >= 0.05:
                    cr[i] += cem43_interval(t0, t1, dt, ln_hi, ln_lo) - val[i] * kd[i]
                if t0 > floor_c or t1 > floor_c:
                    om = dmg[k, j, i] + arrhenius_interval(t0, t1, dt, ln_a, ea_over_r, floor_c)
                    dmg[k, j, i] = om
                    if om >= shut_dmg:
                        wr[i] = 0.0
                if t1 >= shut_c:
                    wr[i] = 0.0


# ---- explicit enthalpy step (numba): phase change, held voxels switching, k(T) ----------------------
@njit(parallel=True, cache=True, fastmath=_FAST)
def _step_numba(T, Tn, H, ik, ikn, rwall, held, thold, cu, invku, W, shut, q, cem, dmg, tmax, tmin,
                dt, dk, dj, di, fixed_edge, ts, tl, lat, cf, invkf, ta, shut_c, shut_dmg,
                ln_hi, ln_lo, ln_a, ea_over_r, floor_c, k_slope, k_ref, k_cap):  # pragma: no cover - compiled
    nk, nj, ni = T.shape
    hk = 0.5 * dk
    hj = 0.5 * dj
    hi = 0.5 * di
    for k in prange(nk):
        km = k - 1 if k > 0 else 0
        kp = k + 1 if k < nk - 1 else nk - 1
        for j in range(nj):
            jm = j - 1 if j > 0 else 0
            jp = j + 1 if j < nj - 1 else nj - 1
            for i in range(ni):
                im = i - 1 if i > 0 else 0
                ip = i + 1 if i < ni - 1 else ni - 1
                t0 = T[k, j, i]
                edge = k == 0 or j == 0 or i == 0 or k == nk - 1 or j == nj - 1 or i == ni - 1
                if fixed_edge and edge:
                    t1 = t0
                    Tn[k, j, i] = t0
                    ikn[k, j, i] = ik[k, j, i]
                elif held[k, j, i]:
                    t1 = thold[k, j, i]
                    Tn[k, j, i] = t1
                    ikn[k, j, i] = 0.0
                    H[k, j, i] = _h_of_t(t1, cu[k, j, i], cf, lat, ts, tl)
                else:
                    # a clamped (outer) neighbour is the voxel itself: zero flux through that face
                    rc = ik[k, j, i]
                    fl = (T[km, j, i] - t0) / (hk * (rc + ik[km, j, i]) + rwall[km, j, i])
                    fl += (T[kp, j, i] - t0) / (hk * (rc + ik[kp, j, i]) + rwall[kp, j, i])
                    fj = (T[k, jm, i] - t0) / (hj * (rc + ik[k, jm, i]) + rwall[k, jm, i])
                    fj += (T[k, jp, i] - t0) / (hj * (rc + ik[k, jp, i]) + rwall[k, jp, i])
                    fi = (T[k, j, im] - t0) / (hi * (rc + ik[k, j, im]) + rwall[k, j, im])
                    fi += (T[k, j, ip] - t0) / (hi * (rc + ik[k, j, ip]) + rwall[k, j, ip])
                    rate = fl / dk + fj / dj + fi / di + q[k, j, i]
                    if shut[k, j, i] == 0:
                        rate += W[k, j, i] * (ta - t0)
                    h = H[k, j, i] + dt * rate
                    H[k, j, i] = h
                    t1 = _t_of_h(h, cu[k, j, i], cf, lat, ts, tl)
                    Tn[k, j, i] = t1
                    ikn[k, j, i] = _invk_of_t(t1, invku[k, j, i], invkf, ts, tl, k_slope, k_ref, k_cap)
                cem[k, j, i] += cem43_interval(t0, t1, dt, ln_hi, ln_lo)
                om = dmg[k, j, i] + arrhenius_interval(t0, t1, dt, ln_a, ea_over_r, floor_c)
                dmg[k, j, i] = om
                if t1 > tmax[k, j, i]:
                    tmax[k, j, i] = t1
                if t1 < tmin[k, j, i]:
                    tmin[k, j, i] = t1
                if t1 >= shut_c or om >= shut_dmg or t1 <= ts:
                    shut[k, j, i] = 1


# ---- super-time-stepping (RKL2, Meyer, Balsara & Aslam, J Comput Phys 2014;257:594) -----------------
def rkl2_stages(dt: float, dt_explicit: float) -> int:
    """Fewest RKL2 stages s whose stable step dt_explicit (s^2 + s - 2) / 4 reaches ``dt``."""
    need = 4.0 * dt / dt_explicit
    s = 2
    while s * s + s - 2 < need * (1 - 1e-12):
        s += 1
    return s


def rkl2_coefficients(s: int) -> np.ndarray:
    """Rows j = 1..s of (mu, nu, mu~, gamma~) for Y_j = mu Y_{j-1} + nu Y_{j-2} + (1 - mu - nu) Y_0
    + mu~ dt M(Y_{j-1}) + gamma~ dt M(Y_0) (row 0 unused; stage 1 is Y_0 + mu~ dt M(Y_0))."""
    w1 = 4.0 / (s * s + s - 2)
    b = np.array([1.0 / 3.0] * 3 + [(j * j + j - 2) / (2.0 * j * (j + 1)) for j in range(3, s + 1)])
    a = 1.0 - b
    out = np.zeros((s + 1, 4))
    out[1] = (0.0, 0.0, b[1] * w1, 0.0)
    for j in range(2, s + 1):
        mu = (2 * j - 1) / j * b[j] / b[j - 1]
        nu = -(j - 1) / j * b[j] / b[j - 2]
        out[j] = (mu, nu, mu * w1, -a[j - 1] * mu * w1)
    return out


@njit(parallel=True, cache=True, fastmath=_FAST)
def _rkl_stage(T, Tn, ik, ikn, H0, Hm1, Hm2, M0, rwall, held, cu, invku, W, shut, q, coef, dt, first, walls,
               dk, dj, di, ts, tl, lat, cf, invkf, ta, k_slope, k_ref, k_cap):  # pragma: no cover - compiled
    """One RKL2 stage on the enthalpy: reads T/ik (state Y_{j-1}), writes Y_j into ``Hm2`` (or, for the
    first stage, Y_1 into ``Hm1`` and M(Y_0) into ``M0``) and its temperature / 1/k into Tn / ikn.
    Held voxels and the outer layer keep their temperature; their enthalpy is not a state."""
    nk, nj, ni = T.shape
    hk = 0.5 * dk
    hj = 0.5 * dj
    hi = 0.5 * di
    mu = coef[0]
    nu = coef[1]
    mut = coef[2]
    gam = coef[3]
    for k in prange(nk):
        km = k - 1 if k > 0 else 0
        kp = k + 1 if k < nk - 1 else nk - 1
        for j in range(nj):
            jm = j - 1 if j > 0 else 0
            jp = j + 1 if j < nj - 1 else nj - 1
            for i in range(ni):
                t0 = T[k, j, i]
                if held[k, j, i] or k == 0 or j == 0 or i == 0 or k == nk - 1 or j == nj - 1 or i == ni - 1:
                    Tn[k, j, i] = t0
                    ikn[k, j, i] = ik[k, j, i]
                    continue
                im = i - 1
                ip = i + 1
                rc = ik[k, j, i]
                if walls:
                    fl = (T[km, j, i] - t0) / (hk * (rc + ik[km, j, i]) + rwall[km, j, i])
                    fl += (T[kp, j, i] - t0) / (hk * (rc + ik[kp, j, i]) + rwall[kp, j, i])
                    fj = (T[k, jm, i] - t0) / (hj * (rc + ik[k, jm, i]) + rwall[k, jm, i])
                    fj += (T[k, jp, i] - t0) / (hj * (rc + ik[k, jp, i]) + rwall[k, jp, i])
                    fi = (T[k, j, im] - t0) / (hi * (rc + ik[k, j, im]) + rwall[k, j, im])
                    fi += (T[k, j, ip] - t0) / (hi * (rc + ik[k, j, ip]) + rwall[k, j, ip])
                else:
                    fl = (T[km, j, i] - t0) / (hk * (rc + ik[km, j, i]))
                    fl += (T[kp, j, i] - t0) / (hk * (rc + ik[kp, j, i]))
                    fj = (T[k, jm, i] - t0) / (hj * (rc + ik[k, jm, i]))
                    fj += (T[k, jp, i] - t0) / (hj * (rc + ik[k, jp, i]))
                    fi = (T[k, j, im] - t0) / (hi * (rc + ik[k, j, im]))
                    fi += (T[k, j, ip] - t0) / (hi * (rc + ik[k, j, ip]))
                rate = fl / dk + fj / dj + fi / di + q[k, j, i]
                if shut[k, j, i] == 0:
                    rate += W[k, j, i] * (ta - t0)
                if first:
                    M0[k, j, i] = rate
                    h = H0[k, j, i] + mut * dt * rate
                    Hm1[k, j, i] = h
                else:
                    h0 = H0[k, j, i]
                    h = (mu * Hm1[k, j, i] + nu * Hm2[k, j, i] + (1.0 - mu - nu) * h0
                         + mut * dt * rate + gam * dt * M0[k, j, i])
                    Hm2[k, j, i] = h
                t1 = _t_of_h(h, cu[k, j, i], cf, lat, ts, tl)
                Tn[k, j, i] = t1
                ikn[k, j, i] = _invk_of_t(t1, invku[k, j, i], invkf, ts, tl, k_slope, k_ref, k_cap)


@njit(parallel=True, cache=True, fastmath=_FAST)
def _rkl_finish(T0, T1, held, cem, dmg, tmax, tmin, shut, dt, ts, shut_c, shut_dmg,
                ln_hi, ln_lo, ln_a, ea_over_r, floor_c):  # pragma: no cover - compiled
    """Dose, extremes and perfusion shutdown over one super-step (temperature linear between its ends)."""
    nk, nj, ni = T0.shape
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                a = T0[k, j, i]
                b = T1[k, j, i]
                cem[k, j, i] += cem43_interval(a, b, dt, ln_hi, ln_lo)
                om = dmg[k, j, i] + arrhenius_interval(a, b, dt, ln_a, ea_over_r, floor_c)
                dmg[k, j, i] = om
                if b > tmax[k, j, i]:
                    tmax[k, j, i] = b
                if b < tmin[k, j, i]:
                    tmin[k, j, i] = b
                if b >= shut_c or om >= shut_dmg or b <= ts:
                    shut[k, j, i] = 1


def _face_conductances(ik: np.ndarray, rwall: np.ndarray, d: tuple[float, float, float]) -> list[np.ndarray]:
    """Per-axis conductance/spacing (W/m^3/K) of the face between voxel n and n+1 (full shape, last 0).

    Faces between two held voxels (no resistance at all) get 0: neither side is ever updated.
    """
    out = []
    for axis, dd in enumerate(d):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis] = slice(0, ik.shape[axis] - 1)
        b[axis] = slice(1, ik.shape[axis])
        r = 0.5 * dd * (ik[tuple(a)] + ik[tuple(b)]) + rwall[tuple(a)] + rwall[tuple(b)]
        g = np.zeros(ik.shape)
        with np.errstate(divide="ignore"):
            g[tuple(a)] = np.where(r > 0, 1.0 / np.where(r > 0, r, 1.0) / dd, 0.0)
        out.append(g)
    return out


def _face_pairs(shape: tuple[int, ...], axis: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[axis] = slice(0, shape[axis] - 1)
    b[axis] = slice(1, shape[axis])
    return tuple(a), tuple(b)


def _edge_mask(shape: tuple[int, ...]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[0, :, :] = m[-1, :, :] = True
    m[:, 0, :] = m[:, -1, :] = True
    m[:, :, 0] = m[:, :, -1] = True
    return m


# ---- explicit step (plain numpy: reference implementations of the same schemes) ----------------------
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
    ku = (1.0 / invku) * (1.0 + c.k_slope * (np.clip(t, c.k_ref, c.k_cap) - c.k_ref))
    return 1.0 / (1.0 / c.invkf + (ku - 1.0 / c.invkf) * fl)


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


def _np_divergence(T: np.ndarray, g: Sequence[np.ndarray]) -> np.ndarray:
    """sum over faces of g (T_neighbour - T), W/m^3; no face beyond the grid (outer faces insulated)."""
    out = np.zeros_like(T)
    for axis, ga in enumerate(g):
        a, b = _face_pairs(T.shape, axis)
        f = ga[a] * (T[b] - T[a])
        out[a] += f
        out[b] -= f
    return out


# ---- implicit step (backward Euler, lagged coefficients, CG) ------------------------------------------
def _step_implicit(st: SolverState, dt: float, d: tuple[float, float, float], c: _Consts, fixed_edge: bool) -> int:
    T, ik, rw, held = st.T, st.ik, st.rwall, st.held
    shape = T.shape
    n = T.size
    fixed = held | _edge_mask(shape) if fixed_edge else held.copy()
    t_fixed = np.where(held & ~_fixed_edge_mask(shape, fixed_edge), st.thold, T)
    free = ~fixed
    cu = st.cu
    cm = 0.5 * (cu + c.cf)
    capp = np.where(c.ts >= T, c.cf, np.where(c.tl > T, c.lat / (c.tl - c.ts) + cm, cu))
    w_eff = np.where(st.shut == 0, st.W, 0.0)
    diag = capp / dt + w_eff
    rhs = capp / dt * T + w_eff * c.ta + st.q
    idx = np.arange(n).reshape(shape)
    rows, cols, vals = [], [], []
    for axis, dd in enumerate(d):
        a, b = _face_pairs(shape, axis)
        r = 0.5 * dd * (ik[a] + ik[b]) + rw[a] + rw[b]
        with np.errstate(divide="ignore"):
            g = np.where(r > 0, 1.0 / np.where(r > 0, r, 1.0), 0.0) / dd
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
    m = int(fl.sum())
    fidx[fl] = np.arange(m)
    off = sparse.coo_matrix((np.concatenate(vals), (fidx[np.concatenate(rows)], fidx[np.concatenate(cols)])),
                            shape=(m, m))
    dg = diag.ravel()[fl]
    mat = (off + off.T + sparse.diags(dg)).tocsr()
    x, info = cg(mat, rhs.ravel()[fl], x0=T.ravel()[fl], rtol=1e-10, atol=0.0, M=sparse.diags(1.0 / dg), maxiter=2000)
    t1 = t_fixed.copy().ravel()
    t1[fl] = x
    t1 = t1.reshape(shape)
    st.cem += _np_cem(T, t1, dt, c)
    st.dmg += _np_arr(T, t1, dt, c)
    np.maximum(st.tmax, t1, out=st.tmax)
    np.minimum(st.tmin, t1, out=st.tmin)
    st.shut |= ((t1 >= c.shut_c) | (st.dmg >= c.shut_dmg) | (t1 <= c.ts)).astype(np.uint8)
    st.H = _np_h_of_t(t1, cu, c)
    st.ik = np.where(held, 0.0, _np_invk(t1, st.invku, c))
    st.T = t1
    return info


def _fixed_edge_mask(shape: tuple[int, ...], fixed_edge: bool) -> np.ndarray:
    return _edge_mask(shape) if fixed_edge else np.zeros(shape, bool)


# ---- solver state and steppers ---------------------------------------------------------------------------
@dataclass
class SolverState:
    """Everything the time loop changes, arrays ``[k, j, i]`` (SI, °C, float64).

    ``H`` enthalpy per volume, ``ik`` 1/k now, ``cu``/``invku`` unfrozen rho*c and 1/k, ``W`` the
    Pennes coefficient, ``shut`` 1 where perfusion has stopped, ``q`` the current heat source,
    ``held``/``thold``/``rwall`` the held voxels of the current schedule segment.
    """

    T: np.ndarray
    H: np.ndarray
    ik: np.ndarray
    cu: np.ndarray
    invku: np.ndarray
    W: np.ndarray
    shut: np.ndarray
    q: np.ndarray
    cem: np.ndarray
    dmg: np.ndarray
    tmax: np.ndarray
    tmin: np.ndarray
    held: np.ndarray
    thold: np.ndarray
    rwall: np.ndarray


@dataclass
class _Stepper:
    """One time-stepping scheme, chosen once per run; ``sync`` brings ``st`` up to date."""

    c: _Consts
    d: tuple[float, float, float]
    fixed_edge: bool
    name: str = "stepper"

    def start_segment(self, st: SolverState) -> None:  # noqa: B027 - optional hook
        """Called after the driver changed ``st.q`` or the held voxels."""

    def step(self, st: SolverState, dt: float) -> None:
        raise NotImplementedError

    def sync(self, st: SolverState) -> None:  # noqa: B027 - optional hook
        """Write any private working copy back into ``st``."""


def _linear_coefficients(st: SolverState, s: _Stepper) -> tuple[list[np.ndarray], np.ndarray]:
    """Face conductances and 1/(rho c), 0 where a voxel never changes (held, fixed edge)."""
    g = _face_conductances(st.ik, st.rwall, s.d)
    icu = np.where(st.held, 0.0, 1.0 / st.cu)
    if s.fixed_edge:
        icu[_edge_mask(icu.shape)] = 0.0
    return g, icu


@dataclass
class _FusedStepper(_Stepper):
    """Linear explicit step, the fused numba kernel; temperature kept as the rise above arterial."""

    dtype: type = np.float32
    _w: dict = field(default_factory=dict)

    def start_segment(self, st: SolverState) -> None:
        w, c = self._w, self.c
        if not w:
            g, icu = _linear_coefficients(st, self)
            w["g"] = [np.ascontiguousarray(x, self.dtype) for x in g]
            w["icu"] = icu.astype(self.dtype)
            w["W"] = np.where(st.shut == 0, st.W, 0.0).astype(self.dtype)
            w["U"] = (st.T - c.ta).astype(self.dtype)
            w["Un"] = w["U"].copy()
            w["umax"] = (st.tmax - c.ta).astype(self.dtype)
        w["q"] = st.q.astype(self.dtype)

    def step(self, st: SolverState, dt: float) -> None:
        w, c = self._w, self.c
        gk, gj, gi = w["g"]
        _step_fused(w["U"], w["Un"], gk, gj, gi, w["icu"], w["W"], w["q"], st.cem, st.dmg, w["umax"], dt, c.ta,
                    c.shut_c, c.shut_dmg, c.ln_r_above, c.ln_r_below, c.ln_a, c.ea_over_r, c.floor_c)
        w["U"], w["Un"] = w["Un"], w["U"]

    def sync(self, st: SolverState) -> None:
        w, c = self._w, self.c
        if w:
            st.T = w["U"].astype(np.float64) + c.ta
            st.tmax = np.maximum(st.tmax, w["umax"].astype(np.float64) + c.ta)
            st.shut = np.where((w["W"] == 0) & (st.W > 0), 1, st.shut).astype(np.uint8)


@dataclass
class _LinearNumpyStepper(_Stepper):
    """The same linear scheme in plain numpy (reference; exact CEM43 closed form)."""

    _w: dict = field(default_factory=dict)

    def start_segment(self, st: SolverState) -> None:
        if not self._w:
            self._w["g"], self._w["icu"] = _linear_coefficients(st, self)

    def step(self, st: SolverState, dt: float) -> None:
        c, T = self.c, st.T
        rate = _np_divergence(T, self._w["g"]) + st.q + np.where(st.shut == 0, st.W * (c.ta - T), 0.0)
        t1 = T + dt * self._w["icu"] * rate
        st.cem += _np_cem(T, t1, dt, c)
        st.dmg += _np_arr(T, t1, dt, c)
        np.maximum(st.tmax, t1, out=st.tmax)
        st.shut |= ((t1 >= c.shut_c) | (st.dmg >= c.shut_dmg)).astype(np.uint8)
        st.T = t1


@njit(cache=True)
def _slab_max(T, Tb, k0, k1, j0, j1, i0, i1):  # pragma: no cover - compiled
    m = 0.0
    for k in range(k0, k1):
        for j in range(j0, j1):
            for i in range(i0, i1):
                dv = abs(T[k, j, i] - Tb[k, j, i])
                if dv > m:
                    m = dv
    return m


@njit(cache=True)
def _shell_departure(T, Tb, k0, k1, j0, j1, i0, i1, w):  # pragma: no cover - compiled
    """Largest |T - Tb| on each face of the box [k0:k1, j0:j1, i0:i1], over the ``w`` layers inside
    its outer (held) layer: (k-, k+, j-, j+, i-, i+)."""
    a0, a1, b0, b1, c0, c1 = k0 + 1, k1 - 1, j0 + 1, j1 - 1, i0 + 1, i1 - 1
    out = np.zeros(6)
    out[0] = _slab_max(T, Tb, a0, min(a0 + w, a1), b0, b1, c0, c1)
    out[1] = _slab_max(T, Tb, max(a1 - w, a0), a1, b0, b1, c0, c1)
    out[2] = _slab_max(T, Tb, a0, a1, b0, min(b0 + w, b1), c0, c1)
    out[3] = _slab_max(T, Tb, a0, a1, max(b1 - w, b0), b1, c0, c1)
    out[4] = _slab_max(T, Tb, a0, a1, b0, b1, c0, min(c0 + w, c1))
    out[5] = _slab_max(T, Tb, a0, a1, b0, b1, max(c1 - w, c0), c1)
    return out


def _baseline_rate(st: SolverState, c: _Consts, d: tuple[float, float, float]) -> np.ndarray:
    """|dT/dt| (K/s) of the initial state without probes: zero where the baseline is steady."""
    T, ik, rw = st.T, st.ik, st.rwall
    rate = np.where(st.shut == 0, st.W * (c.ta - T), 0.0)
    for axis, dd in enumerate(d):
        a, b = _face_pairs(T.shape, axis)
        r = 0.5 * dd * (ik[a] + ik[b]) + rw[a] + rw[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(r > 0, (T[b] - T[a]) / np.where(r > 0, r, 1.0), 0.0) / dd
        rate[a] += f
        rate[b] -= f
    return np.where(st.held, 0.0, np.abs(rate) / st.cu)


def _bbox(mask: np.ndarray) -> list[int] | None:
    """[k0, k1, j0, j1, i0, i1] (half-open) of the True voxels, or None."""
    if not mask.any():
        return None
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out += [int(idx[0]), int(idx[-1]) + 1]
    return out


@dataclass
class _ActiveBox:
    """The box of voxels the explicit step updates (half-open [k0, k1, j0, j1, i0, i1], outer layer held).

    Outside it the temperature is the steady baseline ``Tb``; thermal dose there accrues at the
    baseline rate and is added whenever the box grows or the state is read (``catch_up``).
    """

    box: list[int]
    Tb: np.ndarray
    cem_rate: np.ndarray
    dmg_rate: np.ndarray
    tolerance_c: float
    t: float = 0.0
    t_caught: float = 0.0
    updates: int = 0
    grown: int = 0

    def full(self, shape: tuple[int, ...]) -> bool:
        return self.box == [0, shape[0], 0, shape[1], 0, shape[2]]

    def view(self) -> tuple[slice, slice, slice]:
        b = self.box
        return slice(b[0], b[1]), slice(b[2], b[3]), slice(b[4], b[5])

    def catch_up(self, st: SolverState) -> None:
        lag = self.t - self.t_caught
        if lag > 0 and not self.full(st.T.shape):
            outside = np.ones(st.T.shape, bool)
            outside[self.view()] = False
            np.add(st.cem, self.cem_rate * lag, out=st.cem, where=outside)
            np.add(st.dmg, self.dmg_rate * lag, out=st.dmg, where=outside)
        self.t_caught = self.t

    def include(self, st: SolverState, mask: np.ndarray | None, halo: int) -> None:
        """Grow the box to hold ``mask`` (dilated by ``halo`` voxels and the held outer layer)."""
        bb = _bbox(mask) if mask is not None else None
        if bb is None:
            return
        new = self._union(bb, halo, st.T.shape)
        if new != self.box:
            self.catch_up(st)
            self.box = new
            self.grown += 1

    def _union(self, bb: list[int], halo: int, shape: tuple[int, ...]) -> list[int]:
        out = list(self.box)
        for a in range(3):
            lo, hi = max(0, bb[2 * a] - halo - 1), min(shape[a], bb[2 * a + 1] + halo + 1)
            if self.box[2 * a + 1] <= self.box[2 * a]:  # empty box
                out[2 * a], out[2 * a + 1] = lo, hi
            else:
                out[2 * a], out[2 * a + 1] = min(out[2 * a], lo), max(out[2 * a + 1], hi)
        return out

    def check(self, st: SolverState, width: int = 2) -> None:
        """Grow every face whose ``width`` inner layers departed from the baseline by more than the
        tolerance (an explicit stage moves information one voxel)."""
        shape = st.T.shape
        if self.full(shape):
            return
        b = self.box
        dev = _shell_departure(st.T, self.Tb, b[0], b[1], b[2], b[3], b[4], b[5], width)
        if not (dev > self.tolerance_c).any():
            return
        new = list(b)
        for a in range(3):
            grow = max(2 * width, (b[2 * a + 1] - b[2 * a]) // 8)
            if dev[2 * a] > self.tolerance_c:
                new[2 * a] = max(0, b[2 * a] - grow)
            if dev[2 * a + 1] > self.tolerance_c:
                new[2 * a + 1] = min(shape[a], b[2 * a + 1] + grow)
        if new != b:
            self.catch_up(st)
            self.box = new
            self.grown += 1


@dataclass
class _EnthalpyNumbaStepper(_Stepper):
    """Explicit enthalpy step (phase change, switching held voxels, k(T)), numba.

    With ``active_tolerance_c`` set and a fixed outer boundary, only the active box is stepped
    (see _ActiveBox and SolverOptions.active_region).
    """

    active_tolerance_c: float | None = None
    _w: dict = field(default_factory=dict)
    _box: _ActiveBox | None = None

    def start_segment(self, st: SolverState) -> None:
        if not self._w:
            self._w["Tn"] = st.T.copy()  # outside the active box both buffers keep the baseline
            self._w["ikn"] = st.ik.copy()
            if self.active_tolerance_c is not None and self.fixed_edge:
                self._box = self._new_box(st)
        if self._box is not None:
            # every voxel a source or a probe now touches, and probes just released
            touched = (st.q != 0) | (st.held & (st.thold != self._box.Tb)) | (st.held != self._w.get("held", st.held))
            self._box.include(st, touched, 2)
            self._w["held"] = st.held.copy()

    def _new_box(self, st: SolverState) -> _ActiveBox:
        c = self.c
        rate = _baseline_rate(st, c, self.d)
        tb = st.T.copy()
        box = _ActiveBox([0, 0, 0, 0, 0, 0], tb, _np_cem(tb, tb, 1.0, c), _np_arr(tb, tb, 1.0, c),
                         float(self.active_tolerance_c))  # type: ignore[arg-type]
        edge = _edge_mask(st.T.shape)
        box.include(st, (rate > 1e-9) & ~edge, 2)  # an unsteady baseline (e.g. not at arterial temperature)
        return box

    def step(self, st: SolverState, dt: float) -> None:
        c, d = self.c, self.d
        Tn, ikn = self._w["Tn"], self._w["ikn"]
        bx = self._box
        if bx is None or bx.full(st.T.shape):
            v: tuple[slice, ...] = (slice(None),) * 3
        else:
            bx.check(st)
            v = bx.view()
        if bx is not None:
            bx.t += dt
            bx.updates += int(np.prod([s.stop - s.start for s in v])) if v[0].stop is not None else st.T.size
        if v[0].stop is not None and (v[0].stop - v[0].start < 3 or v[1].stop - v[1].start < 3
                                      or v[2].stop - v[2].start < 3):
            return  # nothing departs from the baseline yet
        _step_numba(st.T[v], Tn[v], st.H[v], st.ik[v], ikn[v], st.rwall[v], st.held[v], st.thold[v], st.cu[v],
                    st.invku[v], st.W[v], st.shut[v], st.q[v], st.cem[v], st.dmg[v], st.tmax[v], st.tmin[v], dt,
                    d[0], d[1], d[2], self.fixed_edge, c.ts, c.tl, c.lat, c.cf, c.invkf, c.ta, c.shut_c, c.shut_dmg,
                    c.ln_r_above, c.ln_r_below, c.ln_a, c.ea_over_r, c.floor_c, c.k_slope, c.k_ref, c.k_cap)
        self._w["Tn"], st.T = st.T, Tn
        self._w["ikn"], st.ik = st.ik, ikn

    def sync(self, st: SolverState) -> None:
        if self._box is not None:
            self._box.catch_up(st)


@dataclass
class _RklEnthalpyStepper(_EnthalpyNumbaStepper):
    """RKL2 super-steps of the enthalpy problem: ``dt`` per call, in as few stages as stability allows.

    Each stage costs about one explicit step; s stages are stable up to dt_explicit (s^2 + s - 2) / 4,
    so a step of dt takes ~2 sqrt(dt / dt_explicit) stages instead of dt / dt_explicit. Second order
    in time. Only with a fixed outer boundary (the outer layer is held).
    """

    dt_explicit: float = 0.0

    def start_segment(self, st: SolverState) -> None:
        first = not self._w
        super().start_segment(st)
        st.T[st.held] = st.thold[st.held]  # probes switched on now hold their temperature
        st.ik[st.held] = 0.0
        if first:
            for name in ("Ta", "Tb"):
                self._w[name] = st.T.copy()
            for name in ("ika", "ikb"):
                self._w[name] = st.ik.copy()
            for name in ("Hm1", "Hm2", "M0"):
                self._w[name] = st.H.copy()

    def step(self, st: SolverState, dt: float) -> None:
        c, d, w = self.c, self.d, self._w
        s = rkl2_stages(dt, self.dt_explicit)
        coef = rkl2_coefficients(s)
        bx = self._box
        if bx is None or bx.full(st.T.shape):
            v: tuple[slice, ...] = (slice(None),) * 3
            n = st.T.size
        else:
            bx.check(st, s + 2)
            v = bx.view()
            n = int(np.prod([x.stop - x.start for x in v]))
        if bx is not None:
            bx.t += dt
            bx.updates += n * s
        if v[0].stop is not None and min(x.stop - x.start for x in v) < 3:
            return  # nothing departs from the baseline yet
        T0, ik0, H0 = st.T, st.ik, st.H
        ta_, tb_, ika, ikb, hm1, hm2, m0 = (w[x] for x in ("Ta", "Tb", "ika", "ikb", "Hm1", "Hm2", "M0"))
        args = (st.rwall[v], st.held[v], st.cu[v], st.invku[v], st.W[v], st.shut[v], st.q[v])
        tail = (d[0], d[1], d[2], c.ts, c.tl, c.lat, c.cf, c.invkf, c.ta, c.k_slope, c.k_ref, c.k_cap)
        walls = bool(st.rwall[v].any())  # vessel walls add a resistance; none in most cryo runs
        _rkl_stage(T0[v], ta_[v], ik0[v], ika[v], H0[v], hm1[v], hm2[v], m0[v], *args, coef[1], dt, True, walls, *tail)
        hm2[v] = H0[v]
        tr, ikr, tw, ikw = ta_, ika, tb_, ikb
        for j in range(2, s + 1):
            _rkl_stage(tr[v], tw[v], ikr[v], ikw[v], H0[v], hm1[v], hm2[v], m0[v], *args, coef[j], dt, False, walls,
                       *tail)
            hm1, hm2 = hm2, hm1
            tr, ikr, tw, ikw = tw, ikw, tr, ikr
        _rkl_finish(T0[v], tr[v], st.held[v], st.cem[v], st.dmg[v], st.tmax[v], st.tmin[v], st.shut[v], dt, c.ts,
                    c.shut_c, c.shut_dmg, c.ln_r_above, c.ln_r_below, c.ln_a, c.ea_over_r, c.floor_c)
        # the new state is (tr, ikr, hm1); the old arrays become work buffers
        st.T, st.ik, st.H = tr, ikr, hm1
        w["Ta"], w["Tb"], w["ika"], w["ikb"], w["Hm1"], w["Hm2"] = T0, tw, ik0, ikw, H0, hm2


@dataclass
class _EnthalpyNumpyStepper(_Stepper):
    """The enthalpy step in plain numpy (reference for the numba kernel)."""

    def step(self, st: SolverState, dt: float) -> None:
        c, T, ik, rw = self.c, st.T, st.ik, st.rwall
        rate = st.q + np.where(st.shut == 0, st.W * (c.ta - T), 0.0)
        for axis, dd in enumerate(self.d):
            a, b = _face_pairs(T.shape, axis)
            r = 0.5 * dd * (ik[a] + ik[b]) + rw[a] + rw[b]
            with np.errstate(divide="ignore", invalid="ignore"):  # held-held faces: no flux
                f = np.where(r > 0, (T[b] - T[a]) / np.where(r > 0, r, 1.0), 0.0) / dd
            rate[a] += f
            rate[b] -= f
        edge = _fixed_edge_mask(T.shape, self.fixed_edge)
        free = ~st.held & ~edge
        hold = st.held & ~edge
        h = st.H + dt * rate
        t1 = np.where(free, _np_t_of_h(h, st.cu, c), np.where(hold, st.thold, T))
        st.H = np.where(free, h, np.where(hold, _np_h_of_t(t1, st.cu, c), st.H))
        st.ik = np.where(hold, 0.0, np.where(free, _np_invk(t1, st.invku, c), ik))
        st.cem += _np_cem(T, t1, dt, c)
        st.dmg += _np_arr(T, t1, dt, c)
        np.maximum(st.tmax, t1, out=st.tmax)
        np.minimum(st.tmin, t1, out=st.tmin)
        st.shut |= ((t1 >= c.shut_c) | (st.dmg >= c.shut_dmg) | (t1 <= c.ts)).astype(np.uint8)
        st.T = t1


@dataclass
class _ImplicitStepper(_Stepper):
    def step(self, st: SolverState, dt: float) -> None:
        _step_implicit(st, dt, self.d, self.c, self.fixed_edge)


def _choose_stepper(method: str, backend: str, linear: bool, c: _Consts, d: tuple[float, float, float],
                    opts: SolverOptions) -> _Stepper:
    fixed = opts.boundary == "fixed"
    if method == "implicit":
        return _ImplicitStepper(c, d, fixed, "implicit")
    if linear and backend == "numba":
        dtype = np.float32 if opts.precision == "float32" else np.float64
        return _FusedStepper(c, d, fixed, f"fused-{opts.precision}", dtype)
    if linear:
        return _LinearNumpyStepper(c, d, fixed, "linear-numpy")
    if backend == "numba":
        tol = opts.active_tolerance_c if opts.active_region else None
        return _EnthalpyNumbaStepper(c, d, fixed, "enthalpy-numba" + ("-active" if tol is not None and fixed else ""), tol)
    return _EnthalpyNumpyStepper(c, d, fixed, "enthalpy-numpy")


# ---- stability and driver ------------------------------------------------------------------------------
def stable_time_step(
    medium: ThermalMedium,
    *,
    may_freeze: bool = False,
    extra_held: np.ndarray | None = None,
    table: TissueTable | None = None,
    temperature_dependent: bool = False,
) -> float:
    """Largest forward-Euler step (s) that is stable everywhere (worst case over freezing states).

    Per voxel: dt <= C_min / (sum of face conductances / spacing + perfusion). ``extra_held`` are
    voxels that may be clamped at some time (cryoprobes), counted as Dirichlet neighbours.
    ``temperature_dependent``: conductivity at its highest (tissues.yaml temperature_dependence).
    An insulated outer face only removes a neighbour, so this limit holds for both boundaries.
    """
    c = _consts(table or load_tissue_table(), temperature_dependent)
    ku = medium.conductivity * (1.0 + c.k_slope * (c.k_cap - c.k_ref))  # the largest k(T) reached
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


def _initial_state(medium: ThermalMedium, c: _Consts) -> SolverState:
    shape = medium.shape
    T = np.ascontiguousarray(np.broadcast_to(np.asarray(medium.initial_temperature_c, float), shape), np.float64).copy()
    cu = np.ascontiguousarray(medium.heat_capacity_vol, dtype=np.float64)
    invku = np.ascontiguousarray(1.0 / medium.conductivity, dtype=np.float64)
    held = np.zeros(shape, bool) if medium.held is None else medium.held.astype(bool)
    thold = np.broadcast_to(np.asarray(medium.held_temperature_c, float), shape).astype(np.float64)
    rwall = np.where(held, np.broadcast_to(np.asarray(medium.wall_resistance, float), shape), 0.0)
    T[held] = thold[held]
    return SolverState(
        T=T, H=_np_h_of_t(T, cu, c).astype(np.float64), ik=np.where(held, 0.0, _np_invk(T, invku, c)), cu=cu,
        invku=invku, W=np.ascontiguousarray(medium.perfusion, dtype=np.float64), shut=np.zeros(shape, np.uint8),
        q=np.zeros(shape), cem=np.zeros(shape), dmg=np.zeros(shape), tmax=T.copy(), tmin=T.copy(),
        held=held.copy(), thold=thold.copy(), rwall=np.ascontiguousarray(rwall, dtype=np.float64),
    )


def _power_limited_temperatures(st: SolverState, base_held: np.ndarray, mid: float,
                                held_sources: Sequence[HeldSource], limited: Sequence[int],
                                d: tuple[float, float, float]) -> dict[int, tuple[float, float]]:
    """(temperature, heat load W) of each power-limited probe freezing at ``mid``.

    The heat conducted into the probe's voxels is Q(Tp) = sum_faces G (T_n - Tp) (W), G = A / (d/2 / k_n)
    (W/K; A in m^2, d in m) over the faces to unheld neighbours: the solver's own face conductance
    with a held voxel, whose half-cell and wall resistance are 0 (the stepper takes the wall term of
    the *other* voxel, here the probe's). The probe holds max(floor, (sum G T_n - P_max) / sum G): the
    coldest it can keep while extracting at most P_max at the start of the interval; under a lighter
    load it sits at the floor (the gas temperature). Returned Q is that start-of-interval load.
    """
    out: dict[int, tuple[float, float]] = {}
    active = [n for n in limited if _level(held_sources[n].schedule, mid) > 0]
    if not active:
        return out
    held = base_held.copy()
    for hs in held_sources:
        if _level(hs.schedule, mid) > 0:
            held |= hs.mask
    shape = st.T.shape
    areas = (d[1] * d[2], d[0] * d[2], d[0] * d[1])
    for n in active:
        hs = held_sources[n]
        bb = _bbox(hs.mask)
        if bb is None:
            continue
        lo = [max(bb[2 * a] - 1, 0) for a in range(3)]
        hi = [min(bb[2 * a + 1] + 1, shape[a]) for a in range(3)]
        v = tuple(slice(lo[a], hi[a]) for a in range(3))
        m, hv, t, ik = hs.mask[v], held[v], st.T[v], st.ik[v]
        g_sum = s_sum = 0.0
        for axis in range(3):
            for shift in (1, -1):
                nb = np.roll(m, shift, axis=axis)  # neighbour voxels of the probe on this side
                edge = [slice(None)] * 3
                edge[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
                nb[tuple(edge)] = False  # no wrap-around
                nb &= ~hv
                if not nb.any():
                    continue
                g = areas[axis] / (0.5 * d[axis] * ik[nb])
                g_sum += float(g.sum())
                s_sum += float((g * t[nb]).sum())
        if g_sum <= 0:
            out[n] = (float(hs.temperature_c), 0.0)
            continue
        tp = max(float(hs.temperature_c), (s_sum - float(hs.max_power_w)) / g_sum)  # type: ignore[arg-type]
        out[n] = (tp, s_sum - g_sum * tp)
    return out


def _set_segment(st: SolverState, base: tuple[np.ndarray, np.ndarray, np.ndarray], mid: float,
                 sources: Sequence[HeatSource], held_sources: Sequence[HeldSource], c: _Consts,
                 probe_t: dict[int, float] | None = None) -> None:
    """Source power and held voxels for the schedule segment around time ``mid``.

    ``base``: the medium's own held voxels (held, temperature, wall resistance), before any probe;
    ``probe_t``: temperatures of power-limited probes for this segment (by index), overriding theirs.
    """
    q = np.zeros(st.T.shape)
    for s in sources:
        lev = _level(s.schedule, mid)
        if lev:
            q += lev * s.pattern
    st.q = q
    if not held_sources:
        return
    held, thold, rwall = (a.copy() for a in base)
    for n, hs in enumerate(held_sources):
        if _level(hs.schedule, mid) > 0:
            held |= hs.mask
            thold[hs.mask] = (probe_t or {}).get(n, hs.temperature_c)
            rwall[hs.mask] = 0.0
    released = st.held & ~held
    if released.any():  # a probe switched off: its voxels become tissue again
        st.H[released] = _np_h_of_t(st.T[released], st.cu[released], c)
        st.ik[released] = _np_invk(st.T[released], st.invku[released], c)
    st.held, st.thold, st.rwall = held, thold, rwall


def _breakpoints(duration_s: float, sources: Sequence[HeatSource], held_sources: Sequence[HeldSource],
                 snapshot_times_s: Sequence[float]) -> tuple[list[float], list[float]]:
    """Schedule changes and snapshot times (sorted), and the snapshot times (end included)."""
    marks = {0.0, float(duration_s)}
    for sched in [s.schedule for s in sources] + [h.schedule for h in held_sources]:
        for a, b, _ in sched:
            marks.update((float(a), float(b)))
    snaps = sorted({float(x) for x in snapshot_times_s if 0 < x <= duration_s} | {float(duration_s)})
    marks.update(snaps)
    return sorted(m for m in marks if 0 <= m <= duration_s), snaps


def _check_inputs(medium: ThermalMedium, duration_s: float, sources: Sequence[HeatSource],
                  held_sources: Sequence[HeldSource], backend: str, opts: SolverOptions) -> None:
    if not duration_s > 0:
        raise InputError(f"duration must be > 0 s, got {duration_s}", field="duration_s")
    shape = medium.shape
    for s in sources:
        if s.pattern.shape != shape:
            raise InputError(f"source {s.name!r} pattern shape {s.pattern.shape} != grid {shape}")
    for hs in held_sources:
        if hs.mask.shape != shape:
            raise InputError(f"held source {hs.name!r} mask shape {hs.mask.shape} != grid {shape}")
    if backend not in ("numba", "numpy"):
        raise InputError(f"unknown backend {backend!r}", field="backend")
    if opts.boundary not in ("fixed", "insulated"):
        raise InputError(f"unknown boundary {opts.boundary!r} (fixed or insulated)", field="boundary")
    if opts.precision not in ("float32", "float64"):
        raise InputError(f"unknown precision {opts.precision!r} (float32 or float64)", field="precision")


def solve_pennes(
    medium: ThermalMedium,
    duration_s: float,
    *,
    sources: Sequence[HeatSource] = (),
    held_sources: Sequence[HeldSource] = (),
    snapshot_times_s: Sequence[float] = (),
    dt_s: float | None = None,
    method: Method = "auto",
    table: TissueTable | None = None,
    progress: Callable[[float, float], None] | None = None,
    options: SolverOptions | None = None,
) -> BioheatSolution:
    """Integrate the Pennes equation for ``duration_s`` seconds.

    Sources are piecewise constant in time (their schedules); steps are shortened to land exactly on
    every schedule change and snapshot time. ``method='auto'`` takes forward Euler at
    ``options.safety`` x the stability limit unless that needs more than
    ``options.max_explicit_steps`` steps, then backward Euler with ``dt_s`` (default:
    duration / 500). ``options`` (SolverOptions): outer boundary, temperature-dependent
    properties, storage precision, backend, and whether perfusion shuts down irreversibly where
    tissue coagulates (tissues.yaml thresholds) or freezes (on by default). Returns snapshots
    (temperature, CEM43 in minutes, Arrhenius damage) at ``snapshot_times_s`` (the end time is
    always included).

    >>> import numpy as np
    >>> n = 9
    >>> med = ThermalMedium(np.full((n, n, n), 3.8e6), np.full((n, n, n), 0.52), np.zeros((n, n, n)), (1.0, 1.0, 1.0))
    >>> pat = np.zeros((n, n, n)); pat[4, 4, 4] = 1e9          # 1 W in one 1 mm^3 voxel
    >>> sol = solve_pennes(med, 5.0, sources=[HeatSource(pat, [(0.0, 5.0, 1.0)])],
    ...                    options=SolverOptions(boundary="insulated"))
    >>> round(float(((sol.temperature_c[-1] - 37.0) * 3.8e6).sum() * 1e-9), 2)   # 5 J stayed in the box
    5.0
    """
    opts = options or SolverOptions()
    backend, safety, perfusion_shutdown = opts.backend, opts.safety, opts.perfusion_shutdown
    max_explicit_steps = opts.max_explicit_steps
    _check_inputs(medium, duration_s, sources, held_sources, backend, opts)
    tab = table or load_tissue_table()
    c = _consts(tab, opts.temperature_dependent)
    if not perfusion_shutdown:
        c.shut_c = math.inf
        c.shut_dmg = math.inf
    shape = medium.shape
    any_cryo = bool(held_sources)
    cryo_union = np.zeros(shape, bool)
    for hs in held_sources:
        cryo_union |= hs.mask
    limit = stable_time_step(medium, may_freeze=any_cryo, extra_held=cryo_union if any_cryo else None, table=tab,
                             temperature_dependent=opts.temperature_dependent)
    rkl_ok = (any_cryo and backend == "numba" and opts.boundary == "fixed" and dt_s is None
              and opts.super_step_s is not None and opts.super_step_s > safety * limit)
    if method == "auto":  # super-steps keep long freezes explicit
        steps = duration_s / (opts.super_step_s if rkl_ok else safety * limit)  # type: ignore[operator]
        method = "explicit" if steps <= max_explicit_steps else "implicit"
    linear = not any_cryo and not opts.temperature_dependent
    rkl = method == "explicit" and rkl_ok
    if rkl:
        dt_max = float(opts.super_step_s)  # type: ignore[arg-type]
    elif method == "explicit":
        dt_max = safety * limit if dt_s is None else float(dt_s)
        if dt_max > limit * (1 + 1e-9):
            raise InputError(f"dt {dt_max:.3g} s exceeds the explicit stability limit {limit:.3g} s", field="dt_s")
    elif method == "implicit":
        dt_max = float(dt_s) if dt_s is not None else duration_s / 500.0
    else:
        raise InputError(f"unknown method {method!r}", field="method")

    st = _initial_state(medium, c)
    base = (st.held.copy(), st.thold.copy(), st.rwall.copy())
    d = tuple(s * 1e-3 for s in medium.spacing_mm[::-1])  # (dk, dj, di) in m
    if rkl:
        tol = opts.active_tolerance_c if opts.active_region else None
        stepper: _Stepper = _RklEnthalpyStepper(c, d, True, "enthalpy-rkl2" + ("-active" if tol is not None else ""),
                                                tol, dt_explicit=safety * limit)
    else:
        stepper = _choose_stepper(method, backend, linear, c, d, opts)  # type: ignore[arg-type]
    marks, snaps = _breakpoints(duration_s, sources, held_sources, snapshot_times_s)
    limited = [n for n, hs in enumerate(held_sources) if hs.max_power_w is not None]
    if limited:  # power-limited probes reset their temperature every control interval
        if not opts.power_control_s > 0:
            raise InputError(f"power_control_s must be > 0, got {opts.power_control_s}", field="power_control_s")
        marks = sorted(set(marks) | {float(x) for x in np.arange(0.0, duration_s, opts.power_control_s)})
    probe_log: dict[str, list[tuple[float, float, float]]] = {held_sources[n].name: [] for n in limited}

    out_t: list[float] = []
    out_T: list[np.ndarray] = []
    out_cem: list[np.ndarray] = []
    out_dmg: list[np.ndarray] = []
    n_steps = 0
    t_start = time.perf_counter()
    dt_used = dt_max
    held_before = None
    for a, b in zip(marks[:-1], marks[1:], strict=True):
        probe_t = _power_limited_temperatures(st, base[0], 0.5 * (a + b), held_sources, limited, d)
        for n, (tp, qw) in probe_t.items():
            probe_log[held_sources[n].name].append((a, tp, qw))
        _set_segment(st, base, 0.5 * (a + b), sources, held_sources, c,
                     {n: tp for n, (tp, _) in probe_t.items()})
        stepper.start_segment(st)
        # super-steps restart small where a probe switched (a sharp front), then grow
        ramp = rkl and (held_before is None or not np.array_equal(held_before, st.held))
        held_before = st.held.copy() if rkl else None
        steps = _segment_steps(b - a, dt_max, 2.0 * safety * limit if ramp else None)
        dt_used = min([dt_used, *steps]) if n_steps else min(steps)
        t_now = a
        for m, dt in enumerate(steps):
            if progress is not None and m % 25 == 24:
                progress(t_now, duration_s)
            stepper.step(st, dt)
            t_now += dt
            n_steps += 1
        if progress is not None:
            progress(b, duration_s)
        if any(abs(b - s) < 1e-9 for s in snaps):
            stepper.sync(st)
            out_t.append(b)
            out_T.append(st.T.astype(np.float32))
            out_cem.append(np.minimum(st.cem, _F32_CAP).astype(np.float32))
            out_dmg.append(np.minimum(st.dmg, _F32_CAP).astype(np.float32))
    stepper.sync(st)
    runtime = time.perf_counter() - t_start
    return BioheatSolution(
        times_s=out_t,
        temperature_c=out_T,
        cem43_min=out_cem,
        damage=out_dmg,
        max_temperature_c=st.tmax.astype(np.float32),
        min_temperature_c=np.minimum(st.tmin, np.min(out_T, axis=0)).astype(np.float32),
        dt_s=float(dt_used),
        dt_limit_s=float(limit),
        method=method,
        backend=backend if method == "explicit" else "scipy",
        n_steps=n_steps,
        runtime_s=runtime,
        voxel_updates=n_steps * int(np.prod(shape)),
        meta={"stepper": stepper.name, "boundary": opts.boundary,
              **({"probe_temperature_log": probe_log} if limited else {}),
              "temperature_dependent": opts.temperature_dependent, **_active_meta(stepper, shape)},
    )


def _segment_steps(span: float, dt_max: float, ramp_from: float | None, growth: float = 1.3) -> list[float]:
    """Step lengths covering ``span``: equal steps <= dt_max, after a geometric ramp from ``ramp_from``."""
    head: list[float] = []
    if ramp_from is not None:
        dt = ramp_from
        while dt < dt_max and sum(head) + dt < span:
            head.append(dt)
            dt *= growth
    rest = span - sum(head)
    if rest <= 1e-12 * max(span, 1.0) and head:
        return head
    n = max(1, math.ceil(rest / dt_max - 1e-9))
    return head + [rest / n] * n


def _active_meta(stepper: _Stepper, shape: tuple[int, ...]) -> dict:
    box = getattr(stepper, "_box", None)
    if box is None:
        return {}
    return {"active_voxel_updates": box.updates, "active_box_kji": list(box.box), "active_box_growths": box.grown,
            "active_fraction_final": float(np.prod([box.box[1] - box.box[0], box.box[3] - box.box[2],
                                                    box.box[5] - box.box[4]]) / np.prod(shape))}
