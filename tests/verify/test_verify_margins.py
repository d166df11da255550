"""Minimal ablative margin on analytic cases (bar: within half the largest voxel of the exact value)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify_synth import ball, ellipsoid, grid_for

from openir.core import InputError
from openir.verify.margins import margin_analysis, signed_voxel_margin
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
    m = margin_analysis(t, z, g).report.min_margin_mm
    assert abs(m - exact) <= max(spacing) / 2, (m, exact)


def test_voxel_margin_on_crop_equals_whole_volume():
    g, t, z = _case((1.0, 1.0, 2.0), 8.0, 12.0, (2.0, 1.0, 0.0))
    a = margin_analysis(t, z, g, search_mm=10.0)
    whole = signed_voxel_margin(t, z, g.spacing[::-1])
    assert a.report.min_margin_voxel_mm == pytest.approx(round(float(whole.min()), 3))


def test_shell_coverage_and_far_zone_search_grows():
    g, t, z = _case((1.0, 1.0, 1.0), 6.0, 26.0, (0, 0, 0))
    a = margin_analysis(t, z, g, search_mm=5.0)  # margin 20 mm > search: range must grow
    assert abs(a.report.min_margin_mm - 20.0) <= 0.5 and not a.report.min_margin_is_bound
    assert a.report.tumour_plus_shell_covered_pct == 100.0


def test_capsule_rule_excludes_points_near_organ_boundary():
    g = grid_for(60.0, (1.0, 1.0, 1.0))
    c = np.array([30.0, 30.0, 30.0])
    t = ball(g, c, 8.0)
    z = ball(g, c + [-4.0, 0, 0], 10.0)  # thin (-2 mm) on the left
    organ = g.voxel_centres()[..., 0] < c[0] + 10.0  # capsule 2 mm beyond the left pole
    plain = margin_analysis(t, z, g, organ=organ)
    ruled = margin_analysis(t, z, g, organ=organ, capsule_rule=True, capsule_exclusion_mm=5.0)
    assert plain.report.min_margin_mm < -1.0
    assert ruled.report.excluded_surface_pct > 0
    assert ruled.report.min_margin_mm > plain.report.min_margin_mm


def test_empty_inputs_are_clear_errors():
    g, t, z = _case((1.0, 1.0, 1.0), 5.0, 8.0, (0, 0, 0))
    with pytest.raises(InputError, match="empty"):
        margin_analysis(np.zeros_like(t), z, g)
    with pytest.raises(InputError, match="ablation-zone"):
        margin_analysis(t, np.zeros_like(z), g)
