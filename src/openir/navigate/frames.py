"""Frames and poses: OpenIR works in the DICOM patient frame (LPS); OpenIGTLink peers such as
3D Slicer's OpenIGTLinkIF expect RAS. The conversion happens here and only at the bridge.

A needle pose is a 4x4 matrix whose origin is the needle tip and whose +z axis is the direction
the needle advances (entry toward tip); x and y complete a right-handed frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse


def lps_to_ras_points(p: np.ndarray | Sequence) -> np.ndarray:
    """Points (..., 3) from LPS to RAS (x and y change sign).

    >>> lps_to_ras_points([10.0, -20.0, 30.0]).tolist()
    [-10.0, 20.0, 30.0]
    """
    q = np.array(p, dtype=float)
    q[..., :2] *= -1.0
    return q


ras_to_lps_points = lps_to_ras_points


def lps_to_ras_matrix(m: np.ndarray) -> np.ndarray:
    """A pose or an index-to-world affine from LPS to RAS: ``RAS_FROM_LPS @ m``."""
    return RAS_FROM_LPS @ np.asarray(m, float)


def ras_to_lps_matrix(m: np.ndarray) -> np.ndarray:
    return RAS_FROM_LPS @ np.asarray(m, float)


def frame_from_direction(direction: Sequence[float]) -> np.ndarray:
    """3x3 rotation whose third column is the unit ``direction`` (a fixed, deterministic choice of x, y)."""
    z = np.asarray(direction, float)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def needle_pose(tip: Sequence[float], direction: Sequence[float]) -> np.ndarray:
    """4x4 pose: origin at ``tip``, +z along ``direction`` (advancing).

    >>> m = needle_pose((1, 2, 3), (0, 0, 2)); m[:3, 2].tolist(), m[:3, 3].tolist()
    ([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])
    """
    m = np.eye(4)
    m[:3, :3] = frame_from_direction(direction)
    m[:3, 3] = np.asarray(tip, float)
    return m


def is_rigid(m: np.ndarray, tol: float = 1e-3) -> bool:
    """True for a finite 4x4 rotation + translation (orthonormal, det +1, last row 0 0 0 1).

    >>> is_rigid(np.eye(4)), is_rigid(np.diag([-1.0, 1, 1, 1]))
    (True, False)
    """
    a = np.asarray(m, float)
    if a.shape != (4, 4) or not np.isfinite(a).all():
        return False
    r = a[:3, :3]
    e = r.T @ r
    e[0, 0] -= 1.0
    e[1, 1] -= 1.0
    e[2, 2] -= 1.0
    return bool(np.abs(e).max() < tol and abs(np.linalg.det(r) - 1.0) < tol
                and abs(a[3, 0]) + abs(a[3, 1]) + abs(a[3, 2]) + abs(a[3, 3] - 1.0) < 1e-6)
