"""AAPM TG-43U1 dose from I-125 seeds: 2D line-source formalism, 1D approximation, patient grids.

Dose rate at distance r (cm) and angle theta to the seed axis (TG-43U1, Rivard et al. 2004, eq. 1
and 11)::

    2D:  D'(r, theta) = S_K * Lambda * G_L(r, theta) / G_L(1 cm, 90 deg) * g_L(r) * F(r, theta)
    1D:  D'(r)        = S_K * Lambda * G_L(r, 90 deg) / G_L(1 cm, 90 deg) * g_L(r) * phi_an(r)

g_L and phi_an are interpolated linearly in r, F bilinearly in (r, theta); outside the tabulated
radii F and phi_an take the nearest radius (TG-43U1 recommendation) and g_L the end values.
Points closer to the seed centre than ``r_min`` (the seed capsule, where TG-43 is not defined)
get the dose at ``r_min`` on the same direction: finite, far above any prescription, and said so.

A permanent implant decays to zero, so its total dose is the initial dose rate times the mean life
tau = T_half / ln 2 (``total_dose_gy``).

Example: one 0.5 mCi 6711 seed, 1 cm away on its transverse axis.

>>> m = get_seed_model("6711")
>>> sk = air_kerma_strength_from_apparent_activity(0.5, m)
>>> round(sk, 3), round(float(dose_rate_2d(m, sk, 1.0, 90.0)), 4)  # cGy/h = S_K x Lambda at (1 cm, 90 deg)
(0.635, 0.6128)
>>> round(float(total_dose_gy_from_rate(dose_rate_2d(m, sk, 1.0, 90.0), m)), 1)  # Gy for ever
12.6
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from openir.core.errors import InputError
from openir.core.volume import Grid, Volume

from ._kernels import accumulate_grid, accumulate_points, influence_matrix
from .catalogue import get_seed_model
from .models import Seed, SeedModel

Formalism = Literal["line2d", "point1d"]
R0_CM = 1.0
THETA0 = math.pi / 2


# ---- the TG-43U1 functions (reference, numpy) ------------------------------------------------
def geometry_line(r_cm, theta_rad, length_cm: float) -> np.ndarray:
    """Line-source geometry function G_L(r, theta) in cm^-2 (TG-43U1 eq. 4).

    beta / (L r sin theta) off the axis; 1 / (r^2 - L^2/4) on it (for r > L/2).
    """
    r = np.asarray(r_cm, dtype=float)
    th = np.asarray(theta_rad, dtype=float)
    z = r * np.cos(th)
    rho = np.abs(r * np.sin(th))
    half = length_cm / 2.0
    rho_safe = np.maximum(rho, 1e-7)
    beta = np.arctan2(z + half, rho_safe) - np.arctan2(z - half, rho_safe)
    off = beta / (length_cm * rho_safe)
    with np.errstate(divide="ignore", invalid="ignore"):
        on = 1.0 / (r * r - half * half)
    return np.where(rho < 1e-6 * np.maximum(r, 1e-9), on, off)


def radial_dose(model: SeedModel, r_cm) -> np.ndarray:
    """g_L(r): linear interpolation of the consensus table, end values outside it."""
    t = model.radial_dose
    return np.interp(np.asarray(r_cm, dtype=float), t.r_cm, t.g_l)


def anisotropy_2d(model: SeedModel, r_cm, theta_deg) -> np.ndarray:
    """F(r, theta): bilinear in (r, theta), theta folded to 0-90 deg, nearest radius outside the table."""
    t = model.anisotropy
    r, th = np.broadcast_arrays(np.asarray(r_cm, dtype=float), np.asarray(theta_deg, dtype=float))
    th = th % 180.0
    th = np.where(th > 90.0, 180.0 - th, th)
    rr = np.asarray(t.r_cm)
    f = np.asarray(t.f)
    per_r = np.stack([np.interp(th, t.theta_deg, f[q]) for q in range(len(rr))], axis=0)
    if len(rr) == 1:
        return per_r[0]
    rc = np.clip(r, rr[0], rr[-1])
    q = np.clip(np.searchsorted(rr, rc, side="right") - 1, 0, len(rr) - 2)
    w = (rc - rr[q]) / (rr[q + 1] - rr[q])
    lo = np.take_along_axis(per_r, q[np.newaxis, ...], 0)[0]
    hi = np.take_along_axis(per_r, (q + 1)[np.newaxis, ...], 0)[0]
    return lo + w * (hi - lo)


def anisotropy_1d(model: SeedModel, r_cm) -> np.ndarray:
    """phi_an(r): the consensus table when the model has one, else the solid-angle average of F.

    phi_an is defined (TG-43U1 eq. 10) as the 4 pi-averaged dose rate over the transverse-axis dose
    rate at the same r; without a table it is computed from G_L and F by that definition.
    """
    r = np.asarray(r_cm, dtype=float)
    if model.phi_an is not None:
        return np.interp(r, model.phi_an.r_cm, model.phi_an.value)
    return np.interp(r, *_phi_an_computed(model.name))


@functools.cache
def _phi_an_computed(name: str) -> tuple[np.ndarray, np.ndarray]:
    m = get_seed_model(name)
    radii = np.asarray(m.anisotropy.r_cm, dtype=float)
    th = np.linspace(0.0, math.pi, 2001)
    out = []
    for r in radii:
        rate = geometry_line(r, th, m.active_length_cm) * anisotropy_2d(m, r, np.degrees(th))
        avg = 0.5 * np.trapezoid(rate * np.sin(th), th)
        out.append(avg / float(geometry_line(r, THETA0, m.active_length_cm)))
    return radii, np.asarray(out)


def _g0(model: SeedModel) -> float:
    return float(geometry_line(R0_CM, THETA0, model.active_length_cm))


def dose_rate_2d(model: SeedModel, sk_u: float, r_cm, theta_deg) -> np.ndarray:
    """TG-43U1 2D dose rate (cGy/h) of one seed of strength ``sk_u`` at (r cm, theta deg)."""
    r = np.asarray(r_cm, dtype=float)
    th = np.radians(np.asarray(theta_deg, dtype=float))
    g = geometry_line(r, th, model.active_length_cm) / _g0(model)
    return sk_u * model.dose_rate_constant * g * radial_dose(model, r) * anisotropy_2d(model, r, theta_deg)


def dose_rate_1d(model: SeedModel, sk_u: float, r_cm) -> np.ndarray:
    """TG-43U1 1D dose rate (cGy/h), line-source geometry on the transverse axis times phi_an(r).

    Equal to the point-source form S_K Lambda (r0/r)^2 g_P(r) phi_an(r) with g_P derived from g_L
    (TG-43U1 eq. 11 and its g_P/g_L conversion).
    """
    r = np.asarray(r_cm, dtype=float)
    g = geometry_line(r, THETA0, model.active_length_cm) / _g0(model)
    return sk_u * model.dose_rate_constant * g * radial_dose(model, r) * anisotropy_1d(model, r)


def air_kerma_strength_from_apparent_activity(mci: float, model: SeedModel | str = "6711") -> float:
    """S_K (U) from the apparent activity (mCi) quoted by vendors: S_K = A_app x 1.270 U/mCi (I-125).

    >>> round(air_kerma_strength_from_apparent_activity(0.6), 3)
    0.762
    """
    m = get_seed_model(model) if isinstance(model, str) else model
    a = float(mci)
    if not math.isfinite(a) or a <= 0:
        raise InputError(f"seed activity must be a positive number of mCi, got {mci!r}", field="activity_mci")
    if a > 10:
        raise InputError(f"seed activity {a} mCi is implausible for an I-125 seed (expected 0.1-2 mCi)",
                         field="activity_mci")
    return a * m.u_per_mci_apparent


def total_dose_gy_from_rate(rate_cgy_h, model: SeedModel, hours: float | None = None):
    """Dose (Gy) delivered by a decaying implant of initial rate ``rate_cgy_h``.

    ``hours=None`` integrates to infinity (permanent implant: rate x tau); otherwise
    rate x tau x (1 - exp(-t / tau)).
    """
    tau = model.mean_life_h
    factor = tau if hours is None else tau * (1.0 - math.exp(-float(hours) / tau))
    return np.asarray(rate_cgy_h) * (factor / 100.0)


# ---- precomputed kernel ----------------------------------------------------------------------
@dataclass(frozen=True)
class DoseOptions:
    """How dose grids are computed.

    ``kernel_radius_mm``: seeds contribute within this distance (100 mm = end of the g_L tables;
    beyond it a seed adds < 0.1 % of its 1 cm dose). ``r_min_mm``: closer points get the value at
    r_min (inside the seed capsule TG-43 is undefined); 0 = the model's half-length + 0.5 mm, at
    least 1 mm.
    """

    formalism: Formalism = "line2d"
    kernel_radius_mm: float = 100.0
    r_min_mm: float = 0.0
    dr_mm: float = 0.1
    n_u: int = 181


@dataclass(frozen=True)
class DoseKernel:
    """Dose rate per unit S_K (cGy h^-1 U^-1) tabulated on (r mm, u = sqrt(1 - |cos theta|))."""

    table: np.ndarray
    dr_mm: float
    r_max_mm: float
    r_min_mm: float
    formalism: str
    model: str


def _r_min_mm(model: SeedModel, opts: DoseOptions) -> float:
    if opts.r_min_mm > 0:
        return opts.r_min_mm
    return max(1.0, model.active_length_cm * 10.0 / 2.0 + 0.5)


@functools.lru_cache(maxsize=16)
def _kernel_cached(name: str, opts: DoseOptions) -> DoseKernel:
    model = get_seed_model(name)
    return build_kernel(model, opts)


def build_kernel(model: SeedModel, opts: DoseOptions | None = None) -> DoseKernel:
    """Tabulate the TG-43U1 dose rate per unit S_K for ``model`` (about 1 ms per 10^4 entries)."""
    opts = opts or DoseOptions()
    if opts.kernel_radius_mm <= 0 or opts.dr_mm <= 0 or opts.n_u < 3:
        raise InputError("dose options: kernel radius, dr and n_u must be positive", field="dose_options")
    nr = int(math.ceil(opts.kernel_radius_mm / opts.dr_mm)) + 2
    r_mm = np.arange(nr) * opts.dr_mm
    rmin = _r_min_mm(model, opts)
    r_cm = np.maximum(r_mm, rmin) / 10.0
    u = np.linspace(0.0, 1.0, opts.n_u)
    theta_deg = np.degrees(np.arccos(np.clip(1.0 - u * u, 0.0, 1.0)))
    rr, tt = np.meshgrid(r_cm, theta_deg, indexing="ij")
    if opts.formalism == "line2d":
        table = dose_rate_2d(model, 1.0, rr, tt)
    elif opts.formalism == "point1d":
        table = np.repeat(dose_rate_1d(model, 1.0, r_cm)[:, np.newaxis], opts.n_u, axis=1)
    else:
        raise InputError(f"unknown dose formalism {opts.formalism!r}; use line2d or point1d",
                         field="formalism")
    return DoseKernel(np.ascontiguousarray(table, dtype=np.float64), opts.dr_mm,
                      float(opts.kernel_radius_mm), rmin, opts.formalism, model.name)


def kernel_for(model: SeedModel | str, opts: DoseOptions | None = None) -> DoseKernel:
    """The (cached) kernel of a catalogue model; a model given as an object is tabulated afresh."""
    opts = opts or DoseOptions()
    if isinstance(model, str):
        return _kernel_cached(get_seed_model(model).name, opts)
    try:
        same = get_seed_model(model.name) == model
    except InputError:
        same = False
    return _kernel_cached(model.name, opts) if same else build_kernel(model, opts)


# ---- seeds on grids --------------------------------------------------------------------------
def seed_array(seeds: Sequence[Seed]) -> np.ndarray:
    """Rows x, y, z, dx, dy, dz, S_K for the compiled kernels (validated: positive, finite)."""
    if len(seeds) == 0:
        return np.zeros((0, 7))
    arr = np.array([[*s.position_lps, *s.direction_lps, s.air_kerma_strength_U] for s in seeds], dtype=float)
    if not np.all(np.isfinite(arr)):
        raise InputError("seed positions, directions and strengths must be finite", field="seeds")
    if np.any(arr[:, 6] <= 0):
        raise InputError("every seed needs a positive air-kerma strength (zero activity?)", field="seeds")
    return arr


def _grid_of(geometry: Grid | Volume) -> Grid:
    if isinstance(geometry, Volume):
        return geometry.grid
    if isinstance(geometry, Grid):
        return geometry
    raise InputError(f"dose grid must be a Grid or a Volume, got {type(geometry).__name__}")


def _boxes(grid: Grid, arr: np.ndarray, radius_mm: float) -> np.ndarray:
    """Inclusive index boxes (i0, i1, j0, j1, k0, k1) of each seed's kernel sphere, clipped."""
    inv = np.linalg.inv(grid.affine)
    centre = arr[:, :3] @ inv[:3, :3].T + inv[:3, 3]
    half = radius_mm * np.linalg.norm(inv[:3, :3], axis=1)
    lo = np.ceil(centre - half).astype(np.int64)
    hi = np.floor(centre + half).astype(np.int64)
    n = np.array(grid.shape_ijk)
    lo = np.clip(lo, 0, n - 1)
    hi = np.clip(hi, -1, n - 1)
    empty = np.any(centre + half < 0, axis=1) | np.any(centre - half > n - 1, axis=1)
    hi[empty] = lo[empty] - 1
    return np.ascontiguousarray(np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1], lo[:, 2], hi[:, 2]], 1))


def dose_rate_grid(seeds: Sequence[Seed], model: SeedModel | str, geometry: Grid | Volume,
                   options: DoseOptions | None = None) -> np.ndarray:
    """Initial dose rate (cGy/h) of all ``seeds`` on the voxel grid of ``geometry``, array [k, j, i].

    >>> from openir.core.volume import make_affine
    >>> g = Grid((41, 41, 41), make_affine((1.0, 1.0, 1.0), origin=(-20.0, -20.0, -20.0)))
    >>> rate = dose_rate_grid([Seed(position_lps=(0, 0, 0), air_kerma_strength_U=1.0)], "6711", g)
    >>> round(float(rate[20, 20, 30]), 3)  # 10 mm along x, transverse to the seed: Lambda x S_K
    0.965
    """
    grid = _grid_of(geometry)
    kern = kernel_for(model, options)
    arr = seed_array(seeds)
    out = np.zeros(grid.shape, dtype=np.float64)
    if len(arr):
        accumulate_grid(out, np.ascontiguousarray(grid.affine), arr, _boxes(grid, arr, kern.r_max_mm),
                        kern.table, kern.dr_mm, kern.r_max_mm)
    return out


def dose_rate_at_points(seeds: Sequence[Seed], model: SeedModel | str, points_lps,
                        options: DoseOptions | None = None) -> np.ndarray:
    """Initial dose rate (cGy/h) at LPS points ``(n, 3)`` mm, through the same kernel as the grid."""
    kern = kernel_for(model, options)
    pts = np.ascontiguousarray(np.asarray(points_lps, dtype=float).reshape(-1, 3))
    arr = seed_array(seeds)
    out = np.zeros(len(pts))
    if len(arr) and len(pts):
        accumulate_points(out, pts, arr, kern.table, kern.dr_mm, kern.r_max_mm)
    return out


def total_dose_gy(seeds: Sequence[Seed], model: SeedModel | str, geometry: Grid | Volume,
                  options: DoseOptions | None = None, hours: float | None = None) -> np.ndarray:
    """Total dose (Gy) of a permanent implant on the grid: initial rate x tau (or up to ``hours``)."""
    m = get_seed_model(model) if isinstance(model, str) else model
    return total_dose_gy_from_rate(dose_rate_grid(seeds, m, geometry, options), m, hours)


def influence_matrix_rate(seeds_rows: np.ndarray, model: SeedModel | str, points_lps,
                          options: DoseOptions | None = None) -> np.ndarray:
    """Dose rate (cGy/h, float32) at each point (rows) from each seed (columns): the planner's matrix.

    ``seeds_rows``: array (n, 7) as `seed_array` returns (x, y, z, dx, dy, dz, S_K).
    """
    kern = kernel_for(model, options)
    pts = np.ascontiguousarray(np.asarray(points_lps, dtype=float).reshape(-1, 3))
    rows = np.ascontiguousarray(np.asarray(seeds_rows, dtype=float).reshape(-1, 7))
    out = np.zeros((len(pts), len(rows)), dtype=np.float32)
    if out.size:
        influence_matrix(out, pts, rows, kern.table, kern.dr_mm, kern.r_max_mm)
    return out
