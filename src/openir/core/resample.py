"""Resampling one image onto another grid.

One combined affine (target index -> LPS -> source index) drives ``scipy.ndimage.affine_transform``,
so no coordinate array is ever built. Labels use nearest neighbour, intensities linear.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .labels import LabelMap
from .volume import Grid, Volume

Interpolation = Literal["nearest", "linear", "cubic"]
_ORDER = {"nearest": 0, "linear": 1, "cubic": 3}
# array index (k, j, i) <-> affine index (i, j, k)
_SWAP = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=float)


def index_map(source: Grid, target: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset taking a target *array* index (k, j, i) to a source array index."""
    m = np.linalg.inv(source.affine) @ target.affine
    return _SWAP @ m[:3, :3] @ _SWAP, _SWAP @ m[:3, 3]


def resample(
    volume: Volume,
    target: Grid | Volume,
    interpolation: Interpolation | None = None,
    fill_value: float | None = None,
) -> Volume:
    """Resample ``volume`` onto the grid of ``target``.

    Label maps default to nearest neighbour (values are never blended) and keep their labels;
    other volumes default to linear. Points outside the source get ``fill_value`` (0 for labels,
    the source minimum otherwise, e.g. air for CT).

    >>> from openir.core import make_affine
    >>> ramp = np.tile(np.arange(6) * 2.0, (3, 4, 1))  # value = x in mm on a 2 mm grid
    >>> src = Volume(ramp, make_affine((2.0, 2.0, 2.0)))
    >>> fine = resample(src, isotropic_grid(src.grid, 1.0))
    >>> fine.shape, float(fine.index_to_world([5, 0, 0])[0]), float(fine.array[1, 2, 5])
    ((6, 8, 12), 4.5, 4.5)
    """
    grid = target.grid if isinstance(target, Volume) else target
    is_labels = isinstance(volume, LabelMap)
    interp = interpolation or ("nearest" if is_labels else "linear")
    if is_labels and interp != "nearest":
        raise ValueError("label maps can only be resampled with nearest-neighbour interpolation")
    if fill_value is None:
        fill_value = 0.0 if is_labels else float(np.min(volume.array)) if volume.array.size else 0.0
    if volume.grid.same_as(grid, tol_mm=1e-6):
        return volume.with_array(volume.array.copy())
    from scipy import ndimage  # imported here: the CLI should start without loading scipy

    matrix, offset = index_map(volume.grid, grid)
    src = volume.array
    order = _ORDER[interp]
    if order > 0 and not np.issubdtype(src.dtype, np.floating):
        src = src.astype(np.float32)
    out = ndimage.affine_transform(
        src,
        matrix,
        offset=offset,
        output_shape=grid.shape,
        order=order,
        mode="constant",
        cval=fill_value,
        prefilter=order > 1,
    )
    if order > 0 and np.issubdtype(volume.array.dtype, np.integer):
        info = np.iinfo(volume.array.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(volume.array.dtype)
    if is_labels:
        return LabelMap(out.astype(volume.array.dtype), grid.affine.copy(), dict(volume.meta), dict(volume.labels))  # type: ignore[attr-defined]
    return Volume(out, grid.affine.copy(), dict(volume.meta))


def isotropic_grid(grid: Grid, spacing_mm: float) -> Grid:
    """A grid covering the same region as ``grid`` with cubic voxels of ``spacing_mm``."""
    extent = grid.extent_mm
    n_ijk = np.maximum(1, np.round(extent / spacing_mm)).astype(int)
    d = grid.direction
    # keep the outer corner of the first voxel fixed, so the field of view is unchanged
    corner = grid.origin - d @ (grid.spacing / 2)
    origin = corner + d @ np.full(3, spacing_mm / 2)
    aff = np.eye(4)
    aff[:3, :3] = d * spacing_mm
    aff[:3, 3] = origin
    return Grid((int(n_ijk[2]), int(n_ijk[1]), int(n_ijk[0])), aff)
