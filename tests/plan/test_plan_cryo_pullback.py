"""Cryo for long targets: the needle's freezing (active) length per device (NOT SOURCED for the Galil
needles, said in the plan) and one pull-back of the whole array (unsourced, conservative), stepped
by the freezing length less the overlap in configurations.yaml.

The zone dimensions come from an analytic stand-in of the physics model (as in test_plan_arrays):
along = freezing length + 8 mm, across = layout extent + 2 x 8 mm, so the expected answers follow
by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from openir.core import Grid, LabelMap, make_affine
from openir.physics import ArrayDims, canonical_layout
from openir.plan import arrays as arrays_mod
from openir.plan import load_catalogue, load_configurations
from openir.plan.devices import DeviceCatalogue, validate_catalogue
from openir.plan.placement import array_options, place_array
from openir.plan.target import TargetOverrides, build_target
from openir.plan.zones import rasterise_zones


def _fake_dims(modality, n_probes, spacing_mm, *, exposure_mm=None, active_length_mm=None, setting=None):
    lay = canonical_layout(n_probes, spacing_mm)
    ex, ey = float(np.ptp(lay[:, 0])), float(np.ptp(lay[:, 1]))
    length = (active_length_mm or 30.0) + 8.0
    a1, a2 = max(ex, ey) + 16.0, min(ex, ey) + 16.0
    return ArrayDims(along_mm=length, across1_mm=a1, across2_mm=a2, centre_offset_mm=length / 2 - 4.0,
                     volume_ml=math.pi / 6 * length * a1 * a2 / 1000, source="test")


@pytest.fixture()
def fake_physics(monkeypatch):
    import openir.physics as ph

    monkeypatch.setattr(ph, "array_zone_dimensions", _fake_dims)
    arrays_mod._array_zone_cached.cache_clear()
    yield
    arrays_mod._array_zone_cached.cache_clear()


def _long_liver(d_mm=18.0, stretch=2.0, n=70):
    grid = Grid((n, n, n), make_affine((2.0, 2.0, 2.0), (-n + 1.0, -n + 1.0, -n + 1.0)))
    p = grid.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    r = d_mm / 2
    masks = {"liver": x**2 + y**2 + z**2 <= 62**2, "fat": x**2 + y**2 + z**2 > 62**2,
             "tumour_1": (x / r) ** 2 + (y / r) ** 2 + (z / (stretch * r)) ** 2 <= 1}
    return LabelMap.from_masks(masks, grid)


def _place(cfg, catalogue=None):
    opts, notes = array_options(catalogue or load_catalogue(), "cryo", cfg)
    pt = build_target(_long_liver(), "tumour_1", organ="liver", organ_label="liver", pad_mm=80.0,
                      overrides=TargetOverrides(margin_mm=5.0))
    pl = place_array(pt, opts, [np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])], None, cfg,
                     required_coverage=0.99)
    return pt, opts, pl, notes


def test_cryo_limits_allow_one_pull_back_stepped_by_the_freezing_length_and_say_unsourced():
    cryo = load_configurations().modalities["cryo"]
    assert cryo.pullbacks.max == 1 and cryo.positions_per_tumour.max == 2
    assert {"pullbacks", "positions"} <= set(cryo.unsourced())
    assert cryo.pullback_step == "active_length" and cryo.pullback_overlap_mm == 10
    assert cryo.pullback_step_mm(None, 30.0) == pytest.approx(20.0)
    assert cryo.pullback_step_mm(15.0, None) == 0.0  # an IRE exposure is not a freezing length
    ire = load_configurations().modalities["ire"]
    assert ire.pullback_step_mm(20.0, 30.0) == pytest.approx(15.0)  # IRE unchanged: exposure - 5 mm


def test_long_target_gets_3_probes_and_a_pull_back_instead_of_more_probes(fake_physics):
    """Target 28 x 28 x 46 mm (tumour 18 x 18 x 36 + 5 mm). One position of 3 probes 15 mm apart is
    38 mm along (too short); drawn back by 30 - 10 = 20 mm the two zones span 58 mm."""
    cfg = load_configurations().modalities["cryo"]
    pt, opts, pl, _ = _place(cfg)
    assert pl.chosen, pl.notes
    o = opts[pl.chosen[0].option]
    assert o.n_probes == 3 and len(pl.chosen) == 2, (o.n_probes, len(pl.chosen), pl.notes)
    shift = pl.chosen[0].centre - pl.chosen[1].centre
    assert np.linalg.norm(shift) == pytest.approx(20.0)
    assert np.allclose(np.cross(shift, pl.chosen[0].direction), 0.0, atol=1e-6)  # along the shaft
    for a, b in zip(pl.chosen[0].tips, pl.chosen[1].tips, strict=True):  # same tracks, tips drawn back
        assert np.linalg.norm(np.asarray(a) - np.asarray(b)) == pytest.approx(20.0)
    zone = rasterise_zones([c.ellipsoid for c in pl.chosen], pt.grid)  # coverage counted independently
    assert (zone & pt.target).sum() >= math.ceil(0.99 * pt.target.sum())
    # without the pull-back the same target needs a longer zone than any one position gives
    one = cfg.model_copy(update={"pullbacks": None, "positions_per_tumour": cfg.positions_per_tumour.model_copy(
        update={"max": 1})})
    _, opts1, pl1, _ = _place(one)
    assert len(pl1.chosen) <= 1
    assert not pl1.chosen or pl1.covered < pl1.required


def test_a_sourced_freezing_length_of_the_device_lengthens_the_zone_and_is_said(fake_physics):
    cfg = load_configurations().modalities["cryo"]
    cat = load_catalogue()
    opts, notes = array_options(cat, "cryo", cfg)
    assert any("freezing (active) length 30 mm (the physics model's" in n and "NOT SOURCED" in n for n in notes)
    o30 = next(o for o in opts if o.n_probes == 3 and o.template.spacing_mm == 15)
    assert 2 * o30.semi_mm[0] == pytest.approx(38.0)
    data = cat.model_dump()
    for d in data["devices"]:
        if d["id"] == "icerod":
            d["active_length_mm"], d["active_length_source"] = 40.0, "test source"
    cat40 = DeviceCatalogue.model_validate(data)
    assert validate_catalogue(cat40) == []
    opts40, notes40 = array_options(cat40, "cryo", cfg)
    o40 = next(o for o in opts40 if o.n_probes == 3 and o.template.spacing_mm == 15)
    assert 2 * o40.semi_mm[0] == pytest.approx(48.0) and o40.template.active_length_mm == 40.0
    assert any("freezing (active) length 40 mm [test source]" in n for n in notes40)


def test_catalogue_refuses_a_freezing_length_without_source_or_on_a_non_cryo_device():
    data = load_catalogue().model_dump()
    for d in data["devices"]:
        if d["id"] == "icerod":
            d["active_length_mm"], d["active_length_source"] = 40.0, " "
        if d["id"] == "emprint":
            d["active_length_mm"], d["active_length_source"] = 30.0, "x"
    probs = validate_catalogue(DeviceCatalogue.model_validate(data))
    assert any("devices[icerod].active_length_source" in p for p in probs)
    assert any("devices[emprint].active_length_mm" in p and "microwave" in p for p in probs)
    for d in load_catalogue().devices:  # the shipped Galil needles say why they have none
        if d.id in ("icerod", "icesphere", "iceforce"):
            assert d.active_length_mm is None and d.active_length_source.startswith("NOT SOURCED")
