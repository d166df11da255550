"""`openir plan` then `openir simulate` on the written plan, for cryo, IRE and a thermal device, the
sequencing of a plan's activations, the RKL2 / active-box cryo solver against plain forward Euler,
and bad input refused with one line, exit 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.core import Grid, LabelMap, Volume, make_affine
from openir.core.errors import InputError


def _abdomen() -> LabelMap:
    """Fat, muscle, a liver and an 18 mm tumour on 2 mm voxels (small: the planner and solver stay fast)."""
    ni, nj, nk, s = 42, 36, 30, 2.0
    g = Grid((nk, nj, ni), make_affine((s,) * 3, (-ni * s / 2, -nj * s / 2, -nk * s / 2)))
    p = g.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 40) ** 2 + (y / 34) ** 2 <= 1
    fat = body & ~((x / 37) ** 2 + (y / 31) ** 2 <= 1)
    liver = body & ~fat & ((x / 34) ** 2 + (y / 29) ** 2 + (z / 40) ** 2 <= 1)
    masks = {"fat": fat, "muscle": body & ~fat & ~liver, "liver": liver,
             "tumour_1": (x + 6) ** 2 + y**2 + z**2 <= 9.0**2}
    return LabelMap.from_masks(masks, g)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    from openir import io

    d = tmp_path_factory.mktemp("plan_sim")
    lm = _abdomen()
    io.write_nifti(Volume(np.where(lm.array > 0, 40, -1000).astype(np.int16), lm.affine), d / "ct.nii.gz")
    io.write_nifti(lm, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    return d


def _plan(case: Path, modality: str, monkeypatch) -> Path:
    import openir.plan.planner as planner
    from openir.cli import app

    fast = planner.plan_ablation  # a coarse needle search: placement is not under test here
    monkeypatch.setattr(planner, "plan_ablation", lambda *a, **k: fast(*a, **k, n_directions=200, n_paths=2,
                                                                      lattice_fraction=1.0))
    out = case / modality
    r = CliRunner().invoke(app, ["plan", str(case / "ct.nii.gz"), str(case / "labels.nii.gz"), "--names",
                                 str(case / "names.json"), "--tumor", "tumour_1", "--modality", modality,
                                 "--margin", "5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out / "plan.json"


@pytest.mark.parametrize("modality", ["cryo", "ire", "microwave"])
def test_plan_then_simulate_every_modality(case, modality, monkeypatch):
    from openir.cli import app

    plan_path = _plan(case, modality, monkeypatch)
    plan = json.loads(plan_path.read_text())
    probes = [p for p in plan["probes"] if p["array_position"] == 1]
    assert probes and all(p["modality"] == modality for p in probes)
    out = plan_path.parent / "sim"
    r = CliRunner().invoke(app, ["simulate", str(plan_path), "--voxel", "2", "--box", "60", "-o", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "simulation.json").read_text())
    assert res["modality"] == modality
    assert [m["probe"] for m in res["probe_models"]] == list(range(1, len(plan["probes"]) + 1))
    groups = {(p["group"], p["array_position"]) for p in plan["probes"]}
    assert len(res["activations"]) == len(groups)
    assert res["sequence"] == ("simultaneous" if len(groups) == 1 else ("separate" if modality == "ire" else "sequential"))
    tumour_ml = 4 / 3 * np.pi * 9.0**3 / 1000
    assert res["array_zone"]["volume_ml"] > tumour_ml  # the planned probes together ablate more than the tumour
    if modality == "cryo":
        assert res["criterion"] == "isotherm" and res["threshold"] <= -20
        if not any(p.get("schedule") for p in plan["probes"]):
            # a plan without schedules: the sourced 10-8-10 protocol is simulated and said
            assert any("10-8-10" in n and "doi:10.1007/s00270-018-1950-z" in n for n in res["notes"])
        else:  # the planner's freeze-thaw-freeze schedule is what runs (10-8-10 min by default)
            assert sum(st["duration_s"] for st in plan["probes"][0]["schedule"]) >= 28 * 60 - 1e-6
        assert res["zones"][-1]["time_s"] >= 28 * 60 - 1e-6
        assert res["zones"][-1]["min_temperature_c"] < -100
    elif modality == "ire":
        assert res["criterion"] == "efield" and res["peak_field_v_cm"] > res["threshold"]
        assert (out / "field_v_cm.nii.gz").exists() and (out / "lethal_zone.nii.gz").exists()
        assert all(not m["calibrated"] for m in res["probe_models"]) and "generic" in r.output
    else:
        assert res["criterion"] == "cem43" and res["max_temperature_c"] > 60
    assert (out / "zone_growth.png").exists()


def _probe(tip, group, position=1, device="emprint", modality="microwave", **kw) -> dict:
    return {"device": device, "modality": modality, "group": group, "array_position": position, "tip_lps": tip,
            "direction_lps": [0, 0, 1], **kw}


def test_sequential_activations_are_offset_not_simultaneous():
    from openir.physics.models import SimulationRequest
    from openir.physics.simulate import activations, simulate

    probes = [_probe([-10, 0, 0], 1, power_w=60, time_s=60), _probe([10, 0, 0], 2, power_w=60, time_s=60)]
    req = SimulationRequest.model_validate({"probes": probes, "spacing_mm": 2.0, "box_mm": 50,
                                            "output_times_s": [60, 120]})
    assert [a.probes for a in activations(req.probes)] == [[1], [2]]
    res, fields = simulate(req)
    assert res.sequence == "sequential"
    assert [(a.start_s, a.end_s) for a in res.activations] == [(0.0, 60.0), (60.0, 120.0)]
    assert any("one after another" in n for n in res.notes)
    # at 60 s only the first antenna has heated: its side is hot, the other still at body temperature
    t60 = fields.solution.temperature_c[0]
    g = fields.grid
    hot = [float(t60[tuple(np.rint(np.linalg.inv(g.affine) @ [x, 0, -5, 1])[:3][::-1].astype(int))]) for x in (-10, 10)]
    assert hot[0] > 50 and hot[1] < 40
    # pull-backs: same group, later array position comes after
    pb = [_probe([0, 0, 0], 1, 1, power_w=60, time_s=30), _probe([0, 0, -15], 1, 2, power_w=60, time_s=30)]
    assert [a.probes for a in activations(SimulationRequest.model_validate({"probes": pb}).probes)] == [[1], [2]]
    # a request without groups: everything together
    free = [{**p, "group": None, "array_position": None} for p in probes]
    assert [a.probes for a in activations(SimulationRequest.model_validate({"probes": free}).probes)] == [[1, 2]]


def test_rkl2_active_box_matches_forward_euler():
    """The default cryo stepper (RKL2 8 s super-steps on the active box) against plain forward Euler
    on the full grid: same ice-ball and lethal extents, volumes within 2 %."""
    from openir.physics.arrays import measure_dims
    from openir.physics.bioheat import HeldSource, SolverOptions, solve_pennes
    from openir.physics.simulate import cube_grid, homogeneous_medium
    from openir.physics.sources import cryoprobe_mask

    grid = cube_grid(np.array([0, 0, -5.0]), 56, 2.0)
    med = homogeneous_medium(grid)
    tips = np.array([(-6.0, 0.0, 10.0), (6.0, 0.0, 10.0)])
    sched = [(0.0, 240.0, 1.0), (240.0, 360.0, 0.0), (360.0, 480.0, 1.0)]
    held = [HeldSource(cryoprobe_mask(grid, t, np.array([0, 0, 1.0]), freeze_length_mm=20, probe_radius_mm=0.74),
                       -108.0, sched) for t in tips]
    ref = solve_pennes(med, 480.0, held_sources=held, options=SolverOptions(active_region=False, super_step_s=None))
    new = solve_pennes(med, 480.0, held_sources=held)
    assert new.meta["stepper"] == "enthalpy-rkl2-active" and ref.meta["stepper"] == "enthalpy-numba"
    assert new.n_steps * 5 < ref.n_steps
    for iso in (-40.0, -20.0, 0.0):
        a = measure_dims(new.min_temperature_c <= iso, grid, tips, np.array([0, 0, 1.0]))
        b = measure_dims(ref.min_temperature_c <= iso, grid, tips, np.array([0, 0, 1.0]))
        assert b.volume_ml > 0
        assert abs(a.along_mm - b.along_mm) <= 2.0 and abs(a.across1_mm - b.across1_mm) <= 2.0
        assert abs(a.volume_ml / b.volume_ml - 1) < 0.02, iso
    far = np.abs(ref.temperature_c[-1] - new.temperature_c[-1])
    assert float(np.percentile(far, 99)) < 0.5


def test_active_box_grows_with_the_front_and_is_exact_enough():
    from openir.physics.bioheat import HeldSource, SolverOptions, solve_pennes
    from openir.physics.simulate import cube_grid, homogeneous_medium
    from openir.physics.sources import cryoprobe_mask

    grid = cube_grid(np.zeros(3), 80, 2.0)
    med = homogeneous_medium(grid)
    held = [HeldSource(cryoprobe_mask(grid, np.array([0, 0, 5.0]), np.array([0, 0, 1.0]), freeze_length_mm=10,
                                      probe_radius_mm=0.74), -108.0, [(0.0, 60.0, 1.0)])]
    opts = {"super_step_s": None}
    box = solve_pennes(med, 60.0, held_sources=held, options=SolverOptions(**opts))
    full = solve_pennes(med, 60.0, held_sources=held, options=SolverOptions(active_region=False, **opts))
    assert 0 < box.meta["active_fraction_final"] < 0.5  # the front of a short freeze stays near the probe
    assert box.meta["active_voxel_updates"] < 0.5 * full.voxel_updates
    assert float(np.abs(box.temperature_c[-1] - full.temperature_c[-1]).max()) < 2e-3
    assert float(np.abs(box.cem43_min[-1] - full.cem43_min[-1]).max()) < 1e-6  # dose outside caught up


def _write_plan(tmp_path: Path, **change) -> Path:
    probe = {"device": "emprint", "power_w": 60, "time_s": 30, "tip_lps": [0, 0, 0], "direction_lps": [0, 0, 1]}
    probe.update(change.pop("probe", {}))
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"probes": [probe], "spacing_mm": 2.0, "box_mm": 30, **change}))
    return p


@pytest.mark.parametrize(("change", "args", "words"), [
    ({"probe": {"device": "no_such_probe"}}, [], "unknown device"),
    ({"probe": {"time_s": -5}}, [], "time_s"),
    ({"probe": {"direction_lps": [0, 0, 2]}}, [], "unit vector"),
    ({"spacing_mm": 0}, [], "spacing_mm"),
    ({}, ["--voxel", "0"], "--voxel"),
    ({}, ["--box", "-10"], "--box"),
])
def test_simulate_bad_input_one_line_exit_2_nothing_written(tmp_path, change, args, words):
    from openir.cli import app

    plan = _write_plan(tmp_path, **change)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["simulate", str(plan), "-o", str(out), *args])
    assert isinstance(r.exception, InputError) and r.exception.exit_code == 2, r.output
    assert words in str(r.exception) and "\n" not in str(r.exception)
    assert not out.exists()


def test_ire_pullbacks_are_simulated_each_alone_and_united():
    from openir.physics.models import SimulationRequest
    from openir.physics.simulate import simulate

    kw = {"device": "nanoknife", "modality": "ire", "exposure_mm": 10}
    one = [_probe([-7.5, 0, 0], 1, 1, **kw), _probe([7.5, 0, 0], 1, 1, **kw)]
    both = one + [_probe([-7.5, 0, -12], 1, 2, **kw), _probe([7.5, 0, -12], 1, 2, **kw)]
    r1, _ = simulate(SimulationRequest.model_validate({"probes": one, "spacing_mm": 2.0}))
    r2, f2 = simulate(SimulationRequest.model_validate({"probes": both, "spacing_mm": 2.0}))
    assert r1.sequence == "simultaneous" and r2.sequence == "separate"
    assert [a.probes for a in r2.activations] == [[1, 2], [3, 4]]
    assert any("each alone" in n for n in r2.notes)
    # the pull-back adds its own zone behind the first: longer along the shafts, about as wide
    assert r2.array_zone.along_mm > r1.array_zone.along_mm + 8
    assert abs(r2.array_zone.across1_mm - r1.array_zone.across1_mm) < 3
    assert f2.extra["lethal_zone"].sum() > 0


def test_cryo_zone_never_shrinks_through_the_thaw():
    from openir.physics.models import SimulationRequest
    from openir.physics.simulate import simulate

    sched = [{"duration_s": 120, "power_w": 1}, {"duration_s": 120, "power_w": 0}, {"duration_s": 60, "power_w": 1}]
    req = SimulationRequest.model_validate({"probes": [{"device": "icerod", "modality": "cryo", "schedule": sched,
                                                        "tip_lps": [0, 0, 0], "direction_lps": [0, 0, 1]}],
                                            "spacing_mm": 2.0, "box_mm": 90, "output_times_s": [60, 120, 180, 240, 300]})
    res, _ = simulate(req)
    vols = [z.volume_ml for z in res.zones]
    assert vols[1] > 0 and all(b >= a for a, b in zip(vols, vols[1:], strict=False)), vols
    assert res.zones[3].min_temperature_c > res.zones[1].min_temperature_c  # the probe itself warmed in the thaw
