"""Physics zones for planned probes: calibration bar in liver, heat sink beside a vessel, report, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.core import Grid, LabelMap, Volume, make_affine
from openir.core.errors import InputError
from openir.plan.models import Plan, Probe
from openir.plan.physics_zone import decode_mask, encode_mask, physics_zone
from openir.plan.planner import plan_ablation
from openir.plan.zones import predict_zone, rasterise_zones


def liver_case(vessel: bool, spacing: float = 2.0) -> LabelMap:
    """Abdomen-like box: fat, muscle, a liver, a 9 mm-radius tumour and (optionally) a 6 mm portal
    vein parallel to S, its wall 1 mm from the tumour."""
    ni, nj, nk = 42, 36, 30
    g = Grid((nk, nj, ni), make_affine((spacing,) * 3, (-ni * spacing / 2, -nj * spacing / 2, -nk * spacing / 2)))
    p = g.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 40) ** 2 + (y / 34) ** 2 <= 1
    fat = body & ~((x / 37) ** 2 + (y / 31) ** 2 <= 1)
    liver = body & ~fat & ((x / 34) ** 2 + (y / 29) ** 2 + (z / 40) ** 2 <= 1)
    masks = {"fat": fat, "muscle": body & ~fat & ~liver, "liver": liver,
             "tumour_1": (x + 6) ** 2 + y**2 + z**2 <= 9.0**2}
    if vessel:
        masks["portal_vein"] = liver & ((x - 7) ** 2 + y**2 <= 3.0**2)
    return LabelMap.from_masks(masks, g)


def _plan(vessel: bool, zone_model: str = "both") -> tuple[LabelMap, Plan]:
    lm = liver_case(vessel)
    return lm, plan_ablation(lm, ["tumour_1"], modality="microwave", devices=["emprint"], n_directions=200,
                             n_paths=2, lattice_fraction=1.0, margin_mm=5.0, zone_model=zone_model)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def near():
    return _plan(True)


def test_emprint_in_homogeneous_liver_matches_the_table() -> None:
    probe = Probe(device="emprint", power_w=100, time_s=600, tip_lps=(5.0, 3.0, -2.0),
                  direction_lps=(1.0, 1.0, 0.3), centre_offset_mm=0.0)
    table = predict_zone(probe)
    z = physics_zone(probe, None, zone_centre_lps=table.centre_lps, table_zone=table)
    r = z.record
    assert r.criterion == "cem43" and r.threshold == 240.0 and "McDannold" in r.threshold_source
    assert abs(r.length_mm - 2 * table.semi_axes_mm[0]) <= 2.5  # calibration bar: within ~2-3 mm
    assert abs(r.width_mm - 2 * table.semi_axes_mm[1]) <= 2.5
    assert r.volume_ml == pytest.approx(table.volume_ml, rel=0.1)
    assert np.linalg.norm(np.subtract(r.centre_lps, table.centre_lps)) <= 1.5  # aligned on the planned centre
    tab = rasterise_zones([table], z.grid)
    assert 2 * (tab & z.mask).sum() / (tab.sum() + z.mask.sum()) > 0.95  # same shape, not just same axes
    assert r.tissue_model == "homogeneous liver" and not r.vessels and abs(r.volume_shrinkage_pct) < 3
    # at the planned tip instead: the model's own (uncalibrated) feed offset moves the zone back
    tip = physics_zone(probe, None, align="tip")
    assert tip.record.alignment == "tip"
    back = np.subtract(table.centre_lps, tip.record.centre_lps) @ np.asarray(probe.direction_lps)
    assert back == pytest.approx(tip.record.model_tip_to_centre_mm, abs=1.5)


def test_mask_encoding_roundtrip() -> None:
    m = np.random.default_rng(1).random((7, 9, 11)) > 0.6
    assert np.array_equal(decode_mask(encode_mask(m), m.shape), m)


def test_heat_sink_shrinks_physics_zone_and_coverage(near) -> None:
    lm, plan = near
    assert plan.zone_model == "both" and plan.physics is not None
    assert len(plan.physics.zones) == len(plan.probes) >= 1
    assert plan.targets[0].target_coverage_pct >= 99.0  # the table placement covers the target
    zv = plan.physics.zones[0]
    # the same probe in the same case without the vessel
    zh = physics_zone(plan.probes[0], liver_case(False), table_zone=plan.zones[0]).record
    assert zh.vessels == [] and zv.vessels == ["portal_vein"]
    assert abs(zh.volume_ml - zh.table_volume_ml) < 0.1 * zh.table_volume_ml  # type: ignore[operator]
    assert zv.volume_ml < zh.volume_ml * 0.95 and zv.volume_shrinkage_pct > 5.0
    assert any("heat sink" in n for n in zv.notes)
    o = plan.physics.targets[0]
    assert o.table_target_coverage_pct == plan.targets[0].target_coverage_pct  # headline stays the table's
    assert o.target_coverage_pct < o.table_target_coverage_pct  # heat sink: physics covers less
    assert o.min_margin_mm < o.table_min_margin_mm - 2.0
    assert any("physics" in w and "heat sink" in w for w in plan.warnings)
    # the physics zone travels through the JSON
    again = Plan.model_validate_json(plan.model_dump_json())
    m = again.physics_zone_mask(lm.grid, tumour="tumour_1")
    assert m.sum() * lm.grid.voxel_volume_mm3 / 1000 == pytest.approx(zv.volume_ml, rel=0.1)
    assert not (m & lm.mask("portal_vein")).any()  # the held lumen is not ablated


def test_report_shows_both_zones(near) -> None:
    from openir.report.plan_report import plan_report_html

    lm, plan = near
    text = plan_report_html(plan, lm)
    assert "Table zone vs physics zone" in text and "portal_vein" in text
    assert "target cov. % (physics)" in text and text.count("<img") >= 2


def test_unknown_or_uncalibrated_device_is_a_clear_error() -> None:
    for dev in ("neuwave_pr", "no_such_device"):
        probe = Probe(device=dev, power_w=65, time_s=600, tip_lps=(0, 0, 0), direction_lps=(0, 0, 1))
        with pytest.raises(InputError) as exc:
            physics_zone(probe, None)
        assert dev in str(exc.value) and "calibrated devices: emprint" in str(exc.value)
    with pytest.raises(InputError, match="zone_model"):
        plan_ablation(liver_case(False), ["tumour_1"], zone_model="exact")  # type: ignore[arg-type]


def test_cli_zone_model_physics(tmp_path, monkeypatch) -> None:
    io = pytest.importorskip("openir.io")
    import openir.plan.planner as planner
    from openir.cli import app

    fast = planner.plan_ablation  # a coarser candidate search keeps the test fast (placement is not under test)
    monkeypatch.setattr(planner, "plan_ablation", lambda *a, **k: fast(*a, **k, n_directions=200, n_paths=2,
                                                                      lattice_fraction=1.0))

    lm = liver_case(True)
    ct = Volume(np.where(lm.array > 0, 40, -1000).astype(np.int16), lm.affine)
    io.write_nifti(ct, tmp_path / "ct.nii.gz")
    io.write_nifti(lm, tmp_path / "labels.nii.gz")
    (tmp_path / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    args = ["plan", str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"), "--names",
            str(tmp_path / "names.json"), "--tumor", "tumour_1", "--device", "emprint", "--modality", "microwave",
            "--margin", "5"]
    bad = CliRunner().invoke(app, [*args, "--zone-model", "magic", "-o", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError) and "--zone-model" in str(bad.exception)
    r = CliRunner().invoke(app, [*args, "--zone-model", "physics", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["zone_model"] == "physics" and plan["physics"]["zones"][0]["vessels"] == ["portal_vein"]
    tp, o = plan["targets"][0], plan["physics"]["targets"][0]
    assert tp["target_coverage_pct"] == o["target_coverage_pct"] < o["table_target_coverage_pct"]
    assert tp["min_margin_mm"] == o["min_margin_mm"]
    assert any("placed with the catalogue's table zones" in n for n in tp["notes"])
    assert "physics zones (cem43)" in r.output
    assert "Table zone vs physics zone" in (tmp_path / "out" / "plan_report.html").read_text()


def test_uncalibrated_planned_device_warns_in_both_and_fails_in_physics() -> None:
    lm = liver_case(False)
    kw = dict(modality="cryo", n_directions=200, n_paths=2, lattice_fraction=1.0, margin_mm=5.0)
    plan = plan_ablation(lm, ["tumour_1"], zone_model="both", **kw)  # type: ignore[arg-type]
    assert plan.physics is not None and plan.physics.targets == [] and plan.probes
    assert any("no calibrated physics source" in w and "emprint" in w for w in plan.warnings)
    assert plan.targets[0].target_coverage_pct >= 99.0  # the table plan itself is intact
    with pytest.raises(InputError, match="no calibrated physics source"):
        plan_ablation(lm, ["tumour_1"], zone_model="physics", **kw)  # type: ignore[arg-type]
