"""Pennes solver against the analytic Gaussian-source solution, and its conservation/physics."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core.errors import InputError
from openir.physics.analytic import gaussian_source_rise
from openir.physics.bioheat import (
    HeatSource,
    HeldSource,
    ThermalMedium,
    solve_pennes,
    stable_time_step,
)

RHO, C, K, RHO_B, C_B, W_B, Q0, SIGMA = 1079.0, 3540.0, 0.52, 1060.0, 3617.0, 0.01, 2e6, 4.0


def _cube(h: float, edge: float, perfusion: float = W_B) -> tuple[ThermalMedium, np.ndarray]:
    n = int(round(edge / h)) | 1
    shape = (n, n, n)
    med = ThermalMedium(np.full(shape, RHO * C), np.full(shape, K), np.full(shape, perfusion * RHO_B * C_B), (h, h, h))
    ax = (np.arange(n) - n // 2) * h
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    return med, np.sqrt(x * x + y * y + z * z)


def _analytic(r: np.ndarray, t: float) -> np.ndarray:
    return gaussian_source_rise(r, t, q0_w_m3=Q0, sigma_mm=SIGMA, density_kg_m3=RHO, heat_capacity_j_kg_k=C,
                                conductivity_w_m_k=K, perfusion_1_s=W_B, blood_density_kg_m3=RHO_B,
                                blood_heat_capacity_j_kg_k=C_B)


def test_gaussian_source_matches_analytic_within_0_1_C() -> None:
    # the standard case: liver, blood, w_b = 0.01 1/s, Q0 = 2e6 W/m^3, sigma = 4 mm
    med, r = _cube(0.75, 40.0)
    src = HeatSource(Q0 * np.exp(-(r**2) / (2 * SIGMA**2)), [(0.0, 1e9, 1.0)])
    sol = solve_pennes(med, 60.0, sources=[src], snapshot_times_s=[30.0, 60.0], perfusion_shutdown=False, dt_s=0.25)
    for t, temp in zip(sol.times_s, sol.temperature_c, strict=True):
        err = np.abs(temp - 37.0 - _analytic(r, t)).max()
        assert err < 0.1, f"max error {err:.3f} C at t = {t} s"
    assert sol.temperature_c[-1].max() - 37 > 10  # a real heating case, not a trivial pass


def test_implicit_close_to_analytic() -> None:
    med, r = _cube(1.0, 36.0)
    src = HeatSource(Q0 * np.exp(-(r**2) / (2 * SIGMA**2)), [(0.0, 1e9, 1.0)])
    sol = solve_pennes(med, 40.0, sources=[src], method="implicit", dt_s=1.0, perfusion_shutdown=False)
    assert sol.method == "implicit"
    assert np.abs(sol.temperature_c[-1] - 37.0 - _analytic(r, 40.0)).max() < 0.3


def test_numba_and_numpy_agree_and_energy_is_conserved() -> None:
    med, r = _cube(1.0, 31.0, perfusion=0.0)
    pat = np.where(r <= 3.0, 1.0, 0.0)
    pat /= pat.sum() * 1e-9  # 1 W in total
    src = [HeatSource(pat, [(0.0, 20.0, 2.0)])]
    a = solve_pennes(med, 30.0, sources=src, backend="numba")
    b = solve_pennes(med, 30.0, sources=src, backend="numpy")
    np.testing.assert_allclose(a.temperature_c[-1], b.temperature_c[-1], atol=1e-4)
    np.testing.assert_allclose(a.cem43_min[-1], b.cem43_min[-1], rtol=1e-4, atol=1e-9)
    # 2 W for 20 s, nothing reached the held boundary: stored heat = 40 J
    stored = ((a.temperature_c[-1].astype(float) - 37.0) * RHO * C).sum() * 1e-9
    assert stored == pytest.approx(40.0, rel=1e-3)


def test_explicit_step_above_limit_is_refused() -> None:
    med, _ = _cube(1.0, 11.0)
    limit = stable_time_step(med)
    assert limit == pytest.approx(RHO * C / (6 * K / 1e-6 + W_B * RHO_B * C_B), rel=1e-9)
    with pytest.raises(InputError, match="stability"):
        solve_pennes(med, 10.0, method="explicit", dt_s=limit * 1.5)


def test_auto_switches_to_implicit_for_long_runs() -> None:
    med, _ = _cube(1.0, 11.0)
    sol = solve_pennes(med, 3600.0, max_explicit_steps=100)
    assert sol.method == "implicit"
    np.testing.assert_allclose(sol.temperature_c[-1], 37.0, atol=1e-6)  # equilibrium stays put


def test_vessel_voxels_hold_and_cool() -> None:
    med, r = _cube(1.0, 31.0)
    n = med.shape[0]
    vessel = np.zeros(med.shape, bool)
    vessel[:, n // 2, n // 2 + 6 : n // 2 + 9] = True  # a 3-voxel slab line beside the source
    src = [HeatSource(np.where(r <= 4, 2e6, 0.0), [(0.0, 60.0, 1.0)])]
    plain = solve_pennes(med, 60.0, sources=src)
    med.held = vessel
    med.wall_resistance = np.where(vessel, 1 / 1000.0, 0.0)
    cooled = solve_pennes(med, 60.0, sources=src)
    np.testing.assert_allclose(cooled.temperature_c[-1][vessel], 37.0)
    assert cooled.temperature_c[-1].sum() < plain.temperature_c[-1].sum()


def test_perfusion_shutdown_raises_temperature() -> None:
    med, r = _cube(1.0, 25.0)
    src = [HeatSource(np.where(r <= 3, 3e7, 0.0), [(0.0, 60.0, 1.0)])]
    on = solve_pennes(med, 60.0, sources=src, perfusion_shutdown=True)
    off = solve_pennes(med, 60.0, sources=src, perfusion_shutdown=False)
    assert on.temperature_c[-1].max() > off.temperature_c[-1].max() + 1.0


def test_cryoprobe_ice_ball_and_latent_heat() -> None:
    med, r = _cube(1.0, 21.0)
    probe = r <= 1.0
    held = [HeldSource(probe, -150.0, [(0.0, 60.0, 1.0)])]
    sol = solve_pennes(med, 60.0, held_sources=held)
    t = sol.temperature_c[-1]
    assert np.allclose(t[probe], -150.0)
    ice = (t <= -1.0).sum()
    lethal = (sol.min_temperature_c <= -40).sum()
    assert ice > lethal > probe.sum()
    # with latent heat the ice ball is smaller than without (the enthalpy formulation works)
    from openir.physics.tissues import load_tissue_table

    tab = load_tissue_table().model_copy(deep=True)
    tab.freezing.latent_heat_j_m3.value = 0.0
    no_latent = solve_pennes(med, 60.0, held_sources=held, table=tab)
    assert (no_latent.temperature_c[-1] <= -1.0).sum() > ice


def test_enthalpy_kernels_agree_numba_numpy() -> None:
    med, r = _cube(1.0, 15.0)
    held = [HeldSource(r <= 1.0, -150.0, [(0.0, 15.0, 1.0)])]
    a = solve_pennes(med, 20.0, held_sources=held, backend="numba")
    b = solve_pennes(med, 20.0, held_sources=held, backend="numpy")
    np.testing.assert_allclose(a.temperature_c[-1], b.temperature_c[-1], atol=1e-3)
    assert a.min_temperature_c.min() == pytest.approx(-150.0)
