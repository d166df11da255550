"""Zone model: placement, rasterisation volume, union, mesh and heat sink."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.core import Grid, LabelMap, make_affine
from openir.core.errors import InputError
from openir.plan import Probe, heat_sink_check, predict_zone, rasterise_zones, zone_mesh
from openir.plan.zones import ellipsoid_from, local_diameter_mm


def _emprint(direction=(0.3, -0.2, 1.0), tip=(1.0, 2.0, 3.0), offset=8.0):
    return Probe(device="emprint", power_w=100, time_s=600, tip_lps=tip, direction_lps=direction,
                 centre_offset_mm=offset)


def test_emprint_raster_volume_within_3_percent_at_half_mm():
    z = predict_zone(_emprint())
    g = Grid((120, 120, 120), make_affine((0.5, 0.5, 0.5), (-29, -28, -32)))
    vol = rasterise_zones([z], g).sum() * 0.125 / 1000
    assert vol == pytest.approx(z.volume_ml, rel=0.03)
    assert z.volume_ml == pytest.approx(28.5, rel=0.02)


def test_zone_centre_lies_back_from_the_tip_along_the_shaft():
    p = _emprint(direction=(0, 0, 1), tip=(0, 0, 0), offset=8)
    z = predict_zone(p)
    assert np.allclose(z.centre_lps, (0, 0, -8))
    assert np.allclose(z.axes_lps[0], (0, 0, 1))
    assert z.semi_axes_mm[0] == pytest.approx(21.0)


def test_missing_offset_is_not_guessed():
    p = _emprint().model_copy(update={"centre_offset_mm": None})
    with pytest.raises(InputError, match="centre_offset_mm"):
        predict_zone(p)


def test_union_of_two_probes_is_the_union_of_masks():
    g = Grid((60, 60, 80), make_affine((1, 1, 1), (-40, -30, -30)))
    a = ellipsoid_from((-10, 0, 0), (0, 0, 1), (15, 8, 8))
    b = ellipsoid_from((10, 0, 0), (0, 0, 1), (15, 8, 8))
    both = rasterise_zones([a, b], g)
    assert (both == (rasterise_zones([a], g) | rasterise_zones([b], g))).all()


@settings(max_examples=25, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1), st.floats(0.1, 1), st.floats(5, 25), st.floats(3, 20))
def test_mesh_vertices_lie_on_the_ellipsoid(dx, dy, dz, a, b):
    e = ellipsoid_from((1, 2, 3), (dx, dy, dz), (a, b, 0.7 * b + 1))
    v, f = zone_mesh(e)
    local = (v - np.asarray(e.centre_lps)) @ e.rotation()
    q = ((local / np.asarray(e.semi_axes_mm)) ** 2).sum(axis=1)
    assert np.allclose(q, 1.0, atol=1e-9)
    assert f.max() == len(v) - 1 and f.min() == 0


def _vessel_case(radius_mm):
    g = Grid((50, 70, 70), make_affine((0.5, 0.5, 0.5), (-17.25, -17.25, -12.25)))
    p = g.voxel_centres()
    ves = (p[..., 0] - 5.0) ** 2 + p[..., 1] ** 2 <= radius_mm**2  # along z, 5 mm from the axis
    return LabelMap.from_masks({"liver": np.ones(g.shape, bool) & ~ves, "portal_vein": ves}, g)


def test_local_diameter_estimates_a_cylinder():
    lm = _vessel_case(2.5)
    d = local_diameter_mm(lm.mask("portal_vein"), lm.spacing[::-1])
    assert d[lm.mask("portal_vein")].max() == pytest.approx(5.0, abs=0.6)


def test_heat_sink_flags_large_vessels_and_clips_rf():
    zone = ellipsoid_from((0, 0, 0), (0, 0, 1), (12, 10, 10), thermal=True, modality="radiofrequency",
                          device="rf")
    big, _ = heat_sink_check(zone, _vessel_case(2.5), ["portal_vein"])
    assert big.flagged and big.vessels[0].diameter_mm >= 3.0
    rep, clipped = heat_sink_check(zone, _vessel_case(2.5), ["portal_vein"])
    assert rep.clipped_voxels > 0 and clipped is not None
    lm = _vessel_case(2.5)
    full = rasterise_zones([zone], lm.grid)
    p = lm.grid.voxel_centres()
    beyond = full & (p[..., 0] > 8.0) & (np.abs(p[..., 1]) < 1.0)  # shadow behind the vessel
    assert beyond.any() and not (clipped & beyond).any()
    assert (clipped & (p[..., 0] < 2.0)).sum() == (full & (p[..., 0] < 2.0)).sum()
    small, _ = heat_sink_check(zone, _vessel_case(1.0), ["portal_vein"])
    assert not small.flagged
    mw = zone.model_copy(update={"modality": "microwave"})
    rep_mw, mask_mw = heat_sink_check(mw, _vessel_case(2.5), ["portal_vein"])
    assert rep_mw.flagged and mask_mw is None
    cryo = zone.model_copy(update={"thermal": False, "modality": "cryo"})
    assert not heat_sink_check(cryo, _vessel_case(2.5), ["portal_vein"])[0].flagged
