"""Tumour shapes, their placement in an organ, and painting them (on any grid).

Shapes are signed-distance functions in mm around a centre: a sphere, a rotated ellipsoid
(axis ratios ~1.3 : 1 : 0.8) or a lobulated blob (smooth union of a core sphere and 3-5 offset
spheres). Every shape is scaled so its volume equals that of a sphere of the requested diameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from openir.core import Grid, InputError

from .canvas import rotation
from .models import TumourSpec
from .vessels import point_segment_distance

_EDGE_MM = 1.5


def _smin_np(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


@dataclass
class TumourShape:
    kind: str
    rot: np.ndarray  # columns: local axes in LPS
    semi: np.ndarray  # ellipsoid semi-axes, mm (sphere: equal)
    lobe_c: np.ndarray  # (m, 3) lobulated: lobe centres in local mm
    lobe_r: np.ndarray  # (m,) lobe radii, mm
    smooth_mm: float
    bound_mm: float  # radius of a sphere enclosing the shape
    r_eq_mm: float  # volume-equivalent radius
    centre: np.ndarray = None  # type: ignore[assignment]

    def local_sdf(self, q: np.ndarray) -> np.ndarray:
        """Signed distance (mm, approximate outside) at local points ``(..., 3)``."""
        if self.kind == "lobulated":
            f = np.linalg.norm(q - self.lobe_c[0], axis=-1) - self.lobe_r[0]
            for c, r in zip(self.lobe_c[1:], self.lobe_r[1:], strict=True):
                f = _smin_np(f, np.linalg.norm(q - c, axis=-1) - r, self.smooth_mm)
            return f
        return (np.linalg.norm(q / self.semi, axis=-1) - 1.0) * self.semi.min()

    def sdf(self, pts: np.ndarray) -> np.ndarray:
        return self.local_sdf((np.asarray(pts, float) - self.centre) @ self.rot)

    def radius_along(self, u: np.ndarray) -> float:
        """Distance from the centre to the surface along LPS direction ``u`` (bisection)."""
        ul = (np.asarray(u, float) / np.linalg.norm(u)) @ self.rot
        lo, hi = 0.0, self.bound_mm * 1.05
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            if self.local_sdf(ul * mid) < 0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


def make_shape(rng: np.random.Generator, diameter_mm: float, kind: str) -> TumourShape:
    """A shape of volume pi/6 d^3, randomly oriented."""
    r_eq = diameter_mm / 2.0
    rot = rotation(*rng.uniform(0, 360, 3))
    empty = np.zeros((0, 3))
    if kind == "sphere":
        return TumourShape(kind, rot, np.full(3, r_eq), empty, np.zeros(0), 0.0, r_eq, r_eq)
    if kind == "ellipsoid":
        a, b = rng.uniform(1.2, 1.4), rng.uniform(0.85, 1.0)
        semi = r_eq * np.array([a, b, 1.0 / (a * b)])
        return TumourShape(kind, rot, semi, empty, np.zeros(0), 0.0, float(semi.max()), r_eq)
    if kind != "lobulated":
        raise InputError(f"unknown tumour shape {kind!r}", field="shape")
    m = int(rng.integers(3, 6))
    dirs = rng.normal(size=(m, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    cen = np.vstack([[0, 0, 0], dirs * rng.uniform(0.45, 0.65, (m, 1))])
    rad = np.concatenate([[1.0], rng.uniform(0.45, 0.65, m)])
    unit = TumourShape(kind, np.eye(3), np.ones(3), cen, rad, 0.25, float(np.max(np.linalg.norm(cen, axis=1) + rad)), 1)
    # volume of the unit shape by counting on a fine grid, then scale to the wanted volume
    n = 64
    ax = (np.arange(n) + 0.5) / n * 4.0 - 2.0
    q = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1)
    v_unit = float((unit.local_sdf(q) < 0).sum()) * (4.0 / n) ** 3
    s = r_eq / (3 * v_unit / (4 * np.pi)) ** (1 / 3)
    return TumourShape(kind, rot, np.ones(3), cen * s, rad * s, 0.25 * s, unit.bound_mm * s, r_eq)


@dataclass(frozen=True)
class TumourTone:
    """The CT numbers a painted tumour gets.

    ``hu`` is the target HU; ``texture_hu`` the SD of a smooth texture added on top. With
    ``reference_hu`` (a real CT) the contrast ``hu - reference_hu`` is added to the scan, which
    keeps its own noise; otherwise voxels are blended towards ``hu``.
    """

    hu: float
    texture_hu: float = 8.0
    reference_hu: float | None = None


def paint_tumour(labels: np.ndarray, hu: np.ndarray, grid: Grid, shape: TumourShape, value: int,
                 allowed_values: np.ndarray, tone: TumourTone, rng: np.random.Generator,
                 edge_mm: float = _EDGE_MM) -> int:
    """Paint ``shape`` into ``labels``/``hu`` (in place) where the current label is allowed.

    HU changes over a soft edge of ``edge_mm`` as ``tone`` says. Returns the number of labelled voxels.
    """
    half = shape.bound_mm + edge_mm + 2 * float(grid.spacing.max())
    corners = shape.centre + half * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    idx = grid.world_to_index(corners)
    lo = np.clip(np.floor(idx.min(0)).astype(int), 0, np.array(grid.shape_ijk))
    hi = np.clip(np.ceil(idx.max(0)).astype(int) + 1, 0, np.array(grid.shape_ijk))
    if np.any(hi <= lo):
        return 0
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    sub = grid.subgrid((lo[2], lo[1], lo[0]), (hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]))
    f = shape.sdf(sub.voxel_centres())
    lab = labels[box]
    ok = np.isin(lab, allowed_values)
    inside = (f < 0) & ok
    alpha = np.clip(0.5 - f / edge_mm, 0.0, 1.0) * ok
    tex = ndimage.gaussian_filter(rng.standard_normal(f.shape), 2.0 / float(grid.spacing.mean()) + 0.5)
    tex *= tone.texture_hu / (tex.std() + 1e-9)
    old = hu[box].astype(np.float32)
    if tone.reference_hu is None:
        new = old + (tone.hu + tex - old) * alpha
    else:
        new = old + (tone.hu - tone.reference_hu + tex) * alpha
    info = np.iinfo(hu.dtype) if np.issubdtype(hu.dtype, np.integer) else None
    if info is not None:
        new = np.clip(np.rint(new), info.min, info.max)
    hu[box] = new.astype(hu.dtype)
    lab[inside] = value
    return int(inside.sum())


class DepthMap:
    """Distance (mm) from inside an organ mask to its surface, on a coarse copy of the mask."""

    def __init__(self, mask: np.ndarray, grid: Grid, target_mm: float = 2.0):
        step = np.maximum(1, np.round(target_mm / grid.spacing[::-1]).astype(int))  # k, j, i
        self.step = step
        coarse = mask[:: step[0], :: step[1], :: step[2]]
        sampling = grid.spacing[::-1] * step
        self.depth = ndimage.distance_transform_edt(np.pad(coarse, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
        self.grid = grid
        self.sampling = sampling

    def at(self, pts: np.ndarray) -> np.ndarray:
        idx = np.rint(self.grid.world_to_index(np.atleast_2d(pts)))[:, ::-1] / self.step
        idx = np.rint(idx).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(self.depth.shape)), axis=1)
        out = np.zeros(len(idx))
        out[ok] = self.depth[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
        return out

    def gradient_at(self, p: np.ndarray) -> np.ndarray:
        """Unit LPS direction of increasing depth at ``p`` (finite differences)."""
        h = float(self.sampling.max())
        g = np.array([(self.at(p + h * e) - self.at(p - h * e))[0] for e in np.eye(3)])
        return g / (np.linalg.norm(g) + 1e-9)

    def candidates(self, lo_mm: float, hi_mm: float, rng: np.random.Generator, n: int = 400) -> np.ndarray:
        """Up to ``n`` random LPS points whose depth lies in ``[lo_mm, hi_mm]``."""
        kji = np.argwhere((self.depth >= lo_mm) & (self.depth <= hi_mm))
        if len(kji) == 0:
            return np.zeros((0, 3))
        kji = kji[rng.permutation(len(kji))[:n]] * self.step
        return self.grid.index_to_world(kji[:, ::-1].astype(float))


MIN_USABLE_FRACTION = 0.9  # of the shape's volume that must land in the organ and outside vessels


def usable_fraction(shape: TumourShape, centre: np.ndarray, depth: DepthMap, vessels: np.ndarray,
                    n: int = 400) -> float:
    """Share of the shape's volume, centred at ``centre``, inside the organ and outside every vessel.

    Painting only happens on organ voxels and vessels win, so a centre that passes the placement
    rules can still lose lobes to a vessel or the capsule; this checks what would really be painted.
    """
    g = np.random.default_rng(12345)  # fixed sample: placement stays a function of the seed alone
    q = g.uniform(-shape.bound_mm, shape.bound_mm, size=(4 * n, 3))
    q = q[shape.local_sdf(q) < 0][:n]
    if len(q) == 0:
        return 0.0
    pts = centre + q @ shape.rot.T
    ok = depth.at(pts) > 0
    if len(vessels):
        near = vessels[point_segment_distance(centre, vessels) < shape.bound_mm + vessels[:, 6] + vessels[:, 7]]
        if len(near):
            a, b = near[:, 0:3], near[:, 3:6]
            d = b - a
            dd = np.maximum((d * d).sum(1), 1e-12)
            t = np.clip(np.einsum("nmk,mk->nm", pts[:, None, :] - a[None], d) / dd, 0, 1)
            closest = a[None] + t[..., None] * d[None]
            r = near[None, :, 6] + t * (near[None, :, 7] - near[None, :, 6])
            ok &= np.all(np.linalg.norm(pts[:, None, :] - closest, axis=-1) > r, axis=1)
    return float(ok.mean())


def place(spec: TumourSpec, shape: TumourShape, depth: DepthMap, rng: np.random.Generator,
          vessels: np.ndarray, placed: list[TumourShape], min_vessel_r_mm: float = 2.5,
          avoid: np.ndarray | None = None) -> np.ndarray:
    """Choose a centre for ``shape`` following ``spec.location`` (see TumourSpec).

    central: tumour surface >= 15 mm deep (relaxed in 5 mm steps if the organ is too small);
    subcapsular: surface 0-3 mm from the capsule towards the nearest capsule point;
    perivascular: touching a vessel segment of radius >= ``min_vessel_r_mm``.
    All: clear of other tumours (2 mm) and, except perivascular, of the given vessel segments; at
    least `MIN_USABLE_FRACTION` of the volume inside the organ and outside ``vessels`` and ``avoid``
    (segments that are not candidates to touch, e.g. the IVC, but will be painted over the organ).
    """
    loc = spec.location
    blocking = vessels if avoid is None or not len(avoid) else np.vstack([vessels, avoid]) if len(vessels) else avoid

    def clear(c: np.ndarray, vessel_gap: float) -> bool:
        for o in placed:
            if np.linalg.norm(c - o.centre) < o.bound_mm + shape.bound_mm + 2.0:
                return False
        gap = vessel_gap is not None and len(vessels)
        if gap and np.any(point_segment_distance(c, vessels) < vessels[:, 6] + shape.bound_mm + vessel_gap):
            return False
        return usable_fraction(shape, c, depth, blocking) >= MIN_USABLE_FRACTION

    if not isinstance(loc, str):
        return np.asarray(loc, float)
    if loc == "central":
        for margin in (15.0, 10.0, 5.0):
            for c in depth.candidates(shape.bound_mm + margin, 1e9, rng):
                if clear(c, 1.0):
                    return c
    elif loc == "subcapsular":
        for c in depth.candidates(0.6 * shape.r_eq_mm, 1.6 * shape.bound_mm, rng, n=1500):
            g = depth.gradient_at(c)
            rho = shape.radius_along(-g)
            d = float(depth.at(c)[0])
            if rho - 1.0 <= d <= rho + 2.0 and clear(c, 1.0):
                return c
    elif loc == "perivascular":
        big = vessels[vessels[:, 6] >= min_vessel_r_mm] if len(vessels) else vessels
        order = rng.permutation(len(big))
        for need in (shape.bound_mm + 1.0, shape.r_eq_mm, 0.7 * shape.r_eq_mm):
            for s in order:
                seg = big[s]
                for _ in range(6):
                    t = rng.uniform(0.25, 0.75)
                    a = seg[0:3] + t * (seg[3:6] - seg[0:3])
                    axis = seg[3:6] - seg[0:3]
                    u = np.cross(axis, rng.normal(size=3))
                    u /= np.linalg.norm(u) + 1e-12
                    r = seg[6] + t * (seg[7] - seg[6])
                    c = a + u * (r + shape.radius_along(-u) + 0.3)
                    if depth.at(c)[0] < need or not clear(c, None):
                        continue
                    dist = point_segment_distance(c, vessels)
                    rmin = shape.radius_along(-u) if shape.kind == "sphere" else shape.r_eq_mm * 0.8
                    if np.all(dist >= vessels[:, 6] + rmin - 1.5):
                        return c
    raise InputError(f"cannot place a {spec.diameter_mm:g} mm {spec.shape} tumour ({loc}) in {spec.organ}: "
                     "organ too small or crowded", field="location")
