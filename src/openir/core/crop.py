"""Cropping to a region of interest, and pasting a crop back.

Work on a tumour, a needle path or a heating zone happens in a box around it; these helpers keep
the affine right so results land back in the patient frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .errors import GeometryError
from .volume import Grid, Volume

Box = tuple[slice, slice, slice]  # array order (k, j, i)


def bounding_box(mask: np.ndarray) -> Box:
    """Tight array-index box ``(k, j, i)`` slices around the true voxels of ``mask``."""
    if mask.ndim != 3:
        raise GeometryError(f"mask must be 3-D, got shape {mask.shape}")
    if not mask.any():
        raise GeometryError("mask is empty: no region to crop to")
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(nz[0]), int(nz[-1]) + 1))
    return tuple(out)  # type: ignore[return-value]


def pad_box(box: Box, grid: Grid, pad_mm: float | Sequence[float]) -> Box:
    """Grow ``box`` by ``pad_mm`` on every side (per axis in i, j, k order if a sequence), clipped."""
    pad = np.broadcast_to(np.asarray(pad_mm, dtype=float), (3,))
    vox_ijk = np.ceil(pad / grid.spacing - 1e-9).astype(int)
    vox_kji = vox_ijk[::-1]
    return tuple(
        slice(max(0, s.start - int(p)), min(n, s.stop + int(p)))
        for s, p, n in zip(box, vox_kji, grid.shape, strict=True)
    )  # type: ignore[return-value]


def world_box(grid: Grid, centre_lps: Sequence[float], size_mm: float | Sequence[float]) -> Box:
    """Array-index box covering an axis-aligned LPS box of ``size_mm`` around ``centre_lps``.

    >>> from openir.core import make_affine
    >>> grid = Grid((4, 6, 8), make_affine((2.0, 2.0, 5.0)))
    >>> world_box(grid, centre_lps=(8.0, 4.0, 10.0), size_mm=6.0)  # (k, j, i) slices
    (slice(1, 4, None), slice(1, 4, None), slice(3, 6, None))
    """
    c = np.asarray(centre_lps, dtype=float)
    half = np.broadcast_to(np.asarray(size_mm, dtype=float), (3,)) / 2
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half + c
    idx = grid.world_to_index(corners)
    lo = np.floor(idx.min(axis=0) + 0.5).astype(int)
    hi = np.ceil(idx.max(axis=0) + 0.5).astype(int)
    n_ijk = np.array(grid.shape_ijk)
    lo, hi = np.clip(lo, 0, n_ijk), np.clip(hi, 0, n_ijk)
    if np.any(hi <= lo):
        raise GeometryError(f"box around {c.round(1).tolist()} mm lies outside the image")
    return (slice(int(lo[2]), int(hi[2])), slice(int(lo[1]), int(hi[1])), slice(int(lo[0]), int(hi[0])))


def crop(volume: Volume, box: Box) -> Volume:
    """The part of ``volume`` inside ``box`` (a view, not a copy), with the affine moved to match.

    >>> from openir.core import make_affine
    >>> vol = Volume(np.arange(4 * 6 * 8).reshape(4, 6, 8), make_affine((2.0, 2.0, 5.0)))
    >>> box = (slice(1, 3), slice(2, 4), slice(0, 8))
    >>> part = crop(vol, box)
    >>> part.shape, part.origin.tolist()  # the crop's first voxel keeps its place in the patient
    ((2, 2, 8), [0.0, 4.0, 5.0])
    >>> back = paste(vol.shape, box, part.array, fill=-1)
    >>> bool((back[box] == vol.array[box]).all()), int(back[0, 0, 0])
    (True, -1)
    """
    start = [s.start or 0 for s in box]
    arr = volume.array[box]
    sub = volume.grid.subgrid(start, arr.shape)
    # dataclasses.replace keeps the subclass (and a LabelMap's labels)
    return replace(volume, array=arr, affine=sub.affine, meta={**volume.meta, "crop_start_kji": start})


def crop_to_mask(volume: Volume, mask: np.ndarray, pad_mm: float | Sequence[float] = 0.0) -> tuple[Volume, Box]:
    """Crop to the box around ``mask`` grown by ``pad_mm``; returns the crop and its box."""
    if mask.shape != volume.shape:
        raise GeometryError(f"mask shape {mask.shape} does not match volume shape {volume.shape}")
    box = pad_box(bounding_box(mask), volume.grid, pad_mm)
    return crop(volume, box), box


def paste(full_shape: tuple[int, int, int], box: Box, part: np.ndarray, fill: float = 0) -> np.ndarray:
    """Place a cropped array back into an array of ``full_shape`` (outside filled with ``fill``)."""
    out = np.full(full_shape, fill, dtype=part.dtype)
    out[box] = part
    return out
