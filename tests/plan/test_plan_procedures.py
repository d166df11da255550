"""Needle procedures beyond ablation on small synthetic chests/abdomens with known geometry: lung
biopsy (one pleural puncture, no fissure when avoidable, no bulla), drainage (catheter size), coeliac
block (prone, posterior), and the `openir path` command."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from openir.core import Grid, LabelMap, Volume, make_affine
from openir.plan.procedures import PathOptions, load_procedures, plan_path

SRC = Path(__file__).resolve().parents[2] / "src" / "openir" / "cli" / "path.py"


def _case(kind: str) -> LabelMap:
    g = Grid((30, 50, 60), make_affine((2.0, 2.0, 2.0), (-60, -50, -30)))
    p = g.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 56) ** 2 + (y / 46) ** 2 <= 1
    wall = body & ~((x / 50) ** 2 + (y / 40) ** 2 <= 1)
    masks = {"muscle": body}
    if kind == "chest":
        lung_r = body & ~wall & (x < -4)
        fissure = (z - 0.5 * y) > 0  # oblique plane splits the right lung in two lobes
        masks.update({"lung_upper_lobe_right": lung_r & fissure, "lung_lower_lobe_right": lung_r & ~fissure,
                      "lung_upper_lobe_left": body & ~wall & (x > 4)})
        masks["bulla_1"] = (x + 40) ** 2 + (y + 5) ** 2 + (z + 2) ** 2 <= 36
        masks["nodule_1"] = (x + 28) ** 2 + (y - 14) ** 2 + (z + 14) ** 2 <= 25  # lower lobe
        masks["spine"] = (x ** 2 + (y - 34) ** 2 <= 64) & body
    elif kind == "abdomen":
        masks["liver"] = body & ~wall & (x < 0)
        masks["bowel"] = (x - 15) ** 2 + (y + 10) ** 2 <= 100
        masks["abscess_1"] = (x + 20) ** 2 + (y + 5) ** 2 + z ** 2 <= 64
        masks["spine"] = (x ** 2 + (y - 34) ** 2 <= 64) & body
    else:  # coeliac
        masks["aorta"] = (x ** 2 + (y - 10) ** 2 <= 36)
        masks["spinal_canal"] = (x ** 2 + (y - 30) ** 2 <= 9)
        masks["spine"] = (x ** 2 + (y - 30) ** 2 <= 81) & ~masks["spinal_canal"]
        masks["kidney_left"] = ((x - 30) / 8) ** 2 + ((y - 20) / 12) ** 2 <= 1
        masks["kidney_right"] = ((x + 30) / 8) ** 2 + ((y - 20) / 12) ** 2 <= 1
        masks["bowel"] = (x ** 2 + (y + 20) ** 2 <= 150)
        masks["celiac_region"] = (x + 9) ** 2 + (y - 8) ** 2 + z ** 2 <= 9
    return LabelMap.from_masks(masks, g)


def test_profiles_load_with_sources():
    t = load_procedures()
    assert set(t.procedures) == {"biopsy", "drainage", "nerve-block"}
    for prof in t.procedures.values():
        assert prof.source and all(rf.source for rf in prof.risk_factors)


def test_lung_biopsy_one_pleural_puncture_no_fissure_no_bulla():
    lm = _case("chest")
    res = plan_path(lm, "biopsy", options=PathOptions(n_directions=3000))
    b = res.best
    assert sum(v for k, v in b.counted_crossings.items() if k.startswith("lung")) == 1
    assert b.fissures_crossed == 0 and b.counted_length_mm["lung"] > 0
    assert b.length_mm <= res.needle_length_mm
    # the exact segment touches no bulla voxel (independent slab-test walk)
    from openir.plan.reference import touched_voxels

    g = lm.grid
    e, t = np.asarray(b.entry_lps), np.asarray(b.target_lps)
    p0 = g.world_to_index(t)[::-1]
    d = (e - t) / np.linalg.norm(e - t)
    dv = (np.linalg.inv(g.affine[:3, :3]) @ d)[::-1]
    vox, _, _ = touched_voxels(p0, dv, b.length_mm, lm.shape)
    assert not lm.mask("bulla_1")[vox[:, 0], vox[:, 1], vox[:, 2]].any()
    assert any("lung" in r and "mm" in r for r in res.risk_factors)
    assert set(res.positions_tried) == {"supine", "prone", "left_lateral", "right_lateral"}


def test_drainage_finds_the_collection_and_sizes_the_catheter():
    lm = _case("abdomen")
    res = plan_path(lm, "drainage", options=PathOptions(n_directions=2000, catheter_french=14, position="supine"))
    assert res.catheter_diameter_mm == pytest.approx(14 / 3)
    assert any("catheter" in n for n in res.notes)
    assert res.result.keep_away_mm["bowel"] >= 14 / 6  # the catheter's radius at least
    assert res.best.entry_lps[1] < res.target_lps[1] + 30  # supine: not from the back


def test_coeliac_block_prone_posterior_avoids_the_spinal_canal():
    lm = _case("coeliac")
    res = plan_path(lm, "nerve-block", options=PathOptions(n_directions=3000, position="prone"))
    b = res.best
    assert res.position == "prone"
    assert b.entry_lps[1] > res.target_lps[1]  # posterior entry
    assert b.clearances_mm["spinal_canal"] >= 3.0


def test_openir_path_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from openir import io

    spec = importlib.util.spec_from_file_location("openir_cli_path", SRC)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    app = typer.Typer()
    app.command()(mod.path)
    lm = _case("chest")
    io.write_nifti(Volume(np.where(lm.array > 0, 40, -1000).astype(np.int16), lm.affine), tmp_path / "ct.nii.gz")
    io.write_nifti(lm, tmp_path / "labels.nii.gz")
    (tmp_path / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    r = CliRunner().invoke(app, [str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"), "--names",
                                 str(tmp_path / "names.json"), "--procedure", "biopsy", "--directions", "2000",
                                 "--position", "supine", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "out" / "path.json").read_text())
    assert got["procedure"] == "biopsy" and got["position"] == "supine"
    assert (tmp_path / "out" / "path.png").stat().st_size > 10_000
    bad = CliRunner().invoke(app, [str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"), "--names",
                                   str(tmp_path / "names.json"), "--procedure", "tattoo", "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "tattoo" in str(bad.exception)
