"""Measuring a lethal zone: its length along the probe, width across it, and volume.

Sampled on a fine probe-aligned lattice by linear interpolation of log10(field), with the threshold
crossing located between samples, so the axes vary smoothly with the source strength (calibration
needs that) instead of jumping by whole voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from openir.core.volume import Grid

from .sources import _unit


@dataclass
class ZoneAxes:
    """Lethal-zone size for one probe (mm, ml). ``radii_mm``: extent in each of ``n_dirs``
    directions around the shaft at the widest cross-section (direction 0 along ``ref_lps``)."""

    length_mm: float
    width_mm: float
    volume_ml: float
    proximal_mm: float  # zone start, along the shaft from the tip (negative = behind the tip)
    distal_mm: float
    widest_at_mm: float
    radii_mm: list[float]

    @property
    def semi_axes_mm(self) -> tuple[float, float]:
        return self.length_mm / 2, self.width_mm / 2


def _perp_basis(d: np.ndarray, ref: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ref, float) if ref is not None else (np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0]))
    u = r - (r @ d) * d
    if np.linalg.norm(u) < 1e-9:
        u = np.cross(d, [0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.cross(d, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _crossing(vals: np.ndarray, thr: float, step: float) -> float:
    """Distance along a ray (samples ``step`` apart, starting inside) to the first drop below thr."""
    below = np.flatnonzero(vals < thr)
    if below.size == 0:
        return (vals.size - 1) * step
    n = int(below[0])
    if n == 0:
        return 0.0
    a, b = vals[n - 1], vals[n]
    return (n - 1 + (a - thr) / (a - b)) * step


def zone_axes(
    field: np.ndarray,
    grid: Grid,
    threshold: float,
    tip_lps: Sequence[float],
    direction_lps: Sequence[float],
    *,
    below: bool = False,
    reach_mm: float = 60.0,
    step_mm: float = 0.2,
    n_dirs: int = 8,
    ref_lps: Sequence[float] | None = None,
) -> ZoneAxes:
    """Zone where ``field >= threshold`` (or ``<=`` with ``below=True``, e.g. a cryo isotherm).

    Length: the run along the shaft axis containing the strongest point; width: largest mean
    diameter over cross-sections; volume: voxels over threshold connected to that run.
    """
    d = _unit(direction_lps)
    u, v = _perp_basis(d, ref_lps)
    tip = np.asarray(tip_lps, float)
    if below:
        f = -np.asarray(field, float)
        thr = -threshold
        lf, lthr = f, thr
    else:
        f = np.asarray(field, float)
        thr = threshold
        lf, lthr = np.log10(np.maximum(f, 1e-30)), np.log10(max(threshold, 1e-30))

    def sample(points: np.ndarray) -> np.ndarray:
        ijk = grid.world_to_index(points)
        return ndimage.map_coordinates(lf, [ijk[..., 2], ijk[..., 1], ijk[..., 0]], order=1, mode="nearest")

    s = np.arange(-reach_mm, reach_mm + step_mm / 2, step_mm)
    axis_vals = sample(tip + s[:, None] * d)
    empty = ZoneAxes(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, [0.0] * n_dirs)
    if axis_vals.max() < lthr:
        return empty
    peak = int(np.argmax(axis_vals))
    fwd = _crossing(axis_vals[peak:], lthr, step_mm)
    back = _crossing(axis_vals[peak::-1], lthr, step_mm)
    distal, proximal = s[peak] + fwd, s[peak] - back
    zs = np.arange(proximal, distal + step_mm / 2, 0.5)
    r = np.arange(0.0, reach_mm, step_mm)
    ang = 2 * np.pi * np.arange(n_dirs) / n_dirs
    dirs = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v  # (n_dirs, 3)
    pts = tip + zs[:, None, None, None] * d + r[None, None, :, None] * dirs[None, :, None, :]
    vals = sample(pts)  # (nz, n_dirs, nr)
    radii = np.array([[_crossing(vals[a, b], lthr, step_mm) for b in range(n_dirs)] for a in range(len(zs))])
    half = n_dirs // 2
    diam = (radii[:, :half] + radii[:, half:2 * half]).mean(axis=1) if n_dirs >= 2 else 2 * radii[:, 0]
    w = int(np.argmax(diam))
    mask = f >= thr
    lab, _ = ndimage.label(mask)
    core = tip + s[peak] * d
    cijk = np.rint(grid.world_to_index(core)).astype(int)
    vol_vox = 0
    if grid.contains_index(cijk) and lab[cijk[2], cijk[1], cijk[0]]:
        vol_vox = int((lab == lab[cijk[2], cijk[1], cijk[0]]).sum())
    else:
        vol_vox = int(mask.sum())
    return ZoneAxes(
        length_mm=float(distal - proximal),
        width_mm=float(diam[w]),
        volume_ml=vol_vox * grid.voxel_volume_mm3 / 1000.0,
        proximal_mm=float(proximal),
        distal_mm=float(distal),
        widest_at_mm=float(zs[w]),
        radii_mm=[float(x) for x in radii[w]],
    )
