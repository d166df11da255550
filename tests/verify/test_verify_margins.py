"""Minimal ablative margin on analytic cases (bar: within half the largest voxel of the exact value)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify_synth import ball, ellipsoid, grid_for

from openir.core import Grid, InputError, make_affine
from openir.phantom.margin_shapes import Lobulated, Pointed, Scene, Sphere
from openir.verify.margins import MarginOptions, margin_analysis, signed_voxel_margin
from openir.verify.meshdist import point_mesh_distance

ANISO = (0.7, 0.7, 2.5)


def _case(spacing, r, R, offset, jitter=(0.3, -0.2, 0.4)):
    extent = 2 * (R + np.linalg.norm(offset) + 6)
    g = grid_for(extent, spacing)
    c = np.full(3, extent / 2) + np.asarray(jitter)
    return g, ball(g, c, r), ball(g, c + np.asarray(offset), R)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISO, (1.5, 1.5, 1.5)])
def test_sphere_in_sphere(spacing):
    g, t, z = _case(spacing, 10.0, 16.0, (0, 0, 0))
    a = margin_analysis(t, z, g)
    assert abs(a.report.min_margin_mm - 6.0) <= max(spacing) / 2
    assert a.report.verdict.complete and a.report.verdict.margin_class == ">=5 mm"
    assert a.report.tumour_covered_pct == 100.0 and a.report.residual.volume_ml == 0.0


def test_offset_spheres_with_miss_locates_residual():
    # zone shifted 8 mm towards patient right (-x in LPS): tumour sticks out on the left
    g, t, z = _case(ANISO, 10.0, 12.0, (-8.0, 0, 0))
    a = margin_analysis(t, z, g)
    r = a.report
    assert abs(r.min_margin_mm - (12.0 - 18.0)) <= max(ANISO) / 2
    assert not r.verdict.complete and r.verdict.term == "incomplete ablation"
    assert r.verdict.margin_class.startswith("negative")
    assert r.residual.volume_ml > 0 and r.residual.direction.startswith("left")
    assert r.surface_pct_by_class["<0"] > 0
    # the worst point is on the left (+x) pole of the tumour
    assert r.min_margin_location_lps[0] > a.vertices_lps[:, 0].mean() + 8


def _ellipsoid_reference(t_axes, z_axes, z_offset):
    """Exact-to-0.01-mm margin: fine parametric tumour points against a fine zone mesh."""
    u, v = np.meshgrid(np.linspace(0, np.pi, 120), np.linspace(0, 2 * np.pi, 240), indexing="ij")
    unit = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1)
    zp = (unit * np.asarray(z_axes)).reshape(-1, 3) + np.asarray(z_offset)
    n_u, n_v = u.shape
    idx = np.arange(n_u * n_v).reshape(n_u, n_v)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    tp = (unit[::2, ::2] * np.asarray(t_axes)).reshape(-1, 3)
    dist, _ = point_mesh_distance(tp, zp, faces, k=12)
    inside = ((((tp - np.asarray(z_offset)) / np.asarray(z_axes)) ** 2).sum(-1) <= 1)
    return float(np.where(inside, dist, -dist).min())


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISO])
def test_ellipsoid_in_ellipsoid(spacing):
    t_axes, z_axes, off = (12.0, 8.0, 7.0), (18.0, 13.0, 11.0), (1.5, -1.0, 0.0)
    exact = _ellipsoid_reference(t_axes, z_axes, off)
    g = grid_for(44.0, spacing)
    c = np.full(3, 22.0) + 0.2
    a = margin_analysis(ellipsoid(g, c, t_axes), ellipsoid(g, c + np.asarray(off), z_axes), g)
    assert abs(a.report.min_margin_mm - exact) <= max(spacing) / 2, (a.report.min_margin_mm, exact)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=st.floats(6.0, 14.0),
    gap=st.floats(-4.0, 9.0),
    off=st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3)),
    spacing=st.sampled_from([(1.0, 1.0, 1.0), ANISO, (0.8, 0.8, 1.5), (1.2, 1.2, 1.2)]),
    jitter=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
)
def test_offset_spheres_property(r, gap, off, spacing, jitter):
    R = r + gap + float(np.linalg.norm(off))
    g, t, z = _case(spacing, r, R, off, jitter)
    exact = R - (np.linalg.norm(off) + r)
    r = margin_analysis(t, z, g).report
    m, h = r.min_margin_mm, max(spacing)
    assert m <= exact + h / 2, (m, exact)  # never optimistic by more than half a voxel
    # a resolved margin errs small by at most one voxel: two sampled surfaces each place their edge
    # within half a voxel, and the minimum over the mesh picks the unlucky phase (0.8 x 0.8 x 1.5 mm
    # concentric spheres: -0.8 to -0.9 mm; 0.7 x 0.7 x 2.5 mm: down to -0.7 voxel; RESULTS.md issue 16)
    assert m >= exact - h or not r.margin_resolved, (m, exact)


def test_voxel_margin_on_crop_equals_whole_volume():
    g, t, z = _case((1.0, 1.0, 2.0), 8.0, 12.0, (2.0, 1.0, 0.0))
    a = margin_analysis(t, z, g, options=MarginOptions(search_mm=10.0))
    whole = signed_voxel_margin(t, z, g.spacing[::-1])
    assert a.report.min_margin_voxel_mm == pytest.approx(round(float(whole.min()), 3))


def test_shell_coverage_and_far_zone_search_grows():
    g, t, z = _case((1.0, 1.0, 1.0), 6.0, 26.0, (0, 0, 0))
    a = margin_analysis(t, z, g, options=MarginOptions(search_mm=5.0))  # margin 20 mm > search: range must grow
    assert abs(a.report.min_margin_mm - 20.0) <= 0.5 and not a.report.min_margin_is_bound
    assert a.report.tumour_plus_shell_covered_pct == 100.0


def test_capsule_rule_needs_no_margin_beyond_the_capsule():
    g = grid_for(60.0, (1.0, 1.0, 1.0))
    c = np.array([30.0, 30.0, 30.0])
    t = ball(g, c, 8.0)
    organ = g.voxel_centres()[..., 0] < c[0] + 10.0  # capsule 2 mm beyond the left (+x) pole
    zone = ball(g, c, 14.0) & organ  # the zone stops at the capsule, as a segmentation does
    plain = margin_analysis(t, zone, g, organ=organ)
    ruled = margin_analysis(t, zone, g, organ=organ, options=MarginOptions(capsule_rule=True))
    assert abs(plain.report.min_margin_mm - 2.0) <= 0.5  # towards the capsule
    # left out up to the exclusion distance (5 mm), beyond it the capsule itself is 5 mm away
    # (the zone edge where capsule and sphere meet is rounded by anti-aliasing: up to a voxel less)
    assert ruled.report.excluded_surface_pct > 0 and ruled.report.min_margin_mm >= 4.0
    # a zone that stops short of the capsule keeps those points: the rule never hides a thin margin
    short = ball(g, c - [3.0, 0, 0], 12.0) & organ  # reaches x = c + 9, capsule at c + 10
    r = margin_analysis(t, short, g, organ=organ, options=MarginOptions(capsule_rule=True)).report
    assert abs(r.min_margin_mm - 1.0) <= 0.5


def test_vessel_rule_and_tumour_outside_the_zone_always_counts():
    g = grid_for(60.0, (1.0, 1.0, 1.0))
    c = np.array([30.0, 30.0, 30.0])
    t = ball(g, c, 8.0)
    p = g.voxel_centres()
    vessel = np.linalg.norm(p[..., 1:] - [30.0, 30.0], axis=-1) <= 3.0
    vessel &= p[..., 0] > c[0] + 10.0  # a vessel end-on, 2 mm from the left pole
    zone = ball(g, c, 14.0) & ~vessel
    r = margin_analysis(t, zone, g, vessels=vessel, options=MarginOptions(vessel_rule=True)).report
    assert r.vessel_rule and r.excluded_surface_pct > 0 and r.min_margin_mm > 4.0
    miss = ball(g, c + [3.0, 0, 0], 9.0) & ~vessel  # tumour sticks out on the right, away from the vessel
    r = margin_analysis(t, miss, g, vessels=vessel, options=MarginOptions(vessel_rule=True)).report
    assert r.min_margin_mm < -1.0 and not r.verdict.complete


def _scene_grid(scene, spacing):
    c = np.asarray(scene.zone_centre)
    n = np.ceil(2 * (scene.zone_radius + 8.0) / np.asarray(spacing)).astype(int)
    origin = c - scene.zone_radius - 8.0
    return Grid((int(n[2]), int(n[1]), int(n[0])), make_affine(spacing, tuple(origin)))


def _pointed(jit):
    c = np.asarray(jit, float)
    return Scene(Pointed(tuple(c), 7.0, tuple(c + [0, 0, 14.0])), tuple(c + [0, 0, 1.0]), 16.0)  # exact 3 mm


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISO, (0.7, 0.7, 5.0)])
@pytest.mark.parametrize("jit", [(0.0, 0.0, 0.0), (0.31, 0.17, 0.9)])
def test_pointed_tumour_is_never_optimistic(spacing, jit):
    s = _pointed(jit)
    g = _scene_grid(s, spacing)
    r = margin_analysis(s.tumour_mask(g), s.zone_mask(g), g).report
    h = max(spacing)
    assert r.min_margin_mm <= s.exact_margin_mm + h / 2, r
    assert abs(r.min_margin_mm - s.exact_margin_mm) <= h / 2 or not r.margin_resolved
    assert r.min_margin_conservative_mm <= s.exact_margin_mm + 0.2
    if not r.margin_resolved:
        assert "unresolved" in r.resolution_note and r.min_margin_mm == r.min_margin_conservative_mm


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISO])
def test_lobulated_tumour_within_half_a_voxel(spacing):
    c = np.array([0.4, -0.3, 0.7])
    lobes = (Sphere(tuple(c), 7.0), Sphere(tuple(c + [6, 2, 3.0]), 5.0), Sphere(tuple(c + [-4, -5, -2.5]), 4.5))
    s = Scene(Lobulated(lobes), tuple(c + [0.5, 0, 0]), 4.0 + float(np.linalg.norm([5.5, 2, 3])) + 5.0)
    g = _scene_grid(s, spacing)
    r = margin_analysis(s.tumour_mask(g), s.zone_mask(g), g).report
    assert r.min_margin_mm <= s.exact_margin_mm + max(spacing) / 2
    assert abs(r.min_margin_mm - s.exact_margin_mm) <= max(spacing) / 2 or not r.margin_resolved


def test_thick_slices_are_reported_unresolved_and_conservative():
    s = Scene(Sphere((0.3, 0.2, 1.1), 7.5), (0.3, 0.2, 1.1), 12.5)  # 1.5 cm tumour, 5 mm margin
    g = _scene_grid(s, (0.7, 0.7, 5.0))
    r = margin_analysis(s.tumour_mask(g), s.zone_mask(g), g).report
    assert not r.margin_resolved and "cannot" in r.resolution_note
    assert r.min_margin_mm <= 5.0 and abs(r.min_margin_estimate_mm - 5.0) <= 2.5


def test_residual_cap_is_one_piece_and_two_caps_are_two():
    g = grid_for(60.0, ANISO)
    c = np.full(3, 30.0) + [0.2, 0.1, 0.3]
    t = ellipsoid(g, c, (14.0, 7.0, 7.0))
    one = margin_analysis(t, ball(g, c + [-5.0, 0, 0], 14.0), g).report
    assert one.residual.n_components == 1 and one.residual.direction.startswith("left")
    two = margin_analysis(t, ball(g, c, 11.0), g).report  # both ends of the long axis stick out
    assert two.residual.n_components == 2


def test_empty_inputs_are_clear_errors():
    g, t, z = _case((1.0, 1.0, 1.0), 5.0, 8.0, (0, 0, 0))
    with pytest.raises(InputError, match="empty"):
        margin_analysis(np.zeros_like(t), z, g)
    with pytest.raises(InputError, match="ablation-zone"):
        margin_analysis(t, np.zeros_like(z), g)
