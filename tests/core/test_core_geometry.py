"""Core geometry: affines, world<->voxel transforms, crop and resample (property-based where it fits)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.core import (
    GeometryError,
    Grid,
    LabelMap,
    UnknownLabelError,
    Volume,
    bounding_box,
    crop,
    crop_to_mask,
    isotropic_grid,
    make_affine,
    pad_box,
    paste,
    resample,
    world_box,
)

spacings = st.tuples(*[st.floats(0.2, 5.0)] * 3)
origins = st.tuples(*[st.floats(-500, 500)] * 3)
angles = st.tuples(*[st.floats(-np.pi, np.pi)] * 3)


def rotation(a: float, b: float, c: float) -> np.ndarray:
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx


@settings(max_examples=60, deadline=None)
@given(spacings, origins, angles, st.lists(st.tuples(*[st.floats(-50, 50)] * 3), min_size=1, max_size=20))
def test_world_index_round_trip(spacing, origin, ang, pts):
    grid = Grid((5, 6, 7), make_affine(spacing, origin, rotation(*ang)))
    ijk = np.array(pts)
    back = grid.world_to_index(grid.index_to_world(ijk))
    np.testing.assert_allclose(back, ijk, atol=1e-6)
    np.testing.assert_allclose(grid.spacing, spacing, rtol=1e-9)
    np.testing.assert_allclose(grid.origin, origin, atol=1e-9)
    np.testing.assert_allclose(grid.direction @ grid.direction.T, np.eye(3), atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(spacings, origins, angles)
def test_voxel_step_is_spacing_along_direction(spacing, origin, ang):
    d = rotation(*ang)
    grid = Grid((4, 4, 4), make_affine(spacing, origin, d))
    p0 = grid.index_to_world([0, 0, 0])
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = 1
        np.testing.assert_allclose(grid.index_to_world(step) - p0, d[:, axis] * spacing[axis], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    spacings,
    st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)),
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
)
def test_crop_keeps_world_positions(spacing, start, size):
    grid = Grid((14, 13, 13), make_affine(spacing, (10, -20, 30)))  # start + size <= 13 fits
    arr = np.random.default_rng(0).integers(0, 1000, grid.shape).astype(np.int16)
    vol = Volume(arr, grid.affine)
    box = tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))
    sub = crop(vol, box)
    # the same voxel seen from both grids sits at the same LPS point and holds the same value
    kji = np.array(start) + np.array(size) - 1
    ijk_full = kji[::-1]
    ijk_sub = (np.array(size) - 1)[::-1]
    np.testing.assert_allclose(sub.index_to_world(ijk_sub), vol.index_to_world(ijk_full), atol=1e-9)
    assert sub.array[tuple(np.array(size) - 1)] == arr[tuple(kji)]
    np.testing.assert_array_equal(paste(vol.shape, box, sub.array)[box], arr[box])


def test_crop_to_mask_pads_in_mm_and_clips():
    grid = Grid((20, 30, 40), make_affine((0.5, 1.0, 2.0)))
    mask = np.zeros(grid.shape, bool)
    mask[10, 15, 20] = True
    _, box = crop_to_mask(Volume(mask.astype(np.uint8), grid.affine), mask, pad_mm=2.0)
    # 2 mm is 4 voxels along i (0.5 mm), 2 along j, 1 along k
    assert box == (slice(9, 12), slice(13, 18), slice(16, 25))
    big = pad_box(bounding_box(mask), grid, 1000.0)
    assert big == (slice(0, 20), slice(0, 30), slice(0, 40))
    with pytest.raises(GeometryError):
        bounding_box(np.zeros((3, 3, 3), bool))


def test_world_box_around_point():
    grid = Grid((50, 50, 50), make_affine((1.0, 1.0, 2.0), (-25, -25, -50)))
    box = world_box(grid, (0, 0, 0), 20.0)
    sizes = [s.stop - s.start for s in box]
    assert sizes == [10, 20, 20] or sizes == [11, 21, 21]
    with pytest.raises(GeometryError):
        world_box(grid, (1000, 0, 0), 10.0)


def sphere_volume(grid: Grid, centre, radius) -> np.ndarray:
    pts = grid.voxel_centres()
    return (np.linalg.norm(pts - np.asarray(centre), axis=-1) <= radius).astype(np.float32)


def test_linear_resample_reproduces_a_linear_field():
    """Linear interpolation is exact for a linear function of position, on any rotated target grid."""
    src = Grid((40, 40, 40), make_affine((1.0, 1.0, 1.0), (-20, -20, -20)))
    pts = src.voxel_centres()
    field = 2.0 * pts[..., 0] - 0.5 * pts[..., 1] + 0.25 * pts[..., 2] + 7
    vol = Volume(field.astype(np.float64), src.affine)
    dst = Grid((10, 12, 14), make_affine((1.3, 0.9, 1.7), (-8, -7, -9), rotation(0.3, -0.2, 0.5)))
    out = resample(vol, dst)
    p = dst.voxel_centres()
    expected = 2.0 * p[..., 0] - 0.5 * p[..., 1] + 0.25 * p[..., 2] + 7
    np.testing.assert_allclose(out.array, expected, atol=1e-6)


def test_nearest_resample_keeps_labels_and_volume():
    src = Grid((60, 60, 60), make_affine((0.5, 0.5, 0.5), (-15, -15, -15)))
    ball = sphere_volume(src, (0, 0, 0), 10.0) > 0
    lm = LabelMap(ball.astype(np.uint8) * 3, src.affine, labels={3: "tumour_1"})
    dst = isotropic_grid(src, 1.0)
    out = resample(lm, dst)
    assert isinstance(out, LabelMap) and out.labels == {3: "tumour_1"}
    assert set(np.unique(out.array)) <= {0, 3}
    vol_ml = out.volumes_ml()["tumour_1"]
    assert abs(vol_ml - 4 / 3 * np.pi * 10**3 / 1000) / (4 / 3 * np.pi) < 0.05
    with pytest.raises(ValueError):
        resample(lm, dst, interpolation="linear")


def test_isotropic_grid_keeps_field_of_view():
    g = Grid((30, 100, 100), make_affine((0.8, 0.8, 3.0), (5, 6, 7)))
    iso = isotropic_grid(g, 2.0)
    np.testing.assert_allclose(iso.extent_mm, g.extent_mm, atol=2.0)
    corner = g.origin - g.spacing / 2
    np.testing.assert_allclose(iso.origin - 1.0, corner, atol=1e-9)


def test_label_lookup_is_forgiving_but_exact():
    g = Grid((2, 2, 2), np.eye(4))
    lm = LabelMap(np.array([[[0, 1], [2, 5]], [[5, 5], [0, 1]]], np.uint8), g.affine,
                  labels={1: "liver", 2: "Portal Vein", 5: "tumour_1"})
    assert lm.value_of("portal vein") == 2 and lm.value_of("PORTAL-VEIN") == 2 and lm.value_of(5) == 5
    assert lm.mask("liver", "tumour_1").sum() == 5
    assert lm.find("tumour") == ["tumour_1"]
    with pytest.raises(UnknownLabelError, match="available labels: liver, Portal Vein, tumour_1"):
        lm.mask("kidney")
    with pytest.raises(GeometryError, match="unique"):
        LabelMap(lm.array, g.affine, labels={1: "liver", 2: "Liver"})
    with pytest.raises(GeometryError):
        LabelMap(np.zeros((2, 2, 2), np.float32), g.affine)


def test_bad_geometry_is_refused():
    with pytest.raises(GeometryError):
        make_affine((1.0, 0.0, 1.0))
    with pytest.raises(GeometryError):
        Volume(np.zeros((3, 3)), np.eye(4))
    with pytest.raises(GeometryError):
        Grid((3, 3, 3), np.zeros((4, 4)))


def test_value_at_outside_is_nan():
    g = Grid((3, 3, 3), make_affine((1, 1, 1)))
    v = Volume(np.arange(27, dtype=np.int16).reshape(3, 3, 3), g.affine)
    out = v.value_at([[0, 0, 0], [2, 1, 0], [10, 0, 0]])
    assert out[0] == 0 and out[1] == 5 and np.isnan(out[2])
