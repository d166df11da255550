"""Power-limited cryoprobe (HeldSource.max_power_w): why it exists is that a Joule-Thomson probe has a
finite cooling power, so its surface runs warmer under a heavy heat load and colder where neighbouring
probes share the load (issue 14, cryo round 3)."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core.errors import InputError
from openir.physics import CryoOptions, cryo_array_zone, layout_tips
from openir.physics.bioheat import (
    HeldSource,
    SolverOptions,
    ThermalMedium,
    _consts,
    _np_h_of_t,
    solve_pennes,
)
from openir.physics.tissues import load_tissue_table

FLOOR = -185.8


def _box(n: int = 19, h: float = 1.0, perfusion: float = 0.0) -> tuple[ThermalMedium, np.ndarray]:
    shape = (n, n, n)
    med = ThermalMedium(np.full(shape, 3.8e6), np.full(shape, 0.52), np.full(shape, perfusion), (h, h, h))
    ax = (np.arange(n) - n // 2) * h
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    return med, np.stack([x, y, z])


def _rod(xyz: np.ndarray, x0: float) -> np.ndarray:
    """A probe along z through (x0, 0): one voxel across, 9 voxels long."""
    x, y, z = xyz
    return (np.abs(x - x0) < 0.5) & (np.abs(y) < 0.5) & (np.abs(z) <= 4.0)


def test_unlimited_power_is_the_fixed_probe_at_the_floor() -> None:
    med, xyz = _box()
    probe = _rod(xyz, 0.0)
    sched = [(0.0, 40.0, 1.0)]
    control = list(np.arange(8.0, 40.0, 8.0))  # the same segments as the power control interval (8 s)
    fixed = solve_pennes(med, 40.0, held_sources=[HeldSource(probe, FLOOR, sched)], snapshot_times_s=control)
    power = solve_pennes(med, 40.0, held_sources=[HeldSource(probe, FLOOR, sched, max_power_w=1e6)],
                         snapshot_times_s=control)
    assert np.allclose(power.temperature_c[-1], fixed.temperature_c[-1], atol=1e-9)
    log = power.meta["probe_temperature_log"]["cryoprobe"]
    assert log and all(tp == FLOOR for _, tp, _ in log)
    assert "probe_temperature_log" not in fixed.meta


def test_finite_power_is_never_exceeded() -> None:
    """The logged load never exceeds P_max, and the heat the tissue actually lost (insulated box, no
    perfusion: the enthalpy drop) stays within P_max x freezing time."""
    p_max, dur = 0.5, 60.0
    med, xyz = _box()
    probe = _rod(xyz, 0.0)
    opts = SolverOptions(boundary="insulated", power_control_s=2.0)
    sol = solve_pennes(med, dur, held_sources=[HeldSource(probe, FLOOR, [(0.0, dur, 1.0)], max_power_w=p_max)],
                       options=opts)
    log = sol.meta["probe_temperature_log"]["cryoprobe"]
    assert max(q for _, _, q in log) <= p_max * (1 + 1e-9)
    assert any(tp > FLOOR + 1.0 for _, tp, _ in log)  # the limit binds: the probe runs warmer than the gas
    c = _consts(load_tissue_table())
    tissue = ~probe
    h0 = _np_h_of_t(np.full(med.shape, 37.0), med.heat_capacity_vol, c)[tissue].sum()
    h1 = _np_h_of_t(sol.temperature_c[-1].astype(float), med.heat_capacity_vol, c)[tissue].sum()
    extracted_j = (h0 - h1) * 1e-9  # 1 mm^3 voxels
    assert 0.5 * p_max * dur < extracted_j <= 1.02 * p_max * dur


def test_two_probes_close_together_run_colder_than_one() -> None:
    """Neighbours pre-cool each other's tissue, so each carries less load and runs colder (Littrup 2009:
    multiple probes overcome the heat load)."""
    med, xyz = _box(n=21)
    sched = [(0.0, 120.0, 1.0)]

    def last_half_mean(masks: list[np.ndarray]) -> float:
        held = [HeldSource(m, FLOOR, sched, name=f"p{i}", max_power_w=3.0) for i, m in enumerate(masks)]
        log = solve_pennes(med, 120.0, held_sources=held).meta["probe_temperature_log"]["p0"]
        return float(np.mean([tp for _, tp, _ in log[len(log) // 2:]]))

    one = last_half_mean([_rod(xyz, -1.0)])
    two = last_half_mean([_rod(xyz, -1.0), _rod(xyz, 1.0)])  # 2 mm apart
    assert two < one - 10.0  # -65 vs -48 C when written


def test_power_model_refuses_a_fixed_probe_temperature() -> None:
    tips, dirs = layout_tips(1, 10.0)
    with pytest.raises(InputError):
        cryo_array_zone(tips, dirs, freeze_schedule=[1], options=CryoOptions(probe_model="power", probe_temperature_c=-100.0))


def test_cryo_array_power_model_runs_colder_with_neighbours_and_says_so() -> None:
    opts = CryoOptions(spacing_mm=2.0, margin_mm=10.0, probe_model="power", probe_power_w=20.0)
    tips, dirs = layout_tips(1, 10.0)
    z = cryo_array_zone(tips, dirs, active_length_mm=10.0, freeze_schedule=[2], isotherm_c=-30.0, options=opts)
    assert any("at most 20 W" in n and "user value" in n for n in z.notes)
    fixed = cryo_array_zone(tips, dirs, active_length_mm=10.0, freeze_schedule=[2], isotherm_c=-30.0,
                            options=CryoOptions(spacing_mm=2.0, margin_mm=10.0))
    assert any("probe surface" in n and "held over" in n for n in fixed.notes)  # the packaged default: fixed
