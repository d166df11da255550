"""Analytic shapes on voxel grids for the verify tests (masks sampled at voxel centres)."""

from __future__ import annotations

import numpy as np

from openir.core import Grid, make_affine


def grid_for(extent_mm: float, spacing: tuple[float, float, float], origin=(0.0, 0.0, 0.0)) -> Grid:
    n_ijk = [int(np.ceil(extent_mm / s)) for s in spacing]
    return Grid((n_ijk[2], n_ijk[1], n_ijk[0]), make_affine(spacing, origin))


def centres(grid: Grid) -> np.ndarray:
    return grid.voxel_centres()


def ellipsoid(grid: Grid, centre, semi_axes) -> np.ndarray:
    p = centres(grid) - np.asarray(centre, float)
    return ((p / np.asarray(semi_axes, float)) ** 2).sum(-1) <= 1.0


def ball(grid: Grid, centre, r: float) -> np.ndarray:
    return ellipsoid(grid, centre, (r, r, r))


def abdomen_like(grid: Grid, tumour_centre, tumour_r: float, seed: int = 0):
    """A textured 'organ' image with vessels and a tumour, plus organ and tumour masks."""
    rng = np.random.default_rng(seed)
    p = centres(grid)
    ext = np.asarray(grid.extent_mm)
    mid = grid.origin + (np.array(grid.shape_ijk) - 1) / 2.0 * grid.spacing
    organ = (((p - mid) / (ext * np.array([0.36, 0.33, 0.38]))) ** 2).sum(-1) <= 1.0
    img = np.where(organ, 100.0, -50.0)
    for _ in range(10):  # tubular vessels at random orientations inside the organ
        c = mid + rng.uniform(-0.25, 0.25, 3) * ext
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        v = p - c
        dist = np.linalg.norm(v - (v @ d)[..., None] * d, axis=-1)
        img = np.where(organ & (dist < rng.uniform(2.0, 4.0)), 180.0, img)
    tumour = ball(grid, tumour_centre, tumour_r)
    img = np.where(tumour, 60.0, img)
    from scipy import ndimage

    img = ndimage.gaussian_filter(img, 1.0) + rng.normal(0, 3.0, img.shape)
    return img.astype(np.float32), organ, tumour
