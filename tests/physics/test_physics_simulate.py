"""simulate(): request -> zone over time; the `openir simulate` command writes maps and a plot."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.physics.models import SimulationRequest
from openir.physics.simulate import cube_grid, labelled_medium, simulate

PROBE = {"device": "emprint", "power_w": 100, "time_s": 120, "tip_lps": [10.0, -5.0, 30.0], "direction_lps": [0, 0, 1]}


def test_simulate_homogeneous_zone_grows() -> None:
    req = SimulationRequest.model_validate({"probes": [PROBE], "spacing_mm": 2.0, "box_mm": 60, "output_times_s": [40, 80, 120]})
    res, fields = simulate(req)
    assert [z.time_s for z in res.zones] == [40, 80, 120]
    vols = [z.volume_ml for z in res.zones]
    assert vols[0] < vols[1] < vols[2] and vols[2] > 1.0
    assert res.final_length_mm > res.final_width_mm * 0.8
    assert fields.solution.temperature_c[-1].shape == fields.grid.shape
    # the zone sits at the probe: the hottest voxel lies near the feed point behind the tip
    k, j, i = np.unravel_index(np.argmax(fields.solution.max_temperature_c), fields.grid.shape)
    hot = fields.grid.index_to_world([i, j, k])
    assert np.linalg.norm(hot - np.array([10.0, -5.0, 20.0])) <= 3.0


def test_labelled_medium_vessels_become_heat_sinks() -> None:
    grid = cube_grid(np.zeros(3), 21, 1.0)
    arr = np.ones(grid.shape, np.uint8)
    arr[:, 8:12, 8:12] = 2
    lm = LabelMap(arr, grid.affine, {}, {1: "liver", 2: "portal_vein"})
    med, notes = labelled_medium(lm)
    assert med.held is not None and med.held.sum() == 21 * 16
    assert "portal_vein" in notes[0] and "h =" in notes[0]
    assert np.all(med.wall_resistance[med.held] > 0)


def test_cli_simulate_writes_maps_and_plot(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"probes": [PROBE], "spacing_mm": 2.0, "box_mm": 50, "output_times_s": [60, 120]}))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["simulate", str(plan), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "simulation.json").read_text())
    assert summary["criterion"] == "cem43" and len(summary["zones"]) == 2
    img = nib.load(str(out / "temperature_c.nii.gz"))
    assert img.shape[-1] == 2
    # LPS -> RAS at the border: first two affine rows flipped
    grid = cube_grid(np.array(PROBE["tip_lps"]) - 10 * np.array([0, 0, 1.0]), 50, 2.0)
    np.testing.assert_allclose(img.affine[:2], -grid.affine[:2])
    assert (out / "zone_growth.png").stat().st_size > 1000


def test_cli_bad_plan_is_a_clear_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"probes": [{"device": "emprint", "tip_lps": [0, 0, 0], "direction_lps": [0, 0, 0]}]}))
    res = CliRunner().invoke(app, ["simulate", str(plan)])
    assert isinstance(res.exception, InputError)
    assert "direction" in str(res.exception) and "plan.json" in str(res.exception)
    plan.write_text(json.dumps({"probes": [{**PROBE, "device": "unknown_device"}]}))
    res = CliRunner().invoke(app, ["simulate", str(plan), "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError) and "unknown device" in str(res.exception)


def test_schedule_and_cryo_request() -> None:
    req = SimulationRequest.model_validate({
        "probes": [{"device": "cryo", "kind": "cryo", "tip_lps": [0, 0, 0], "direction_lps": [0, 0, 1],
                    "schedule": [{"duration_s": 40, "power_w": 1}, {"duration_s": 20, "power_w": 0}]}],
        "spacing_mm": 1.5, "box_mm": 36,
    })
    res, fields = simulate(req)
    assert res.criterion == "isotherm"
    assert res.final_volume_ml > 0
    # passive thaw after 40 s: the probe voxels warm up again
    assert fields.solution.temperature_c[-1].min() > -150.0 + 1.0
    with pytest.raises(InputError, match="power_w and time_s"):  # generic laser has no default setting
        simulate(SimulationRequest.model_validate({"probes": [{**PROBE, "power_w": None, "time_s": None, "device": "x", "kind": "laser"}]}))


def test_cli_simulate_reads_a_label_map_with_a_vessel(tmp_path: Path) -> None:
    """Labels come through openir.io (RAS on disk, LPS inside); a vessel beside the antenna shrinks the zone."""
    from openir.io import write_nifti

    grid = cube_grid(np.array(PROBE["tip_lps"]), 50, 2.0)
    arr = np.ones(grid.shape, np.uint8)
    centres = grid.voxel_centres()
    d = np.linalg.norm((centres - (np.array(PROBE["tip_lps"]) + [8.0, 0, 0]))[..., :2], axis=-1)
    arr[d <= 3.0] = 2  # a 6 mm vessel parallel to the antenna, 8 mm to its left
    write_nifti(LabelMap(arr, grid.affine, {}, {1: "liver", 2: "portal_vein"}), tmp_path / "labels.nii.gz")
    plan = tmp_path / "plan.json"
    base = {"probes": [PROBE], "spacing_mm": 2.0, "box_mm": 50, "output_times_s": [120]}
    plan.write_text(json.dumps({**base, "labels": "labels.nii.gz", "label_names": {"1": "liver", "2": "portal_vein"}}))
    res = CliRunner().invoke(app, ["simulate", str(plan), "--out", str(tmp_path / "v")])
    assert res.exit_code == 0, res.output
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(base))
    assert CliRunner().invoke(app, ["simulate", str(plain), "--out", str(tmp_path / "p")]).exit_code == 0
    with_vessel = json.loads((tmp_path / "v" / "simulation.json").read_text())["final_volume_ml"]
    homogeneous = json.loads((tmp_path / "p" / "simulation.json").read_text())["final_volume_ml"]
    assert with_vessel < homogeneous
    assert nib.load(str(tmp_path / "v" / "temperature_c.nii.gz")).shape[-1] == 1


def test_cli_simulate_takes_the_label_map_named_by_a_plan(tmp_path: Path) -> None:
    """A plan from `openir plan` records its label map under case.labels; simulate uses its vessels."""
    from openir.io import write_nifti

    grid = cube_grid(np.array(PROBE["tip_lps"]), 50, 2.0)
    arr = np.ones(grid.shape, np.uint8)
    d = np.linalg.norm((grid.voxel_centres() - (np.array(PROBE["tip_lps"]) + [8.0, 0, 0]))[..., :2], axis=-1)
    arr[d <= 3.0] = 2
    write_nifti(LabelMap(arr, grid.affine, {}, {1: "liver", 2: "portal_vein"}), tmp_path / "labels.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps({"labels": {"1": "liver", "2": "portal_vein"}}))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"case": {"case_id": "x", "labels": str(tmp_path / "labels.nii.gz")}, "probes": [PROBE],
                                "spacing_mm": 2.0, "box_mm": 50, "output_times_s": [120]}))
    res = CliRunner().invoke(app, ["simulate", str(plan), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    notes = json.loads((tmp_path / "o" / "simulation.json").read_text())["notes"]
    assert any("portal_vein" in n for n in notes), notes
