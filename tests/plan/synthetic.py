"""Small synthetic abdomen-like label maps for the plan tests (numpy + core only)."""

from __future__ import annotations

import numpy as np

from openir.core import Grid, LabelMap, make_affine


def small_case(spacing=(1.0, 1.0, 1.5), shape_ijk=(64, 56, 40), seed: int = 0):
    """Body ellipsoid with fat, a liver, a tumour, ribs, an aorta, a gallbladder, a lung and bowel.

    Returns (labels, target_lps).
    """
    rng = np.random.default_rng(seed)
    ni, nj, nk = shape_ijk
    origin = (-ni * spacing[0] / 2, -nj * spacing[1] / 2, -nk * spacing[2] / 2)
    grid = Grid((nk, nj, ni), make_affine(spacing, origin))
    p = grid.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 28) ** 2 + (y / 24) ** 2 <= 1.0
    fat = body & ~((x / 25) ** 2 + (y / 21) ** 2 <= 1.0)
    liver = ((x + 8) / 14) ** 2 + (y / 12) ** 2 + (z / 20) ** 2 <= 1.0
    tumour = (x + 8 + rng.uniform(-1, 1)) ** 2 + (y - 2) ** 2 + z**2 <= 9.0
    gall = (x + 2) ** 2 + (y + 12) ** 2 + (z - 4) ** 2 <= 16.0
    aorta = ((x - 6) ** 2 + (y - 12) ** 2 <= 9.0) & body
    ang = np.arctan2(y, x)
    ribs = (~((x / 25) ** 2 + (y / 21) ** 2 <= 0.85)) & ~fat & body & (np.abs(np.sin(z / 2.2)) > 0.6) & (ang < 0.5)
    lung = body & (z > 18) & ((x + 8) ** 2 + y**2 < 220)
    bowel = body & (((x - 12) / 6) ** 2 + ((y + 6) / 6) ** 2 + ((z + 10) / 8) ** 2 <= 1.0)
    masks = {"fat": fat, "muscle": body & ~fat, "liver": liver, "lung": lung, "ribs": ribs,
             "aorta": aorta, "gallbladder": gall, "bowel": bowel, "tumour_1": tumour}
    labels = LabelMap.from_masks(masks, grid)
    target = np.array([-8.0, 2.0, 0.0])
    return labels, target
