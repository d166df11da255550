"""Three-vectors as the result models carry them (LPS mm tuples), validated once for every package."""

from __future__ import annotations

import math

import numpy as np

Vec3 = tuple[float, float, float]


def unit3(v) -> Vec3:
    """``v`` scaled to unit length; a zero, non-finite or non-3 vector is a ValueError (pydantic validators)."""
    a = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(a))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError("direction must be a non-zero finite 3-vector")
    return tuple(float(x) for x in a / n)  # type: ignore[return-value]


def finite3(v) -> Vec3:
    """``v`` as three finite floats (a position in mm); anything else is a ValueError."""
    a = np.asarray(v, dtype=float).reshape(3)
    if not np.all(np.isfinite(a)):
        raise ValueError("position must be three finite numbers (mm)")
    return tuple(float(x) for x in a)  # type: ignore[return-value]
