"""Do two images share one patient frame? The check every command makes before it overlays a label
map on a CT: same shape, origin, spacing and direction within tolerance. A label map with the CT's
shape but another origin or spacing would otherwise be planned silently, millimetres off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openir.core.errors import GeometryError
from openir.core.volume import Grid

ORIGIN_TOL_FRACTION = 0.1  # of the smallest voxel
SPACING_TOL_REL = 1e-3
DIRECTION_TOL = 1e-3  # direction cosines


def frame_mismatch(a: Grid, b: Grid) -> str | None:
    """What differs between two grids' patient frames (one phrase), or None when they agree.

    >>> from openir.core import make_affine
    >>> g = Grid((2, 3, 4), make_affine((1, 1, 2), (0, 0, 0)))
    >>> frame_mismatch(g, Grid((2, 3, 4), make_affine((1, 1, 2), (0, 30, 0))))
    'origin differs by 30.0 mm ((0.0, 0.0, 0.0) vs (0.0, 30.0, 0.0) mm LPS)'
    """
    if a.shape != b.shape:
        return f"grid size differs ({' x '.join(map(str, a.shape_ijk))} vs {' x '.join(map(str, b.shape_ijk))} voxels)"
    sa, sb = a.spacing, b.spacing
    if np.any(np.abs(sa - sb) > SPACING_TOL_REL * np.maximum(sa, sb)):
        return (f"spacing differs ({', '.join(f'{v:.4g}' for v in sa)} vs {', '.join(f'{v:.4g}' for v in sb)} mm)")
    if np.any(np.abs(a.direction - b.direction) > DIRECTION_TOL):
        return "orientation (direction cosines) differs"
    d = float(np.linalg.norm(a.origin - b.origin))
    if d > ORIGIN_TOL_FRACTION * float(min(sa.min(), sb.min())):
        oa = ", ".join(f"{v:.1f}" for v in a.origin)
        ob = ", ".join(f"{v:.1f}" for v in b.origin)
        return f"origin differs by {d:.1f} mm (({oa}) vs ({ob}) mm LPS)"
    return None


def require_same_frame(image: Grid, labels: Grid, image_path: str | Path, labels_path: str | Path) -> None:
    """Raise GeometryError in one line naming both files unless they share the patient frame."""
    why = frame_mismatch(image, labels)
    if why is not None:
        raise GeometryError(f"label map {labels_path} is not on the grid of the image {image_path}: {why}; "
                            "resample it onto the image first (nothing was planned)")
