"""`Canvas`: the label and HU arrays being painted, their geometry and the label registry.

Structures are painted in order; each paint call takes an ``allow`` list of the labels it may
overwrite, which is how priorities are expressed (vessel wins over tumour, organs never leak
outside the body). Each call touches only the box around its structure unless ``full_boxes`` is
set (used by the benchmark as the naive baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from openir.core import Grid, make_affine

from . import kernels

_EDGE_MM = 1.0  # width of the soft HU edge (partial volume), mm


def rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Rotation matrix R = Rz(yaw) Ry(pitch) Rx(roll); its columns are the rotated axes."""
    a, b, c = np.radians([yaw_deg, pitch_deg, roll_deg])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    return rz @ ry @ rx


def ellipsoid(centre: Sequence[float], semi_mm: Sequence[float], rot: np.ndarray | None = None) -> np.ndarray:
    """One lobe row for `kernels.paint_blob`: centre, A = diag(1/semi) R^T, smallest semi-axis."""
    r = np.eye(3) if rot is None else np.asarray(rot, float)
    semi = np.asarray(semi_mm, float)
    a = np.diag(1.0 / semi) @ r.T
    return np.concatenate([np.asarray(centre, float), a.ravel(), [semi.min()]])


def lobe_extent(lobe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS bounds of an ellipsoid lobe row."""
    m = np.linalg.inv(lobe[3:12].reshape(3, 3))
    half = np.linalg.norm(m, axis=1)
    return lobe[:3] - half, lobe[:3] + half


class NoiseField:
    """Smooth unit-variance random field on a coarse grid, sampled trilinearly by the kernels."""

    def __init__(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, spacing_mm: float):
        n = np.ceil((np.asarray(hi) - np.asarray(lo)) / spacing_mm).astype(int) + 3
        g = ndimage.gaussian_filter(rng.standard_normal((n[2], n[1], n[0])), 1.0, mode="wrap")
        self.grid = (g / (g.std() + 1e-12)).astype(np.float64)
        self.origin = np.asarray(lo, float) - spacing_mm
        self.spacing = np.full(3, float(spacing_mm))


@dataclass(frozen=True)
class BlobStyle:
    """How a blob's surface looks: rounded joins, noisy outline, a wall of another HU, soft edge.

    ``smooth_mm`` blends the lobes (smooth union); ``noise`` displaces the surface by up to about
    ``noise_mm`` along a smooth random field; ``shell_mm`` > 0 paints a wall of ``shell_hu`` inside
    the surface; ``edge_mm`` is the partial-volume width of the HU edge.
    """

    smooth_mm: float = 0.0
    noise: NoiseField | None = None
    noise_mm: float = 0.0
    shell_mm: float = 0.0
    shell_hu: float = 0.0
    edge_mm: float = _EDGE_MM


class Canvas:
    """Label and HU arrays on an axis-aligned LPS grid (identity direction)."""

    def __init__(self, shape_kji: tuple[int, int, int], origin_xyz: np.ndarray, spacing_xyz: np.ndarray,
                 full_boxes: bool = False):
        self.shape = tuple(int(s) for s in shape_kji)
        self.origin = np.asarray(origin_xyz, float)
        self.spacing = np.asarray(spacing_xyz, float)
        # every voxel is written by the body-wall pass first (`common.body_wall`)
        self.labels = np.empty(self.shape, np.uint8)
        self.hu = np.empty(self.shape, np.int16)
        self.names: dict[str, int] = {}
        self.full_boxes = full_boxes
        self.lo = self.origin
        self.hi = self.origin + (np.array(self.shape[::-1]) - 1) * self.spacing

    @property
    def grid(self) -> Grid:
        return Grid(self.shape, make_affine(self.spacing, self.origin))

    def value(self, name: str) -> int:
        """The label value of ``name``, registering it on first use."""
        if name not in self.names:
            if len(self.names) >= 255:
                raise ValueError("too many labels for a uint8 label map")
            self.names[name] = len(self.names) + 1
        return self.names[name]

    def allow(self, *names: str, air: bool = False) -> np.ndarray:
        lut = np.zeros(256, np.bool_)
        lut[0] = air
        for n in names:
            lut[self.value(n)] = True
        return lut

    def allow_except(self, *names: str) -> np.ndarray:
        lut = np.ones(256, np.bool_)
        lut[0] = False
        for n in names:
            if n in self.names:
                lut[self.names[n]] = False
        return lut

    def box(self, lo_xyz: np.ndarray, hi_xyz: np.ndarray) -> np.ndarray:
        """Index box (k0, k1, j0, j1, i0, i1) covering an LPS box, clipped to the grid."""
        if self.full_boxes:
            return np.array([0, self.shape[0], 0, self.shape[1], 0, self.shape[2]], np.int64)
        a = np.floor((np.asarray(lo_xyz) - self.origin) / self.spacing).astype(int)
        b = np.ceil((np.asarray(hi_xyz) - self.origin) / self.spacing).astype(int) + 1
        n = np.array(self.shape[::-1])
        a, b = np.clip(a, 0, n), np.clip(b, 0, n)
        return np.array([a[2], b[2], a[1], b[1], a[0], b[0]], np.int64)

    # ---- painters ---------------------------------------------------------------------------
    def blob(self, name: str, lobes: Sequence[np.ndarray], *, hu: float, allow: np.ndarray,
             planes: Sequence[Sequence[float]] = (), style: BlobStyle | None = None) -> None:
        """Paint the smooth union of ellipsoid ``lobes``, cut by ``planes`` (n.x <= d), as ``name``."""
        st = style or BlobStyle()
        lobes_a = np.ascontiguousarray(np.array(lobes, float).reshape(-1, 13))
        ext = [lobe_extent(lb) for lb in lobes_a]
        pad = st.smooth_mm + 3 * abs(st.noise_mm) + st.edge_mm
        lo = np.min([e[0] for e in ext], axis=0) - pad
        hi = np.max([e[1] for e in ext], axis=0) + pad
        box = self.box(lo, hi)
        if np.any(box[1::2] <= box[0::2]):
            return
        pl = np.ascontiguousarray(np.array(planes, float).reshape(-1, 4))
        nf = st.noise if st.noise is not None else _ZERO_NOISE
        kernels.paint_blob(self.labels, self.hu, box, self.origin, self.spacing, lobes_a, float(st.smooth_mm), pl,
                           nf.grid, nf.origin, nf.spacing, float(st.noise_mm if st.noise is not None else 0.0),
                           np.uint8(self.value(name)), float(hu), float(st.edge_mm), allow,
                           float(st.shell_mm), float(st.shell_hu))

    def tubes(self, name: str, segs: np.ndarray, *, hu: float | Sequence[float], allow: np.ndarray,
              mode: int = 0, shell_mm: float = 0.0, edge_mm: float = _EDGE_MM) -> None:
        """Paint tapered capsules ``segs[s] = (p0, p1, r0, r1[, aux])`` as ``name``, one box each.

        Segments run one after another (so overlapping joints blend deterministically); each
        box is split over threads by slice when it is large.
        """
        segs = np.asarray(segs, float)
        if segs.size == 0:
            return
        if segs.shape[1] == 8:
            segs = np.concatenate([segs, np.zeros((len(segs), 1))], axis=1)
        value = np.uint8(self.value(name))
        allow = allow.copy()
        allow[value] = True  # a tube's own joints: the kernel keeps interiors already painted
        hus = np.atleast_1d(np.asarray(hu, float))
        hus = np.concatenate([hus, np.zeros(3 - len(hus))])
        segs = np.ascontiguousarray(segs, dtype=np.float64)
        boxes = kernels.segment_boxes(segs, self.origin, self.spacing, self.labels.shape, float(edge_mm) + 1.0,
                                      self.full_boxes)
        for s in range(segs.shape[0]):
            b = boxes[s]
            if b[1] <= b[0] or b[3] <= b[2] or b[5] <= b[4]:
                continue
            n_vox = (b[1] - b[0]) * (b[3] - b[2]) * (b[5] - b[4])
            run = kernels.segment_parallel if n_vox >= kernels.PARALLEL_MIN_VOXELS else kernels.segment_serial
            run(self.labels, self.hu, b, self.origin, self.spacing, segs[s], value, hus, float(edge_mm), allow,
                float(shell_mm), int(mode))


class _Zero:
    grid = np.zeros((2, 2, 2))
    origin = np.zeros(3)
    spacing = np.ones(3)


_ZERO_NOISE = _Zero()


def polyline_segments(points: np.ndarray, radii: np.ndarray | float, aux: float = 0.0,
                      step_mm: float | None = None) -> np.ndarray:
    """Segments ``(p0, p1, r0, r1, aux)`` along a polyline (optionally resampled by a spline)."""
    pts = np.asarray(points, float)
    r = np.broadcast_to(np.asarray(radii, float), (len(pts),)).copy()
    if step_mm is not None and len(pts) >= 3:
        from scipy.interpolate import CubicSpline

        t = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        n = max(2, int(np.ceil(t[-1] / step_mm)) + 1)
        tt = np.linspace(0, t[-1], n)
        pts = CubicSpline(t, pts, bc_type="natural")(tt)
        r = np.interp(tt, t, r)
    segs = np.zeros((len(pts) - 1, 9))
    segs[:, 0:3], segs[:, 3:6] = pts[:-1], pts[1:]
    segs[:, 6], segs[:, 7], segs[:, 8] = r[:-1], r[1:], aux
    return segs
