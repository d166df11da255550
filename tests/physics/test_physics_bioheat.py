"""Pennes solver against the analytic Gaussian-source solution, and its conservation/physics."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core.errors import InputError
from openir.physics.analytic import gaussian_source_rise
from openir.physics.bioheat import (
    HeatSource,
    HeldSource,
    SolverOptions,
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
    sol = solve_pennes(med, 60.0, sources=[src], snapshot_times_s=[30.0, 60.0], dt_s=0.25,
                       options=SolverOptions(perfusion_shutdown=False))
    for t, temp in zip(sol.times_s, sol.temperature_c, strict=True):
        err = np.abs(temp - 37.0 - _analytic(r, t)).max()
        assert err < 0.1, f"max error {err:.3f} C at t = {t} s"
    assert sol.temperature_c[-1].max() - 37 > 10  # a real heating case, not a trivial pass


def test_implicit_close_to_analytic() -> None:
    med, r = _cube(1.0, 36.0)
    src = HeatSource(Q0 * np.exp(-(r**2) / (2 * SIGMA**2)), [(0.0, 1e9, 1.0)])
    sol = solve_pennes(med, 40.0, sources=[src], method="implicit", dt_s=1.0,
                       options=SolverOptions(perfusion_shutdown=False))
    assert sol.method == "implicit"
    assert np.abs(sol.temperature_c[-1] - 37.0 - _analytic(r, 40.0)).max() < 0.3


def test_numba_and_numpy_agree_and_energy_is_conserved() -> None:
    med, r = _cube(1.0, 31.0, perfusion=0.0)
    pat = np.where(r <= 3.0, 1.0, 0.0)
    pat /= pat.sum() * 1e-9  # 1 W in total
    src = [HeatSource(pat, [(0.0, 20.0, 2.0)])]
    a = solve_pennes(med, 30.0, sources=src, options=SolverOptions(backend="numba"))
    b = solve_pennes(med, 30.0, sources=src, options=SolverOptions(backend="numpy"))
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
    sol = solve_pennes(med, 3600.0, options=SolverOptions(max_explicit_steps=100))
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
    on = solve_pennes(med, 60.0, sources=src, options=SolverOptions(perfusion_shutdown=True))
    off = solve_pennes(med, 60.0, sources=src, options=SolverOptions(perfusion_shutdown=False))
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
    # the same forward-Euler scheme in both (the default numba cryo run takes RKL2 super-steps instead)
    a = solve_pennes(med, 20.0, held_sources=held,
                     options=SolverOptions(backend="numba", super_step_s=None, active_region=False))
    b = solve_pennes(med, 20.0, held_sources=held, options=SolverOptions(backend="numpy"))
    np.testing.assert_allclose(a.temperature_c[-1], b.temperature_c[-1], atol=1e-3)
    assert a.min_temperature_c.min() == pytest.approx(-150.0)


# ---- insulated boundary, steppers, temperature-dependent properties (issue 17) -------------------------
def _box(n: int, perfusion: float, t0: float = 37.0) -> ThermalMedium:
    shape = (n, n, n)
    return ThermalMedium(np.full(shape, RHO * C), np.full(shape, K), np.full(shape, perfusion * RHO_B * C_B),
                         (1.0, 1.0, 1.0), initial_temperature_c=t0)


@pytest.mark.parametrize("kw", [{"options": {"backend": "numba"}}, {"options": {"backend": "numpy"}},
                                {"method": "implicit", "dt_s": 0.5}, {"options": {"temperature_dependent": True}}])
def test_insulated_box_cools_by_perfusion_as_the_ode(kw: dict) -> None:
    # no gradient anywhere: each voxel, edges included, follows dT/dt = -w rho_b c_b (T - Ta) / (rho c)
    from openir.physics.bioheat import SolverOptions

    kw = dict(kw)
    opts = kw.pop("options", {})
    sol = solve_pennes(_box(9, W_B, 41.0), 60.0,
                       options=SolverOptions(boundary="insulated", perfusion_shutdown=False, **opts), **kw)
    lam = W_B * RHO_B * C_B / (RHO * C)
    exact = 37.0 + 4.0 * np.exp(-lam * 60.0)
    np.testing.assert_allclose(sol.temperature_c[-1], exact, atol=1e-2)
    # and exactly the discrete ODE of the scheme (forward or backward Euler, sol.n_steps equal steps)
    step = 1.0 - lam * sol.dt_s if sol.method == "explicit" else 1.0 / (1.0 + lam * sol.dt_s)
    np.testing.assert_allclose(sol.temperature_c[-1], 37.0 + 4.0 * step**sol.n_steps, atol=2e-5)
    fixed = solve_pennes(_box(9, W_B, 41.0), 60.0, options=SolverOptions(perfusion_shutdown=False, **opts), **kw)
    assert fixed.temperature_c[-1][0, 4, 4] == pytest.approx(41.0)  # the default edge is held
    assert abs(fixed.temperature_c[-1][1, 4, 4] - exact) > 0.1


@pytest.mark.parametrize("kw", [{"options": {"backend": "numba"}}, {"options": {"backend": "numpy"}},
                                {"method": "implicit", "dt_s": 0.5}, {"options": {"temperature_dependent": True}},
                                {"options": {"temperature_dependent": True, "backend": "numpy"}}])
def test_insulated_box_keeps_all_the_heat(kw: dict) -> None:
    from openir.physics.bioheat import SolverOptions

    kw = dict(kw)
    opts = kw.pop("options", {})
    med = _box(9, 0.0)
    pat = np.zeros(med.shape)
    pat[1, 2, 3] = 1e9  # 1 W in one voxel near a corner: the heat reaches the outer faces
    sol = solve_pennes(med, 40.0, sources=[HeatSource(pat, [(0.0, 20.0, 1.0)])],
                       options=SolverOptions(boundary="insulated", **opts), **kw)
    stored = ((sol.temperature_c[-1].astype(float) - 37.0) * RHO * C).sum() * 1e-9
    assert stored == pytest.approx(20.0, rel=2e-4)
    assert sol.temperature_c[-1][0].max() > 37.5  # the edge layer warmed (it is not held)
    held_edge = solve_pennes(med, 40.0, sources=[HeatSource(pat, [(0.0, 20.0, 1.0)])], options=SolverOptions(**opts),
                             **kw)
    assert ((held_edge.temperature_c[-1].astype(float) - 37.0) * RHO * C).sum() * 1e-9 < 19.0  # heat lost


def test_fused_float32_and_float64_and_numpy_agree_with_insulated_edges() -> None:
    from openir.physics.bioheat import SolverOptions

    med, r = _cube(1.0, 15.0)
    pat = np.where(r <= 2.5, 2e7, 0.0)
    src = [HeatSource(pat, [(0.0, 25.0, 1.0)])]
    runs = [solve_pennes(med, 30.0, sources=src, options=SolverOptions(boundary=bd, precision=p, backend=b))
            for b, p, bd in (("numba", "float32", "insulated"), ("numba", "float64", "insulated"),
                             ("numpy", "float64", "insulated"))]
    assert runs[0].temperature_c[-1].max() > 60  # coagulating: dose, damage and shutdown all active
    for other in runs[1:]:
        np.testing.assert_allclose(runs[0].temperature_c[-1], other.temperature_c[-1], atol=2e-4)
        np.testing.assert_allclose(runs[0].cem43_min[-1], other.cem43_min[-1], rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(runs[0].damage[-1], other.damage[-1], rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(runs[0].max_temperature_c, other.max_temperature_c, atol=2e-4)
    assert runs[0].meta["stepper"] == "fused-float32"


def test_temperature_dependent_conductivity_matches_kirchhoff_steady_state() -> None:
    # 1-D steady conduction between walls at 37 and 87 C: the Kirchhoff potential
    # phi(T) = int k dT is linear in x, so the midpoint sits where phi is halfway (not at 62 C).
    from openir.physics.bioheat import SolverOptions
    from openir.physics.tissues import load_tissue_table

    td = load_tissue_table().temperature_dependence
    beta, t_ref = td.conductivity_slope_per_c.value, td.conductivity_reference_c.value
    n = 41
    shape = (n, 3, 3)
    held = np.zeros(shape, bool)
    held[0] = held[-1] = True
    thold = np.full(shape, 37.0)
    thold[-1] = 87.0
    med = ThermalMedium(np.full(shape, RHO * C), np.full(shape, K), np.zeros(shape), (1.0, 1.0, 1.0), held=held,
                        held_temperature_c=thold)
    mids = {}
    for dep in (False, True):
        sol = solve_pennes(med, 40000.0, method="implicit", dt_s=400.0,
                           options=SolverOptions(boundary="insulated", temperature_dependent=dep,
                                                 perfusion_shutdown=False))
        mids[dep] = float(sol.temperature_c[-1][n // 2, 1, 1])

    def phi(t: float) -> float:
        return (t - t_ref) + 0.5 * beta * (t - t_ref) ** 2

    half = 0.5 * (phi(37.0) + phi(87.0))
    u = (-1.0 + np.sqrt(1.0 + 2.0 * beta * half)) / beta
    assert mids[False] == pytest.approx(62.0, abs=0.02)
    assert mids[True] == pytest.approx(t_ref + u, abs=0.1)
    assert mids[True] - mids[False] > 1.0  # the effect is real, not within the tolerance


def test_unknown_boundary_is_refused() -> None:
    from openir.physics.bioheat import SolverOptions

    with pytest.raises(InputError, match="boundary"):
        solve_pennes(_box(5, 0.0), 1.0, options=SolverOptions(boundary="open"))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_adjacent_dirichlet_vessel_voxels_stay_finite(backend: str) -> None:
    # wall_resistance 0 (the default) between two held voxels used to give an infinite face conductance
    # and NaN over the whole neighbourhood in the explicit linear path
    med = _box(11, W_B)
    vessel = np.zeros(med.shape, bool)
    vessel[:, 5, 5:8] = True
    med.held = vessel
    pat = np.zeros(med.shape)
    pat[5, 5, 3] = 1e9
    sol = solve_pennes(med, 5.0, sources=[HeatSource(pat, [(0.0, 5.0, 1.0)])],
                       options=SolverOptions(backend=backend))
    assert np.isfinite(sol.temperature_c[-1]).all()
    np.testing.assert_allclose(sol.temperature_c[-1][vessel], 37.0)
    assert sol.temperature_c[-1][5, 5, 4] > 37.0
