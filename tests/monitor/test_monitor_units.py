"""PRF constant, temporal unwrapping, drift fit, noise model and the YAML data file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.core.errors import DataFileError, InputError
from openir.monitor import (
    DriftModel,
    fit_drift,
    load_thermometry,
    noise_sigma,
    prf_rad_per_c,
    temperature_sigma,
    temporal_unwrap,
    wrap,
)


def test_prf_constant():
    # 2 pi * 42.577 MHz/T * -0.01 ppm/°C * 3 T * 10 ms
    assert prf_rad_per_c(3.0, 10.0) == pytest.approx(-0.080248, rel=1e-4)
    assert prf_rad_per_c(1.5, 10.0) == pytest.approx(prf_rad_per_c(3.0, 5.0))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-2.9, 2.9), min_size=2, max_size=40), st.floats(-10, 10))
def test_temporal_unwrap_follows_any_path_with_small_steps(steps, start):
    true = np.cumsum([start, *steps]).astype(np.float32)
    prev = np.float32(start)
    for v in true[1:]:
        prev = temporal_unwrap(prev, wrap(np.float32(v)))
    assert float(prev) == pytest.approx(float(true[-1]), abs=1e-3)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_drift_fit_recovers_polynomial(order):
    rng = np.random.default_rng(order)
    shape = (4, 20, 24)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    field = 0.3 + 0 * x + (0.2 * x - 0.1 * y + 0.05 * z if order >= 1 else 0) + (0.15 * x * y - 0.1 * x**2 if order == 2 else 0)
    ref = rng.random(shape) < 0.3
    got = fit_drift(field, ref, order)
    assert np.abs(got - field).max() < 1e-9
    with pytest.raises(InputError):
        DriftModel(ref, 3)


def test_noise_model_matches_simulation():
    rng = np.random.default_rng(0)
    sigma, signal, n = 0.05, 1.0, 20000
    k = prf_rad_per_c(3.0, 10.0)
    noise = lambda: rng.normal(0, sigma, n) + 1j * rng.normal(0, sigma, n)  # noqa: E731
    dphi = np.angle((signal + noise()) * np.conj(signal + noise()))
    empirical = np.std(dphi / k)
    model = float(temperature_sigma(np.array([signal / sigma]), k)[0])
    assert model == pytest.approx(empirical, rel=0.05)
    bg = np.abs(noise()).reshape(100, 200)
    assert noise_sigma(bg, np.ones_like(bg, bool)) == pytest.approx(sigma, rel=0.03)


def test_thermometry_yaml_sources_and_errors(tmp_path):
    t = load_thermometry()
    assert t.prf_coefficient_ppm_c.value == -0.01 and "Rieke" in t.prf_coefficient_ppm_c.source
    assert t.tissues["fat"].prf_valid is False
    assert all(len(lim.source) > 10 for lim in t.limits.values())
    bad = tmp_path / "bad.yaml"
    bad.write_text((__import__("openir.monitor.config", fromlist=["x"]).THERMOMETRY_YAML).read_text()
                   .replace("max_c: 45.0", "max_c: 450.0", 1))
    with pytest.raises(DataFileError, match=r"bad.yaml \[limits\.nerve\.max_c\]"):
        load_thermometry(bad)
    assert math.isfinite(t.limit("nerve").max_c)


def test_fused_dose_kernel_matches_physics():
    """The private per-frame kernel gives physics.cem43 / arrhenius_damage on every interval (float32 state)."""
    from openir.monitor import _kernels
    from openir.physics import arrhenius_damage, cem43, load_tissue_table

    rng = np.random.default_rng(5)
    shape = (2, 3, 50)
    n = int(np.prod(shape))
    t0 = rng.uniform(36, 95, n).astype(np.float32)
    t1 = np.clip(t0 + rng.normal(0, 8, n), 30, 100)
    tab = load_tissue_table()
    ln_hi, ln_lo = math.log(tab.thermal_dose.r_above_43.value), math.log(tab.thermal_dose.r_below_43.value)
    k = -0.08
    unwrapped = ((t1 - 37.0) * k).astype(np.float32)  # zero drift: temperature is exactly t1
    phase = np.angle(np.exp(1j * unwrapped)).astype(np.float32)  # what the scanner gives: wrapped
    u = unwrapped.copy()  # last frame's unwrapped phase: no step, so no voxel is a wrap suspect
    prev = t0.copy()
    e_prev = np.exp(np.where(t0 >= 43, ln_hi, ln_lo) * (43.0 - t0.astype(np.float64))).astype(np.float32)
    cem = np.zeros(n, np.float32)
    dmg = np.zeros(n, np.float32)
    temp, sig = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    lethal, ok, deferred = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    yes = np.ones(n, bool)
    rows = shape[0] * shape[1]
    pad = np.zeros((shape[0], shape[1] + 2, shape[2] + 2), np.uint8)
    pad[:, 1:-1, 1:-1] = 1  # every voxel usable
    stats = np.zeros((3, 4))
    dc = np.array([2.0, ln_hi, ln_lo, math.log(tab.arrhenius.liver.frequency_factor_1_s.value),
                   tab.arrhenius.liver.activation_energy_j_mol.value / 8.314462618,
                   tab.arrhenius.integration_floor_c.value, 240.0, 1.0, 1.0])
    _kernels.frame_pass(
        phase, np.zeros(n, np.float32), np.ones(n, np.float32), pad, yes, np.zeros(rows, np.int64),
        np.full(rows, shape[2], np.int64), 0, u, yes, np.zeros((rows, 3)), np.zeros(shape[2]),
        np.array([37.0, 1.0 / k, 0.1]), dc, prev, cem, dmg, e_prev, lethal, ok, deferred, temp, sig, stats)
    n_def = int(stats[:, 1].sum())
    # both dose paths are exercised: the vectorised one (below 43 °C) and the exact one
    assert 0 < stats[:, 2].sum() < n
    assert stats[:, 3].max() == np.nanmax(temp)  # the hottest temperature from the integer-key max
    assert n_def == 0 and ok.all()
    unwrapped = u  # the unwrapped phase the kernel found (equal to the truth up to float32)
    t1_used = 37.0 + unwrapped.astype(np.float64) * (1.0 / k)  # what the kernel integrates to
    pair = np.stack([t0.astype(np.float64), t1_used])
    assert np.allclose(cem, cem43(pair, 2.0), rtol=2e-5, atol=1e-9)
    assert np.allclose(dmg, arrhenius_damage(pair, 2.0), rtol=2e-5, atol=1e-9)
