"""Analytic tumour shapes inside a spherical ablation zone, with the exact minimal margin.

For a spherical zone (centre ``cz``, radius ``R``) the signed margin at a tumour-surface point x is
``R - |x - cz|``, so the minimal margin is ``R - max |x - cz|`` over the tumour. The farthest
point of each shape below is known in closed form (sphere, union of spheres, convex hull of a
sphere and a tip point) or to 1e-4 mm (ellipsoid, dense parametric search), which makes the
truth independent of any voxel grid. Masks are sampled at voxel centres, as a segmentation is.

>>> from openir.core import Grid, make_affine
>>> g = Grid((30, 30, 30), make_affine((1.0, 1.0, 1.0)))
>>> s = Scene(Sphere((15.2, 15.1, 14.9), 5.0), (15.2, 15.1, 14.9), 9.0)
>>> round(s.exact_margin_mm, 3), int(s.tumour_mask(g).sum()) > 0
(4.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from openir.core.volume import Grid


class Shape(Protocol):
    def inside(self, p: np.ndarray) -> np.ndarray: ...

    def farthest_from(self, q: np.ndarray) -> float: ...


@dataclass(frozen=True)
class Sphere:
    centre: tuple[float, float, float]
    radius: float

    def inside(self, p: np.ndarray) -> np.ndarray:
        return np.linalg.norm(p - np.asarray(self.centre), axis=-1) <= self.radius

    def farthest_from(self, q: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(self.centre) - q) + self.radius)


@dataclass(frozen=True)
class Ellipsoid:
    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]

    def inside(self, p: np.ndarray) -> np.ndarray:
        return (((p - np.asarray(self.centre)) / np.asarray(self.semi_axes)) ** 2).sum(-1) <= 1.0

    def farthest_from(self, q: np.ndarray) -> float:
        u, v = np.meshgrid(np.linspace(0, np.pi, 721), np.linspace(0, 2 * np.pi, 1441), indexing="ij")
        pts = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1) * np.asarray(self.semi_axes)
        d = np.linalg.norm(pts + np.asarray(self.centre) - q, axis=-1)
        return float(d.max())


@dataclass(frozen=True)
class Pointed:
    """Convex hull of a sphere and a tip point: a tumour with a sharp spur (teardrop)."""

    centre: tuple[float, float, float]
    radius: float
    tip: tuple[float, float, float]

    def inside(self, p: np.ndarray) -> np.ndarray:
        c, tip = np.asarray(self.centre), np.asarray(self.tip)
        axis = c - tip
        length = float(np.linalg.norm(axis))
        u = axis / length
        along = (p - tip) @ u  # distance from the tip towards the centre
        radial = np.linalg.norm((p - tip) - along[..., None] * u, axis=-1)
        cos_a = np.sqrt(1.0 - (self.radius / length) ** 2)
        tan_a = (self.radius / length) / cos_a
        in_cone = (along >= 0) & (along <= length * cos_a**2) & (radial <= along * tan_a)
        return in_cone | (np.linalg.norm(p - c, axis=-1) <= self.radius)

    def farthest_from(self, q: np.ndarray) -> float:  # max of a convex function: at the tip or sphere
        return max(float(np.linalg.norm(np.asarray(self.tip) - q)),
                   float(np.linalg.norm(np.asarray(self.centre) - q) + self.radius))


@dataclass(frozen=True)
class Lobulated:
    """Union of overlapping spheres: a lobulated tumour with concave clefts."""

    lobes: tuple[Sphere, ...]

    def inside(self, p: np.ndarray) -> np.ndarray:
        out = np.zeros(p.shape[:-1], dtype=bool)
        for s in self.lobes:
            out |= s.inside(p)
        return out

    def farthest_from(self, q: np.ndarray) -> float:
        return max(s.farthest_from(q) for s in self.lobes)


@dataclass(frozen=True)
class Scene:
    """A tumour shape and a spherical ablation zone (LPS mm)."""

    tumour: Shape
    zone_centre: tuple[float, float, float]
    zone_radius: float

    @property
    def exact_margin_mm(self) -> float:
        return self.zone_radius - self.tumour.farthest_from(np.asarray(self.zone_centre, float))

    def tumour_mask(self, grid: Grid) -> np.ndarray:
        return self.tumour.inside(grid.voxel_centres())

    def zone_mask(self, grid: Grid) -> np.ndarray:
        return Sphere(self.zone_centre, self.zone_radius).inside(grid.voxel_centres())


__all__ = ["Ellipsoid", "Lobulated", "Pointed", "Scene", "Shape", "Sphere"]
