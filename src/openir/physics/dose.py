"""Thermal dose (CEM43, Sapareto-Dewey) and the Arrhenius damage integral.

Both integrate over a temperature history that the solver knows only at its time steps. Between two
steps the temperature is taken as linear in time; the CEM43 integral of R^(43-T) is then exact in
closed form (split where T crosses 43 °C, where R changes), and the Arrhenius rate is integrated with
3-point Gauss-Legendre quadrature. The scalar kernels are numba functions so the solver can
accumulate dose inside its time-step loop without storing the history.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .tissues import TissueTable, load_tissue_table

GAS_CONSTANT = 8.314462618  # J/mol/K (CODATA 2018)


@njit(cache=True, inline="always")
def _cem_piece(t0: float, t1: float, dt: float, ln_r: float) -> float:
    """Seconds-equivalent integral of R^(43-T) for T linear from t0 to t1 over dt (one R).

    exp(a) * (exp(x) - 1) / x with x the exponent change; a short series when |x| is small keeps
    it to one exponential per voxel and step (relative error < 1e-12).
    """
    a = ln_r * (43.0 - t0)
    x = -ln_r * (t1 - t0)
    if abs(x) < 1e-3:
        g = 1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0)))
    else:
        g = math.expm1(x) / x
    return dt * math.exp(a) * g


@njit(cache=True, inline="always")
def cem43_interval(t0: float, t1: float, dt: float, ln_r_above: float, ln_r_below: float) -> float:
    """CEM43 (minutes) accumulated while T goes linearly from ``t0`` to ``t1`` (°C) in ``dt`` s.

    ``ln_r_above``/``ln_r_below``: natural logs of R above and below 43 °C.
    """
    if t0 >= 43.0 and t1 >= 43.0:
        return _cem_piece(t0, t1, dt, ln_r_above) / 60.0
    if t0 <= 43.0 and t1 <= 43.0:
        return _cem_piece(t0, t1, dt, ln_r_below) / 60.0
    f = (43.0 - t0) / (t1 - t0)  # fraction of the step before crossing 43 °C
    if t0 < 43.0:
        return (_cem_piece(t0, 43.0, f * dt, ln_r_below) + _cem_piece(43.0, t1, (1 - f) * dt, ln_r_above)) / 60.0
    return (_cem_piece(t0, 43.0, f * dt, ln_r_above) + _cem_piece(43.0, t1, (1 - f) * dt, ln_r_below)) / 60.0


@njit(cache=True, inline="always")
def arrhenius_interval(t0: float, t1: float, dt: float, ln_a: float, ea_over_r: float, floor_c: float) -> float:
    """Damage integral increment for T linear from ``t0`` to ``t1`` (°C) over ``dt`` s.

    The rate ``A exp(-Ea / (R T))`` counts only above ``floor_c`` (see tissues.yaml for why).
    """
    if t0 <= floor_c and t1 <= floor_c:
        return 0.0
    s = 0.0
    for q in range(3):
        xq = 0.0
        wq = 0.0
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


@njit(cache=True)
def _cem_series(temps: np.ndarray, dt: float, ln_hi: float, ln_lo: float) -> np.ndarray:
    nt, nv = temps.shape
    out = np.zeros(nv)
    for v in range(nv):
        acc = 0.0
        for t in range(nt - 1):
            acc += cem43_interval(temps[t, v], temps[t + 1, v], dt, ln_hi, ln_lo)
        out[v] = acc
    return out


@njit(cache=True)
def _arr_series(temps: np.ndarray, dt: float, ln_a: float, ea_over_r: float, floor_c: float) -> np.ndarray:
    nt, nv = temps.shape
    out = np.zeros(nv)
    for v in range(nv):
        acc = 0.0
        for t in range(nt - 1):
            acc += arrhenius_interval(temps[t, v], temps[t + 1, v], dt, ln_a, ea_over_r, floor_c)
        out[v] = acc
    return out


def _as_series(temps: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    a = np.asarray(temps, dtype=float)
    if a.ndim < 1 or a.shape[0] < 2:
        raise ValueError("temps must have time on axis 0 with at least two samples")
    return np.ascontiguousarray(a.reshape(a.shape[0], -1)), a.shape[1:]


def cem43(
    temps: np.ndarray,
    dt_s: float,
    *,
    r_above: float | None = None,
    r_below: float | None = None,
    table: TissueTable | None = None,
) -> np.ndarray | float:
    """Cumulative equivalent minutes at 43 °C of a temperature history.

    ``temps``: °C sampled every ``dt_s`` seconds along axis 0 (any trailing shape). Exact for a
    temperature that is linear between samples. R defaults to the Sapareto-Dewey values in
    tissues.yaml (0.5 above 43 °C, 0.25 below).
    """
    t = table or load_tissue_table()
    ra = t.thermal_dose.r_above_43.value if r_above is None else r_above
    rb = t.thermal_dose.r_below_43.value if r_below is None else r_below
    series, shape = _as_series(temps)
    out = _cem_series(series, float(dt_s), math.log(ra), math.log(rb)).reshape(shape)
    return float(out) if out.ndim == 0 else out


def arrhenius_damage(
    temps: np.ndarray,
    dt_s: float,
    *,
    frequency_factor_1_s: float | None = None,
    activation_energy_j_mol: float | None = None,
    floor_c: float | None = None,
    table: TissueTable | None = None,
) -> np.ndarray | float:
    """Arrhenius damage integral Omega of a temperature history (liver parameters by default).

    ``temps``: °C every ``dt_s`` seconds along axis 0. Omega >= 1 is the lethal criterion.
    """
    t = table or load_tissue_table()
    a = t.arrhenius.liver.frequency_factor_1_s.value if frequency_factor_1_s is None else frequency_factor_1_s
    ea = t.arrhenius.liver.activation_energy_j_mol.value if activation_energy_j_mol is None else activation_energy_j_mol
    fl = t.arrhenius.integration_floor_c.value if floor_c is None else floor_c
    series, shape = _as_series(temps)
    out = _arr_series(series, float(dt_s), math.log(a), ea / GAS_CONSTANT, float(fl)).reshape(shape)
    return float(out) if out.ndim == 0 else out


def dose_constants(table: TissueTable | None = None) -> dict[str, float]:
    """The scalar constants the solver's in-loop dose accumulation needs."""
    t = table or load_tissue_table()
    return {
        "ln_r_above": math.log(t.thermal_dose.r_above_43.value),
        "ln_r_below": math.log(t.thermal_dose.r_below_43.value),
        "ln_a": math.log(t.arrhenius.liver.frequency_factor_1_s.value),
        "ea_over_r": t.arrhenius.liver.activation_energy_j_mol.value / GAS_CONSTANT,
        "floor_c": t.arrhenius.integration_floor_c.value,
    }
