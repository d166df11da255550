"""Probe configurations as practised: limits file, array templates, whole-array placement (cryo,
IRE with pull-backs), modality trade-off, and bad input refused before anything is written.

The array zone dimensions come from the physics model (`openir.physics.array_zone_dimensions`,
validated in tests/physics); here a simple analytic stand-in with the same interface keeps the
placement tests fast and their expected answers computable by hand.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from openir.core import Grid, LabelMap, Volume, make_affine
from openir.core.errors import InputError
from openir.physics import ArrayDims, canonical_layout
from openir.plan import PlanOptions, load_catalogue, load_configurations
from openir.plan import arrays as arrays_mod
from openir.plan.placement import array_options, place_array
from openir.plan.planner import plan_ablation, weigh_modalities
from openir.plan.rules import load_modality_rules
from openir.plan.target import TargetOverrides, build_target
from openir.plan.zones import rasterise_zones


def _fake_dims(modality, n_probes, spacing_mm, *, exposure_mm=None, active_length_mm=None, setting=None):
    """Zone = the layout's extent plus a fixed rim (cryo 8 mm, IRE 6 mm); along = active length + 8."""
    lay = canonical_layout(n_probes, spacing_mm)
    ex, ey = float(np.ptp(lay[:, 0])), float(np.ptp(lay[:, 1]))
    rim = 8.0 if modality == "cryo" else 6.0
    length = (30.0 if modality == "cryo" else (exposure_mm or 20.0)) + 8.0
    a1, a2 = max(ex, ey) + 2 * rim, min(ex, ey) + 2 * rim
    return ArrayDims(along_mm=length, across1_mm=a1, across2_mm=a2, centre_offset_mm=length / 2 - 4.0,
                     volume_ml=math.pi / 6 * length * a1 * a2 / 1000, source="test")


@pytest.fixture()
def fake_physics(monkeypatch):
    import openir.physics as ph

    monkeypatch.setattr(ph, "array_zone_dimensions", _fake_dims)
    arrays_mod._array_zone_cached.cache_clear()
    yield
    arrays_mod._array_zone_cached.cache_clear()


def _liver(d_mm=24.0, n=60, spare_at=None, shape="sphere"):
    grid = Grid((n, n, n), make_affine((2.0, 2.0, 2.0), (-n + 1.0, -n + 1.0, -n + 1.0)))
    p = grid.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    masks = {"liver": x**2 + y**2 + z**2 <= 50**2, "fat": x**2 + y**2 + z**2 > 50**2}
    if spare_at is not None:
        masks["gallbladder"] = (x - spare_at) ** 2 + y**2 + z**2 <= 49
    r = d_mm / 2
    masks["tumour_1"] = ((x / r) ** 2 + (y / r) ** 2 + (z / (1.8 * r if shape == "long" else r)) ** 2 <= 1)
    return LabelMap.from_masks(masks, grid)


def test_limits_file_has_a_source_for_every_limit_and_marks_the_unsourced():
    cfg = load_configurations()
    for mod, m in cfg.modalities.items():
        assert m.probes_source.strip(), mod
        for name in ("spacing", "exposure", "pullbacks"):
            if getattr(m, f"{name}_mm", None) is not None or getattr(m, name, None) is not None:
                assert (getattr(m, f"{name}_source") or "").strip(), (mod, name)
    ire, cryo = cfg.modalities["ire"], cfg.modalities["cryo"]
    assert (ire.probes.min, ire.probes.max) == (2, 6) and ire.spacing_mm.values() == [15, 20, 25]
    assert cryo.spacing_mm.min == 10 and cryo.spacing_mm.max == 20
    assert "pullbacks" in ire.unsourced()  # no publication gives a maximum: said so, kept low
    assert cfg.session.max_probe_insertions_source.startswith("unsourced")
    assert {a.id for a in cfg.alternatives} >= {"other_modality", "staged", "tace"}


def test_array_templates_use_the_physics_layout_and_zone(fake_physics):
    cfg = load_configurations().modalities["ire"]
    opts, notes = array_options(load_catalogue(), "ire", cfg)
    assert opts and all(2 <= o.n_probes <= 6 for o in opts)
    assert [o.n_probes for o in opts] == sorted(o.n_probes for o in opts)
    assert any("not unions of single-probe zones" in n for n in notes)
    o = next(o for o in opts if o.n_probes == 2 and o.template.spacing_mm == 20 and o.template.exposure_mm == 20)
    assert o.semi_mm == pytest.approx((14.0, 16.0, 6.0))  # (28, 32, 12) mm from the model, halved
    lay = o.offsets()
    assert np.linalg.norm(lay[0] - lay[1]) == pytest.approx(20.0)


def _place(lm, modality, **kw):
    cfgs = load_configurations()
    cfg = cfgs.modalities[modality]
    opts, _ = array_options(load_catalogue(), modality, cfg)
    pad = 2 * max(max(o.semi_mm) for o in opts) + 30
    pt = build_target(lm, "tumour_1", organ="liver", organ_label="liver", pad_mm=pad,
                      overrides=TargetOverrides(margin_mm=kw.pop("margin", 5.0)))
    pl = place_array(pt, opts, [np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])], None, cfg,
                     required_coverage=0.99)
    return pt, opts, pl


def _zone(pt, pl):
    return rasterise_zones([c.ellipsoid for c in pl.chosen], pt.grid)


def test_cryo_array_for_a_2_5_cm_tumour_uses_the_fewest_probes_that_cover(fake_physics):
    pt, opts, pl = _place(_liver(24.0), "cryo")
    n = opts[pl.chosen[0].option].n_probes
    assert 2 <= n <= 4 and len(pl.chosen) == 1
    zone = _zone(pt, pl)  # independent check: rasterise the chosen ellipsoid and count
    assert (zone & pt.target).sum() >= math.ceil(0.99 * pt.target.sum())
    # brute force over the templates with fewer probes: none of their zones is as large as the target
    target_d = 24.0 + 10.0
    for o in opts:
        if o.n_probes < n:
            assert min(2 * o.semi_mm[1], 2 * o.semi_mm[2], 2 * o.semi_mm[0]) < 0.9 * target_d or o.volume_ml < 0.5
    tips = pl.chosen[0].tips
    assert len(tips) == n
    d = np.diff(np.array([t @ pl.chosen[0].direction for t in tips]))
    assert np.allclose(d, 0.0, atol=1e-6)  # parallel probes, tips in one plane


def test_ire_array_pulls_back_for_a_long_tumour_and_stays_within_limits(fake_physics):
    pt, opts, pl = _place(_liver(22.0, shape="long"), "ire")
    cfg = load_configurations().modalities["ire"]
    assert pl.chosen
    o = opts[pl.chosen[0].option]
    assert 3 <= o.n_probes <= cfg.probes.max and len(pl.chosen) <= cfg.positions_per_tumour.max
    if len(pl.chosen) > 1:  # pull-backs: same tracks, shifted by the exposure along the shaft
        shift = pl.chosen[0].centre - pl.chosen[1].centre
        assert np.linalg.norm(shift) == pytest.approx(cfg.pullback_step_mm(o.template.exposure_mm))
        assert np.allclose(np.cross(shift, pl.chosen[0].direction), 0.0, atol=1e-6)
    zone = _zone(pt, pl)
    assert (zone & pt.target).sum() >= math.ceil(0.99 * pt.target.sum())


def test_array_never_touches_must_spare_and_says_what_blocks(fake_physics):
    pt, opts, pl = _place(_liver(24.0, spare_at=22.0), "cryo")
    zone = _zone(pt, pl)
    assert not (zone & pt.must_spare).any()
    if pl.covered < math.ceil(0.99 * pl.n_target):
        assert pl.blocked and any("full coverage impossible within the configuration limits" in n for n in pl.notes)


def test_too_large_for_the_limits_shows_best_coverage_and_alternatives(fake_physics):
    from openir.phantom import TumourSpec, make_abdomen

    p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=50.0),), spacing_mm=(2.0, 2.0, 2.0))
    plan = plan_ablation(p.labels, [p.tumours[0].name], modality="cryo", n_directions=500, n_paths=3)
    t = plan.targets[0]
    cfg = load_configurations().modalities["cryo"]
    assert t.n_probes <= cfg.probes.max and t.within_limits
    assert not t.full_coverage and 0 < t.target_coverage_pct < 99
    assert any("TACE" in a for a in t.alternatives) and any("staged" in a for a in t.alternatives)
    assert any("within the configuration limits" in w for w in plan.warnings)


def _attempt(mod, cov, n_probes, full):
    return SimpleNamespace(modality=mod, full_coverage=full, n_probes=n_probes, heat=[], evidence="clinical",
                           outcome=SimpleNamespace(target_pct=cov, touched={}), placement=SimpleNamespace(chosen=[1]),
                           configuration=f"{n_probes} probes")


def test_one_point_of_coverage_never_buys_a_16_probe_plan():
    rules = load_modality_rules()
    rec = SimpleNamespace(ranking=[SimpleNamespace(modality="microwave", score=2.0),
                                   SimpleNamespace(modality="cryo", score=2.0)])
    for cov, full_many in ((98.5, True), (97.0, False)):
        few = _attempt("microwave", cov, 1, False)
        many = _attempt("cryo", cov + 1.0, 16, full_many)
        opts, chosen = weigh_modalities([few, many], rec, rules, "liver")  # type: ignore[arg-type]
        assert chosen is few, opts
        assert opts[0].chosen and opts[0].reasons
    # a large coverage gain does win
    opts, chosen = weigh_modalities([_attempt("microwave", 80.0, 1, False), _attempt("cryo", 99.5, 3, True)],
                                    rec, rules, "liver")  # type: ignore[arg-type]
    assert chosen.modality == "cryo"


@pytest.mark.parametrize("kw, field", [
    ({"devices": ["no_such_probe"]}, "device"),
    ({"margin_mm": -2.0}, "margin_mm"),
    ({"plan_voxel_mm": 0.0}, "plan_voxel_mm"),
    ({"modality": "cryo", "devices": ["emprint"]}, "device"),
])
def test_bad_input_is_one_clear_error(kw, field):
    lm = _liver(20.0, n=30)
    with pytest.raises(InputError) as exc:
        plan_ablation(lm, ["tumour_1"], **kw)
    assert exc.value.field == field and "\n" not in str(exc.value)


def test_zero_voxel_size_is_refused():
    lm = _liver(20.0, n=30)
    from openir.core.errors import GeometryError

    with pytest.raises((InputError, GeometryError), match="spacing|voxel size") as exc:  # core refuses it first
        bad = LabelMap(lm.array, make_affine((2.0, 0.0, 2.0), (0.0, 0.0, 0.0)), {}, dict(lm.labels))
        plan_ablation(bad, ["tumour_1"], n_directions=100)
    assert exc.value.exit_code == 2
    with pytest.raises(InputError, match="unknown plan option"):
        PlanOptions.build(max_probs=3)


@pytest.mark.parametrize("args", [["--device", "no_such_probe"], ["--margin", "-1"], ["--plan-voxel", "0"],
                                  ["--modality", "ire", "--device", "emprint"]])
def test_cli_bad_input_exit_2_and_nothing_written(tmp_path, args):
    from typer.testing import CliRunner

    from openir import io
    from openir.cli import app

    lm = _liver(16.0, n=24)
    ct = Volume(np.where(lm.array > 0, 40, -1000).astype(np.int16), lm.affine)
    io.write_nifti(ct, tmp_path / "ct.nii.gz")
    io.write_nifti(lm, tmp_path / "labels.nii.gz")
    (tmp_path / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["plan", str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"),
                                 "--names", str(tmp_path / "names.json"), "--tumor", "tumour_1", "-o", str(out),
                                 *args])
    # `openir` (cli.main) prints the error's one line and exits with its code: 2 for bad input
    assert isinstance(r.exception, InputError) and r.exception.exit_code == 2, r.output
    assert "\n" not in str(r.exception)
    assert not (out / "plan.json").exists()
