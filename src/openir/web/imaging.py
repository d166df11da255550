"""Slices for the viewer: window/level, label overlay, PNG encoding (zlib, no matplotlib: a
scroll step must cost milliseconds), and surface points of each label for the 3D view."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from openir.core import InputError

AXES = ("axial", "coronal", "sagittal")
# label colours (RGB 0..255), cycled; 0 is background
PALETTE = np.array([[0, 0, 0], [230, 60, 60], [60, 200, 90], [70, 130, 240], [240, 200, 40],
                    [200, 80, 220], [40, 210, 210], [250, 140, 40]], np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (h, w, 3) uint8 array as PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 3)) + chunk(b"IEND", b""))


@lru_cache(maxsize=16)
def load_case_volume(path: str, labels_path: str | None) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float, float]]:
    """(image [k, j, i], labels or None, spacing (k, j, i) mm) from .npz or any image openir.io reads."""
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p) as z:
            img = np.asarray(z["image"], np.float32)
            lab = np.asarray(z["labels"], np.int16) if "labels" in z else None
            sp = tuple(float(v) for v in z["spacing"]) if "spacing" in z else (1.0, 1.0, 1.0)
    else:
        from openir.io import read_image, read_labels

        vol = read_image(p)
        img, sp = lps_canonical(np.asarray(vol.array, np.float32), vol.direction, vol.spacing)
        lab = None
        if labels_path:
            lv = read_labels(Path(labels_path))
            lab, _ = lps_canonical(np.asarray(lv.array, np.int16), lv.grid.direction, lv.grid.spacing)
    if lab is not None and lab.shape != img.shape:
        raise InputError(f"{path}: labels grid {lab.shape} differs from image grid {img.shape}", source=str(p))
    return img, lab, sp  # type: ignore[return-value]


LETTERS = {  # (top, bottom, left, right) of each view of an LPS-canonical volume, radiological
    "axial": ("A", "P", "R", "L"),
    "coronal": ("S", "I", "R", "L"),
    "sagittal": ("S", "I", "A", "P"),
}


def lps_canonical(array: np.ndarray, direction: np.ndarray, spacing_ijk) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Flip and permute an ``[k, j, i]`` array so that i runs to the patient's left, j to posterior
    and k to superior (each index axis assigned to the patient axis it is closest to), whatever the
    file's direction (a RAS NIfTI, a feet-first series); returns it with its (k, j, i) spacing.
    The viewer then draws every file the same radiological way."""
    d = np.asarray(direction, float)
    axes = [int(a) for a in np.argmax(np.abs(d), axis=0)]  # index axis (i, j, k) -> LPS axis
    if sorted(axes) != [0, 1, 2]:  # too oblique to assign: keep the file's order
        axes = [0, 1, 2]
    arr = array
    for t in range(3):
        if d[axes[t], t] < 0:
            arr = np.flip(arr, axis=2 - t)
    perm = [0, 0, 0]
    for t in range(3):
        perm[2 - axes[t]] = 2 - t
    arr = np.ascontiguousarray(np.transpose(arr, perm))
    sp = np.asarray(spacing_ijk, float)
    by_lps = {axes[t]: float(sp[t]) for t in range(3)}
    return arr, (by_lps[2], by_lps[1], by_lps[0])


@lru_cache(maxsize=16)
def load_case_margin(path: str) -> np.ndarray | None:
    """The case's margin map (signed minimal margin at the tumour surface, mm; NaN elsewhere), if stored."""
    if Path(path).suffix != ".npz":
        return None
    with np.load(path) as z:
        return np.asarray(z["margin_mm"], np.float32) if "margin_mm" in z else None


MARGIN_RGB = {"below_0": (230, 40, 40), "0_5": (255, 150, 0), "5_up": (40, 200, 80)}
"""Margin classes as verification reports them (< 0 mm residual, 0-5 mm, >= 5 mm)."""


def take(arr: np.ndarray, axis: str, index: int) -> np.ndarray:
    """A 2D slice of an LPS-canonical volume, displayed radiologically: patient right on the image
    left, anterior up on axial views, head up on coronal and sagittal views (``LETTERS``)."""
    if axis == "axial":
        return arr[index]
    if axis == "coronal":
        return arr[:, index, :][::-1]
    return arr[:, :, index][::-1]


def n_slices(shape: tuple[int, ...], axis: str) -> int:
    """How many slices a volume has along ``axis`` (the viewer's slider range)."""
    return shape[{"axial": 0, "coronal": 1, "sagittal": 2}[axis]]


def render_slice(img: np.ndarray, lab: np.ndarray | None, spacing: tuple[float, float, float], *, axis: str,
                 index: int, centre: float, width: float, overlay: bool = True,
                 needles: list[tuple[list[float], list[float]]] | None = None,
                 margin: np.ndarray | None = None) -> bytes:
    """PNG of one slice with window ``centre``/``width``, the labels blended in and the planned
    needles (``(entry_mm, target_mm)`` as x = i, y = j, z = k times spacing) drawn where they pass
    within 1.5 voxels of the slice; ``margin`` (the margin map) colours the tumour surface by margin
    class."""
    alpha = 0.4
    if axis not in AXES:
        raise InputError(f"axis must be one of {', '.join(AXES)}", field="axis")
    index = int(np.clip(index, 0, n_slices(img.shape, axis) - 1))
    width = max(float(width), 1e-3)
    g = np.clip((take(img, axis, index) - (centre - width / 2)) / width, 0, 1)
    rgb = np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)
    if overlay and lab is not None:
        ls = take(lab, axis, index)
        m = ls > 0
        if m.any():
            col = PALETTE[1 + (ls[m].astype(np.int64) - 1) % (len(PALETTE) - 1)]
            rgb[m] = ((1 - alpha) * rgb[m] + alpha * col).astype(np.uint8)
    if margin is not None:
        ms = take(margin, axis, index)
        for cls, sel in (("below_0", ms < 0), ("0_5", (ms >= 0) & (ms < 5)), ("5_up", ms >= 5)):
            rgb[sel] = MARGIN_RGB[cls]
    if needles:
        _draw_needles(rgb, needles, spacing, axis, index, img.shape)
    return png_bytes(np.ascontiguousarray(square_pixels(rgb, *pixel_mm(spacing, axis))))


NEEDLE_RGB = np.array([255, 235, 59], np.uint8)


def _draw_needles(rgb: np.ndarray, needles, spacing, axis: str, index: int, shape) -> None:
    """Mark the voxels of each needle segment that lie within 1.5 voxels of this slice."""
    sk, sj, si = spacing
    for a, b in needles:
        a_kji = np.array([a[2] / sk, a[1] / sj, a[0] / si])
        b_kji = np.array([b[2] / sk, b[1] / sj, b[0] / si])
        n = int(np.ceil(np.abs(b_kji - a_kji).max() * 4)) + 2
        pts = a_kji + np.linspace(0.0, 1.0, n)[:, None] * (b_kji - a_kji)
        dim = {"axial": 0, "coronal": 1, "sagittal": 2}[axis]
        near = np.abs(pts[:, dim] - index) <= 1.5
        idx = np.rint(pts[near]).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        k, j, i = idx[inside].T
        if axis == "axial":
            rows, cols = j, i
        elif axis == "coronal":
            rows, cols = shape[0] - 1 - k, i
        else:
            rows, cols = shape[0] - 1 - k, j
        rgb[rows, cols] = NEEDLE_RGB


def pixel_mm(spacing: tuple[float, float, float], axis: str) -> tuple[float, float]:
    """(row, column) pixel size in mm of a view, from the (k, j, i) spacing."""
    sk, sj, si = spacing
    return {"axial": (sj, si), "coronal": (sk, si), "sagittal": (sk, sj)}[axis]


def square_pixels(rgb: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    """Resample rows (nearest) so that a pixel is as tall as it is wide in mm: the image's aspect
    ratio equals the patient's, for any ratio (not only whole multiples)."""
    r = row_mm / col_mm
    h = rgb.shape[0]
    new_h = max(1, int(round(h * r)))
    if new_h == h:
        return rgb
    rows = np.minimum(((np.arange(new_h) + 0.5) / r).astype(np.int64), h - 1)
    return rgb[rows]


def surface_points(lab: np.ndarray | None, spacing: tuple[float, float, float], *,
                   max_points: int = 2500) -> list[dict]:
    """Per label: boundary voxel centres in mm (x=i, y=j, z=k), subsampled, for the 3D canvas."""
    out: list[dict] = []
    if lab is None:
        return out
    for value in np.unique(lab):
        if value == 0:
            continue
        m = lab == value
        inner = m.copy()
        for ax in range(3):
            inner &= np.roll(m, 1, ax) & np.roll(m, -1, ax)
        k, j, i = np.nonzero(m & ~inner)
        step = max(1, len(k) // max_points)
        pts = np.stack([i[::step] * spacing[2], j[::step] * spacing[1], k[::step] * spacing[0]], axis=1)
        out.append({"label": int(value), "colour": PALETTE[1 + (int(value) - 1) % (len(PALETTE) - 1)].tolist(),
                    "points": np.round(pts, 1).tolist()})
    return out
