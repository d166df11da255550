"""Branching vessel (and airway) trees grown inside an organ, as tapered capsule segments.

A tree grows from one or more roots. Each branch runs ~5-8 radii, then splits in two with
Murray's law (r^3 = r1^3 + r2^3) and a random asymmetry; the thinner child turns more. A branch
that would leave the organ (signed distance ``inside(p) > -(r + margin)``) or enter an obstacle
tries other directions, then stops. Growth stops at ``r_min_mm`` (1.5 mm: 3 mm diameter).
Growth can be paused at a radius (`grow(until_r_mm=...)`) so tumours can be placed against the
main branches before the small ones grow around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Inside = Callable[[np.ndarray], np.ndarray]  # (n, 3) LPS mm -> signed distance mm, < 0 inside


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of ``v`` about unit ``axis``."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * np.dot(axis, v) * (1 - np.cos(angle))


def point_segment_distance(p: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance from point ``p`` (3,) to each segment axis ``segs[:, 0:6]``."""
    a, b = segs[:, 0:3], segs[:, 3:6]
    d = b - a
    dd = np.maximum((d * d).sum(1), 1e-12)
    t = np.clip(((p - a) * d).sum(1) / dd, 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * d), axis=1)


@dataclass
class Tree:
    """A growing tree; ``segments`` rows are ``(p0, p1, r0, r1, generation)``."""

    inside: Inside
    rng: np.random.Generator
    r_min_mm: float = 1.5
    margin_mm: float = 1.0
    max_segments: int = 500
    obstacles: list[tuple[np.ndarray, float]] = field(default_factory=list)
    segments: list[np.ndarray] = field(default_factory=list)
    tips: list[tuple[np.ndarray, np.ndarray, float, int]] = field(default_factory=list)

    def add_root(self, p: np.ndarray, d: np.ndarray, r_mm: float) -> None:
        self.tips.append((np.asarray(p, float), _unit(np.asarray(d, float)), float(r_mm), 0))

    def array(self) -> np.ndarray:
        return np.array(self.segments).reshape(-1, 9)

    def grow(self, until_r_mm: float = 0.0) -> None:
        """Grow every tip whose radius is >= ``until_r_mm`` (breadth first), keep the rest."""
        waiting = []
        while self.tips and len(self.segments) < self.max_segments:
            p, d, r, gen = self.tips.pop(0)
            if r < until_r_mm:
                waiting.append((p, d, r, gen))
                continue
            self._branch(p, d, r, gen)
        self.tips = waiting + self.tips

    def _ok(self, p: np.ndarray, q: np.ndarray, r: float, first: bool) -> bool:
        ts = np.array([0.5, 1.0]) if first else np.array([0.34, 0.67, 1.0])
        pts = p[None, :] + ts[:, None] * (q - p)[None, :]
        if np.any(self.inside(pts) > -(r + self.margin_mm)):
            return False
        for c, rad in self.obstacles:
            if np.any(np.linalg.norm(pts - c, axis=1) < rad + r + 1.0):
                return False
        return True

    def _branch(self, p: np.ndarray, d: np.ndarray, r: float, gen: int) -> None:
        rng = self.rng
        for attempt in range(8):
            dd = d if attempt == 0 else _unit(d + rng.normal(0.0, 0.35 + 0.1 * attempt, 3))
            length = max(6.0, r * rng.uniform(5.0, 8.0)) * (0.6 if attempt >= 4 else 1.0)
            q = p + dd * length
            if self._ok(p, q, r, first=gen == 0):
                break
        else:
            return
        r_end = max(self.r_min_mm, 0.96 * r)
        self.segments.append(np.concatenate([p, q, [r, r_end, gen]]))
        lam = rng.uniform(0.55, 1.0)
        r1 = r_end / (1 + lam**3) ** (1 / 3)
        r2 = lam * r1
        if r1 < self.r_min_mm:
            return
        axis = _unit(np.cross(dd, rng.normal(size=3)))
        a1, a2 = np.radians(rng.uniform(15, 35)), np.radians(rng.uniform(35, 65))
        self.tips.append((q, _unit(_rotate(dd, axis, a1)), r1, gen + 1))
        if r2 >= self.r_min_mm:
            self.tips.append((q, _unit(_rotate(dd, axis, -a2)), r2, gen + 1))
