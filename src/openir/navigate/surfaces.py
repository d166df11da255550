"""Triangle surfaces of labelled structures (marching cubes, scikit-image) in LPS mm, for the
bridge (POLYDATA) and for surface-assisted registration (skin/organ points)."""

from __future__ import annotations

import numpy as np
from skimage.measure import marching_cubes

from openir.core import LabelMap


def label_surface(labels: LabelMap, names: list[str] | str, step_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) LPS mm, faces (M, 3)) of the union of ``names``; empty arrays if absent.

    The mask is cropped to its bounding box (+1 voxel) first, so a small structure in a big CT is fast.

    >>> from openir.core import make_affine
    >>> a = np.zeros((9, 9, 9), np.uint8); a[3:6, 3:6, 3:6] = 1
    >>> v, f = label_surface(LabelMap(a, make_affine((2, 2, 2)), labels={1: "cube"}), "cube")
    >>> bool(len(f) > 0), v.min(axis=0).tolist(), v.max(axis=0).tolist()   # half a voxel outside the centres
    (True, [5.0, 5.0, 5.0], [11.0, 11.0, 11.0])
    """
    values = [labels.value_of(n) for n in ([names] if isinstance(names, str) else names)]
    mask = np.isin(labels.array, values)
    if not mask.any():
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    idx = np.nonzero(mask)
    lo = np.maximum([a.min() - 1 for a in idx], 0)
    hi = np.minimum([a.max() + 2 for a in idx], mask.shape)
    sub = np.pad(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], 1).astype(np.float32)
    verts_kji, faces, _, _ = marching_cubes(sub, level=0.5, step_size=step_size, allow_degenerate=False)
    verts_kji = verts_kji - 1 + lo  # undo pad and crop
    world = verts_kji[:, ::-1] @ labels.affine[:3, :3].T + labels.affine[:3, 3]
    return world, faces.astype(np.int64)
