"""`Grid` and `Volume`: an image array with its place in the patient.

Conventions (see DESIGN.md): geometry in millimetres in the DICOM patient frame (LPS); the affine
maps a voxel index ``(i, j, k)`` to LPS; arrays are stored ``[k, j, i]`` as SimpleITK returns them.
Spacing, origin and direction are derived from the affine, never stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import GeometryError

ArrayLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]]


def make_affine(
    spacing: Sequence[float],
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> np.ndarray:
    """Build a 4x4 index-to-LPS affine from spacing ``(si, sj, sk)``, origin and a 3x3 direction.

    The direction's columns are the unit vectors of the i, j and k axes in LPS (as in SimpleITK).

    >>> a = make_affine((0.8, 0.8, 2.0), origin=(-100.0, -120.0, 50.0))
    >>> a[:3, 3].tolist(), np.diag(a)[:3].tolist()
    ([-100.0, -120.0, 50.0], [0.8, 0.8, 2.0])
    """
    sp = np.asarray(spacing, dtype=float)
    if sp.shape != (3,) or np.any(sp <= 0) or not np.all(np.isfinite(sp)):
        raise GeometryError(f"spacing must be three positive numbers in mm, got {list(spacing)}")
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    a = np.eye(4)
    a[:3, :3] = d * sp[np.newaxis, :]
    a[:3, 3] = np.asarray(origin, dtype=float)
    return a


@dataclass(frozen=True)
class Grid:
    """A voxel grid: its shape ``(nk, nj, ni)`` (array order) and its index-to-LPS affine.

    >>> g = Grid((10, 20, 30), make_affine((1.0, 1.0, 2.5), origin=(-15.0, 0.0, 0.0)))
    >>> g.shape_ijk, g.voxel_volume_mm3
    ((30, 20, 10), 2.5)
    >>> g.index_to_world([2, 0, 4]).tolist()  # voxel (i, j, k) -> LPS mm
    [-13.0, 0.0, 10.0]
    >>> g.world_to_index([-13.0, 0.0, 10.0]).round(6).tolist()
    [2.0, 0.0, 4.0]
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(f"grid shape must be three positive sizes (k, j, i), got {self.shape}")
        aff = np.asarray(self.affine, dtype=float)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
            raise GeometryError("affine must be a finite 4x4 matrix")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-12:
            raise GeometryError("affine is singular (zero spacing or degenerate direction)")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", aff)

    # ---- derived geometry -------------------------------------------------------------------
    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """LPS position of voxel (0, 0, 0) centre, mm."""
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the i, j, k axis unit vectors in LPS."""
        return self.affine[:3, :3] / self.spacing[np.newaxis, :]

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return (self.shape[2], self.shape[1], self.shape[0])

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def extent_mm(self) -> np.ndarray:
        """Physical size along i, j, k (number of voxels times spacing)."""
        return np.array(self.shape_ijk) * self.spacing

    # ---- transforms ------------------------------------------------------------------------
    def index_to_world(self, ijk: ArrayLike) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` in (i, j, k) order to LPS mm."""
        p = np.asarray(ijk, dtype=float)
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, xyz: ArrayLike) -> np.ndarray:
        """Map LPS points ``(..., 3)`` to continuous voxel indices in (i, j, k) order."""
        p = np.asarray(xyz, dtype=float)
        inv = np.linalg.inv(self.affine)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def contains_index(self, ijk: ArrayLike) -> np.ndarray:
        """True where a continuous (i, j, k) index falls inside the grid (voxel centres -0.5..n-0.5)."""
        p = np.asarray(ijk, dtype=float)
        hi = np.array(self.shape_ijk) - 0.5
        return np.all((p >= -0.5) & (p < hi), axis=-1)

    def contains_world(self, xyz: ArrayLike) -> np.ndarray:
        return self.contains_index(self.world_to_index(xyz))

    def voxel_centres(self) -> np.ndarray:
        """LPS coordinates of every voxel centre, shape ``(nk, nj, ni, 3)``. Memory-heavy: crop first."""
        k, j, i = np.meshgrid(*(np.arange(n) for n in self.shape), indexing="ij")
        return self.index_to_world(np.stack([i, j, k], axis=-1))

    def same_as(self, other: Grid, tol_mm: float = 1e-3) -> bool:
        """True if both grids have the same shape and (within tolerance) the same affine."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=tol_mm))

    def subgrid(self, start_kji: Sequence[int], shape_kji: Sequence[int]) -> Grid:
        """The grid of the box starting at array index ``start_kji`` with ``shape_kji`` voxels."""
        k0, j0, i0 = (int(v) for v in start_kji)
        aff = self.affine.copy()
        aff[:3, 3] = self.index_to_world([i0, j0, k0])
        return Grid(tuple(int(s) for s in shape_kji), aff)  # type: ignore[arg-type]

    def describe(self) -> str:
        sp = ", ".join(f"{v:.3g}" for v in self.spacing)
        o = ", ".join(f"{v:.1f}" for v in self.origin)
        ni, nj, nk = self.shape_ijk
        return f"{ni} x {nj} x {nk} voxels, spacing ({sp}) mm, origin ({o}) mm LPS"


@dataclass
class Volume:
    """An image: array ``[k, j, i]`` plus the index-to-LPS affine and free-form metadata.

    Metadata holds what readers know (modality, series UID, units, source path); it is carried
    along by geometric operations.

    >>> ct = Volume(np.zeros((4, 5, 6), np.int16), make_affine((0.5, 0.5, 1.0)), {"modality": "CT"})
    >>> ct
    Volume(6 x 5 x 4 voxels, spacing (0.5, 0.5, 1) mm, origin (0.0, 0.0, 0.0) mm LPS, dtype=int16)
    >>> ct.array[2, 1, 3] = 60  # arrays are [k, j, i]: voxel i=3, j=1, k=2 is at (1.5, 0.5, 2) mm
    >>> ct.value_at([[1.5, 0.5, 2.0], [99.0, 0.0, 0.0]]).tolist()  # NaN outside the grid
    [60.0, nan]
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise GeometryError(f"a Volume array must be 3-D [k, j, i], got shape {arr.shape}")
        self.array = arr
        self.grid = Grid(arr.shape, self.affine)  # type: ignore[arg-type]
        self.affine = self.grid.affine

    # geometry passthroughs, so callers need not reach into .grid
    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.shape

    @property
    def spacing(self) -> np.ndarray:
        return self.grid.spacing

    @property
    def origin(self) -> np.ndarray:
        return self.grid.origin

    @property
    def direction(self) -> np.ndarray:
        return self.grid.direction

    def index_to_world(self, ijk: ArrayLike) -> np.ndarray:
        return self.grid.index_to_world(ijk)

    def world_to_index(self, xyz: ArrayLike) -> np.ndarray:
        return self.grid.world_to_index(xyz)

    def with_array(self, array: np.ndarray, **meta: Any) -> Volume:
        """A new Volume on the same grid with another array (same shape)."""
        if tuple(array.shape) != self.shape:
            raise GeometryError(f"array shape {array.shape} does not match grid shape {self.shape}")
        return Volume(array, self.affine.copy(), {**self.meta, **meta})

    def value_at(self, xyz: ArrayLike) -> np.ndarray:
        """Nearest-voxel values at LPS points ``(..., 3)``; NaN outside the grid (float result)."""
        idx = np.rint(self.world_to_index(xyz)).astype(int)
        inside = self.grid.contains_index(idx)
        out = np.full(idx.shape[:-1], np.nan)
        ii = idx[inside]
        out[inside] = self.array[ii[:, 2], ii[:, 1], ii[:, 0]]
        return out

    def __repr__(self) -> str:
        return f"Volume({self.grid.describe()}, dtype={self.array.dtype})"
