"""Small synthetic cases shared by the seed tests (a ball tumour in a box of muscle)."""

from __future__ import annotations

import numpy as np

from openir.core import LabelMap
from openir.core.volume import make_affine


def ball_case(radius_vox: int = 10, n: int = 60) -> LabelMap:
    """A ball tumour of ``radius_vox`` mm in a 1 mm box of muscle, air 3 mm thick at left and right."""
    a = np.full((n, n, n), 2, np.uint8)
    a[:, :, :3] = 0
    a[:, :, -3:] = 0
    z, y, x = np.ogrid[:n, :n, :n]
    c = n // 2
    a[(x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2 <= radius_vox**2] = 1
    return LabelMap(a, make_affine((1.0, 1.0, 1.0)), {}, {1: "tumour", 2: "muscle"})
