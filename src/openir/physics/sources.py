"""Heating and freezing sources on a voxel grid: where each probe deposits (or removes) heat.

Each heating source returns a *pattern*: W/m^3 per watt of generator setting, normalised on the
grid so that it integrates to ``absorbed_fraction`` (the share of the setting that the tissue
absorbs; cable/shaft losses and reflection take the rest; calibrated per device, see calibrate.py).
Geometry is given in LPS mm: ``tip_lps`` is the probe tip, ``direction_lps`` the unit insertion
direction (entry -> tip). The shapes are phenomenological, chosen so that a device's table zone can
be reproduced by calibration, not full electromagnetic or optical solutions:

* microwave: SAR concentrated around the feed point (a gap some mm behind the tip), Gaussian across
  and along the shaft (separate widths), as the near field of an interstitial antenna;
* radiofrequency: Joule heating of a monopolar electrode, ~ 1/r^4 from the exposed tip (current
  density ~ 1/r^2 around a small electrode), clipped at the electrode radius;
* laser: diffuse light from a cylindrical diffuser, absorbed ~ exp(-mu_eff r) / r (diffusion
  approximation of a line of point sources), clipped at the fibre radius;
* cryoprobe: not a heat term but a set of voxels held at the probe temperature (see HeldSource).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openir.core.errors import InputError
from openir.core.volume import Grid


def _unit(v: Sequence[float], what: str = "direction_lps") -> np.ndarray:
    d = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(d))
    if d.shape != (3,) or not np.isfinite(n) or n < 1e-9:
        raise InputError(f"needs a non-zero 3-vector, got {list(v)}", field=what)
    return d / n


def probe_coordinates(grid: Grid, tip_lps: Sequence[float], direction_lps: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinate ``s`` (mm, positive towards the tip, 0 at the tip) and radial distance
    ``rho`` (mm) of every voxel centre, arrays ``[k, j, i]``."""
    d = _unit(direction_lps)
    p = grid.voxel_centres() - np.asarray(tip_lps, dtype=float)
    s = p @ d
    rho = np.sqrt(np.maximum(np.einsum("...i,...i->...", p, p) - s * s, 0.0))
    return s, rho


def _segment_distance(s: np.ndarray, rho: np.ndarray, length_mm: float) -> np.ndarray:
    """Distance to the segment from the tip back ``length_mm`` along the shaft (s in [-L, 0])."""
    ds = np.where(s > 0, s, np.where(s < -length_mm, -length_mm - s, 0.0))
    return np.sqrt(ds * ds + rho * rho)


def _normalise(q: np.ndarray, grid: Grid, absorbed_fraction: float, what: str) -> np.ndarray:
    total = float(q.sum()) * grid.voxel_volume_mm3 * 1e-9  # W per unit pattern
    if not total > 0:
        raise InputError(f"{what} source deposits no power inside the grid (probe outside the region?)")
    return (q * (absorbed_fraction / total)).astype(np.float64)


def microwave_pattern(
    grid: Grid,
    tip_lps: Sequence[float],
    direction_lps: Sequence[float],
    *,
    feed_offset_mm: float,
    sigma_radial_mm: float,
    sigma_axial_mm: float,
    absorbed_fraction: float,
) -> np.ndarray:
    """Microwave antenna SAR pattern (W/m^3 per W set), peak at the feed point behind the tip."""
    if min(sigma_radial_mm, sigma_axial_mm) <= 0 or feed_offset_mm < 0:
        raise InputError("microwave pattern widths must be > 0 and the feed offset >= 0")
    s, rho = probe_coordinates(grid, tip_lps, direction_lps)
    q = np.exp(-0.5 * (rho / sigma_radial_mm) ** 2 - 0.5 * ((s + feed_offset_mm) / sigma_axial_mm) ** 2)
    return _normalise(q, grid, absorbed_fraction, "microwave")


def rf_pattern(
    grid: Grid,
    tip_lps: Sequence[float],
    direction_lps: Sequence[float],
    *,
    exposed_length_mm: float,
    electrode_radius_mm: float,
    absorbed_fraction: float,
) -> np.ndarray:
    """Monopolar RF electrode Joule heating ~ 1/d^4 from the exposed tip (W/m^3 per W set)."""
    if exposed_length_mm <= 0 or electrode_radius_mm <= 0:
        raise InputError("RF exposed length and electrode radius must be > 0")
    s, rho = probe_coordinates(grid, tip_lps, direction_lps)
    dist = np.maximum(_segment_distance(s, rho, exposed_length_mm), electrode_radius_mm)
    return _normalise((electrode_radius_mm / dist) ** 4, grid, absorbed_fraction, "radiofrequency")


def laser_pattern(
    grid: Grid,
    tip_lps: Sequence[float],
    direction_lps: Sequence[float],
    *,
    diffuser_length_mm: float,
    mu_eff_per_mm: float,
    fibre_radius_mm: float,
    absorbed_fraction: float,
) -> np.ndarray:
    """Laser diffuser absorption ~ exp(-mu_eff d) / d from the diffuser segment (W/m^3 per W set)."""
    if diffuser_length_mm <= 0 or mu_eff_per_mm <= 0 or fibre_radius_mm <= 0:
        raise InputError("laser diffuser length, mu_eff and fibre radius must be > 0")
    s, rho = probe_coordinates(grid, tip_lps, direction_lps)
    dist = np.maximum(_segment_distance(s, rho, diffuser_length_mm), fibre_radius_mm)
    return _normalise(np.exp(-mu_eff_per_mm * dist) / dist, grid, absorbed_fraction, "laser")


def cryoprobe_mask(
    grid: Grid,
    tip_lps: Sequence[float],
    direction_lps: Sequence[float],
    *,
    freeze_length_mm: float,
    probe_radius_mm: float,
) -> np.ndarray:
    """Voxels of the cryoprobe's freezing segment (held at the probe temperature while on).

    A probe at least one voxel thick is the cylinder of its radius; a thinner one is the line of
    voxels nearest its axis (one voxel per step along it), so its effective size on the grid does
    not depend on where its axis crosses the voxels (a fixed reach would take 1 to 4 voxels per
    slice and change the ice ball by that much).
    """
    if freeze_length_mm <= 0 or probe_radius_mm <= 0:
        raise InputError("cryoprobe freeze length and radius must be > 0")
    h = float(grid.spacing.min())
    s, rho = probe_coordinates(grid, tip_lps, direction_lps)
    if probe_radius_mm >= h:
        mask = (_segment_distance(s, rho, freeze_length_mm) <= probe_radius_mm) & (s >= -freeze_length_mm - 1e-9)
    else:
        mask = np.zeros(grid.shape, bool)
        d = _unit(direction_lps)
        steps = np.arange(0.0, freeze_length_mm + 1e-9, 0.25 * h)
        ijk = np.rint(grid.world_to_index(np.asarray(tip_lps, float) - steps[:, None] * d)).astype(int)
        ijk = ijk[np.all((ijk >= 0) & (ijk < np.array(grid.shape[::-1])), axis=1)]
        mask[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = True
    if not mask.any():
        raise InputError("cryoprobe freezing segment lies outside the grid")
    return mask
