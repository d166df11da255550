"""Slices in the radiological convention, through the affine, whatever the file's orientation.

A `Volume` stores its array in file order (a RAS NIfTI runs i toward the patient's right, a DICOM
series toward the left); slicing the array and showing it would mirror or rotate the anatomy. Here
every view is resampled on a display plane defined in the patient frame (LPS mm):

- axial: patient's right on the image left, anterior up (looking from the feet);
- coronal: patient's right on the image left, superior up (looking from the front);
- sagittal: anterior on the image left, superior up (looking from the patient's left).

`radiological_slice` returns the pixels and the matplotlib extent in mm, so world points (needles,
entries, targets) are drawn with `to_plane` at their true place; `decorate` adds orientation
letters and a scale bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from openir.core import Volume

Plane = Literal["axial", "coronal", "sagittal"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")

# per plane: (LPS axis of image columns, sign), (LPS axis of image rows, sign), fixed axis, letters
# (left, right, top, bottom). Row sign +1: the coordinate grows downward (P on axial).
_LAYOUT: dict[str, tuple[int, int, int, int, tuple[str, str, str, str]]] = {
    "axial": (0, 1, 1, 2, ("R", "L", "A", "P")),
    "coronal": (0, 2, -1, 1, ("R", "L", "S", "I")),
    "sagittal": (1, 2, -1, 0, ("A", "P", "S", "I")),
}


@dataclass
class Slice2D:
    """A resampled view: ``pixels[row, col]`` and its extent (left, right, bottom, top) in mm."""

    plane: Plane
    pixels: np.ndarray
    extent: tuple[float, float, float, float]
    letters: tuple[str, str, str, str]
    pixel_mm: float


def to_plane(plane: Plane, points_lps: np.ndarray | Sequence[float]) -> np.ndarray:
    """(x, y) plot coordinates (mm) of LPS points on a view of ``plane``."""
    p = np.asarray(points_lps, float)
    col, row, _, _, _ = _LAYOUT[plane]
    return np.stack([p[..., col], p[..., row]], axis=-1)


def _bounds(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    n = np.array(vol.grid.shape_ijk) - 1
    corners = np.array([[a, b, c] for a in (-0.5, n[0] + 0.5) for b in (-0.5, n[1] + 0.5) for c in (-0.5, n[2] + 0.5)])
    w = vol.index_to_world(corners)
    return w.min(axis=0), w.max(axis=0)


def radiological_slice(vol: Volume, plane: Plane, centre_lps: Sequence[float], *, order: int = 0,
                       pixel_mm: float | None = None, cval: float = 0.0,
                       bounds: tuple[np.ndarray, np.ndarray] | None = None) -> Slice2D:
    """The ``plane`` view of ``vol`` through ``centre_lps`` (LPS mm), in the radiological convention.

    ``order`` 0 (nearest) for labels, 1 (linear) for images. ``bounds`` (LPS min, max corners) fixes
    the field of view, so a label map and its CT give pixel-aligned views.

    >>> from openir.core import make_affine
    >>> a = np.zeros((1, 1, 2)); a[0, 0, 1] = 1  # i runs toward the patient's right (RAS file)
    >>> v = Volume(a, make_affine((-1, -1, 1), (0, 0, 0)))
    >>> radiological_slice(v, "axial", (0, 0, 0), pixel_mm=1).pixels.tolist()  # right on the image left
    [[1.0, 0.0]]
    """
    col_ax, row_ax, row_sign, fixed_ax, letters = _LAYOUT[plane]
    lo, hi = bounds if bounds is not None else _bounds(vol)
    h = float(pixel_mm or min(float(vol.spacing.min()), 2.0))
    ncol = max(1, int(round((hi[col_ax] - lo[col_ax]) / h)))
    nrow = max(1, int(round((hi[row_ax] - lo[row_ax]) / h)))
    xs = lo[col_ax] + (np.arange(ncol) + 0.5) * h
    ys = lo[row_ax] + (np.arange(nrow) + 0.5) * h
    if row_sign < 0:
        ys = ys[::-1]  # first row: the largest coordinate (superior)
    pts = np.zeros((nrow, ncol, 3))
    pts[..., col_ax] = xs[None, :]
    pts[..., row_ax] = ys[:, None]
    pts[..., fixed_ax] = float(centre_lps[fixed_ax])
    ijk = vol.world_to_index(pts.reshape(-1, 3))
    kji = ijk[:, ::-1].T
    arr = vol.array
    if order == 0:
        idx = np.rint(kji).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.array(arr.shape)[:, None]), axis=0)
        out = np.full(idx.shape[1], cval, dtype=arr.dtype if arr.dtype != bool else np.uint8)
        out[ok] = arr[idx[0, ok], idx[1, ok], idx[2, ok]]
    else:
        out = ndimage.map_coordinates(arr.astype(np.float32), kji, order=order, mode="constant", cval=cval)
    pixels = out.reshape(nrow, ncol)
    left, right = lo[col_ax], lo[col_ax] + ncol * h
    y0, y1 = lo[row_ax], lo[row_ax] + nrow * h
    # imshow (origin upper): top = the first row's edge
    extent = (left, right, y1, y0) if row_sign > 0 else (left, right, y0, y1)
    return Slice2D(plane, pixels, (float(extent[0]), float(extent[1]), float(extent[2]), float(extent[3])),
                   letters, h)


def decorate(ax, view: Slice2D, colour: str = "white", bar_mm: float | None = None) -> None:
    """Orientation letters at the four edges and a scale bar (bottom left) on a view."""
    left, right, bottom, top = view.extent
    kw = dict(color=colour, fontsize=9, fontweight="bold", transform=ax.transAxes, ha="center", va="center")
    lt, rt, tp, bt = view.letters
    ax.text(0.03, 0.5, lt, **kw)
    ax.text(0.97, 0.5, rt, **kw)
    ax.text(0.5, 0.97, tp, **kw)
    ax.text(0.5, 0.03, bt, **kw)
    width = abs(right - left)
    if bar_mm is None:
        bar_mm = next((b for b in (100, 50, 20, 10, 5, 2, 1) if b <= width / 4), 1)
    x0 = left + 0.06 * (right - left)
    yb = bottom + 0.08 * (top - bottom)
    ax.plot([x0, x0 + bar_mm * np.sign(right - left)], [yb, yb], color=colour, lw=3, solid_capstyle="butt")
    ax.text(x0 + 0.5 * bar_mm * np.sign(right - left), yb + 0.04 * (top - bottom), f"{bar_mm:g} mm", color=colour,
            fontsize=7, ha="center", va="center")
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def field_of_view(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The LPS bounding box of a volume (to give several views one frame)."""
    return _bounds(vol)


def segment_on_plane(plane: Plane, a_lps: Sequence[float], b_lps: Sequence[float]) -> np.ndarray:
    """The projection of a 3D segment on a view (2 x 2 plot coordinates): needles seen in a slab."""
    return to_plane(plane, np.asarray([a_lps, b_lps], float))
