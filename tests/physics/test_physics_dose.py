"""CEM43 and Arrhenius damage: known answers and exactness between samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.physics.dose import GAS_CONSTANT, arrhenius_damage, cem43


@pytest.mark.parametrize(("temp", "expected_min"), [(43.0, 1.0), (44.0, 2.0), (45.0, 4.0), (42.0, 0.25), (41.0, 0.0625)])
def test_cem43_constant_temperature(temp: float, expected_min: float) -> None:
    # one minute at a constant temperature: R^(43-T) minutes (Sapareto-Dewey)
    assert cem43(np.array([temp, temp]), 60.0) == pytest.approx(expected_min, rel=1e-12)


def _fine_cem(t0: float, t1: float, dt: float, n: int = 200001) -> float:
    t = np.linspace(t0, t1, n)
    r = np.where(t >= 43, 0.5, 0.25)
    y = r ** (43 - t)
    return float(np.trapezoid(y, dx=dt / (n - 1)) / 60.0)


@pytest.mark.parametrize(("t0", "t1"), [(40.0, 50.0), (50.0, 41.0), (44.0, 60.0), (37.0, 42.9), (43.0, 43.0)])
def test_cem43_exact_for_linear_ramp(t0: float, t1: float) -> None:
    # two samples give the exact integral of a linear ramp, including a crossing of 43 °C
    assert cem43(np.array([t0, t1]), 30.0) == pytest.approx(_fine_cem(t0, t1, 30.0), rel=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.floats(30, 90), st.floats(30, 90), st.floats(0.01, 100))
def test_cem43_additive_when_split(t0: float, t1: float, dt: float) -> None:
    whole = cem43(np.array([t0, t1]), dt)
    halves = cem43(np.array([t0, 0.5 * (t0 + t1), t1]), dt / 2)
    assert halves == pytest.approx(whole, rel=1e-9, abs=1e-300)


def test_cem43_shapes() -> None:
    temps = np.full((3, 2, 2), 44.0)
    out = cem43(temps, 30.0)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, 2.0)
    with pytest.raises(ValueError):
        cem43(np.array([44.0]), 1.0)


def test_arrhenius_constant_temperature() -> None:
    a, ea = 7.39e39, 2.577e5
    expected = a * math.exp(-ea / (GAS_CONSTANT * (60 + 273.15))) * 10.0
    got = arrhenius_damage(np.array([60.0, 60.0]), 10.0, frequency_factor_1_s=a, activation_energy_j_mol=ea)
    assert got == pytest.approx(expected, rel=1e-10)


def test_arrhenius_ramp_matches_fine_quadrature() -> None:
    t = np.linspace(50, 70, 100001)
    rate = 7.39e39 * np.exp(-2.577e5 / (GAS_CONSTANT * (t + 273.15)))
    fine = float(np.trapezoid(rate, dx=5.0 / 100000))
    coarse = arrhenius_damage(np.linspace(50, 70, 11), 0.5)  # 10 intervals, Gauss-Legendre each
    assert coarse == pytest.approx(fine, rel=1e-5)


def test_arrhenius_floor() -> None:
    # below the integration floor (43 °C in tissues.yaml) no damage accumulates
    assert arrhenius_damage(np.full(100, 42.0), 60.0) == 0.0
    assert arrhenius_damage(np.full(2, 42.0), 60.0, floor_c=0.0) > 0.0
