"""A synthetic navigated insertion for the demo, the tests and the benchmark (deterministic seed):
a tracker placed at a random rigid pose, skin fiducials touched with localisation noise, and a
needle that aligns outside the skin, goes in along the planned line with hand tremor and a slow
drift (optionally toward a chosen point, e.g. a vessel), pivoting about its skin entry, then holds.

Tremor: physiological hand tremor lies around 8-12 Hz with sub-millimetre amplitude (e.g. Elble RJ,
Koller WC, Tremor, 1990); the defaults here are of that order and are a modelling choice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .frames import needle_pose
from .models import PlannedPath


@dataclass
class InsertionSpec:
    """How the simulated needle moves. Times in s, distances in mm."""

    seed: int = 0
    rate_hz: float = 50.0
    duration_s: float = 60.0
    tremor_mm: float = 0.3           # RMS tip tremor (modelling choice, see module docstring)
    tremor_hz: float = 9.0
    drift_mm: float = 2.0            # lateral tip drift reached at full depth
    drift_toward_lps: Sequence[float] | None = None  # drift toward this point (else a random side)
    overshoot_mm: float = 0.0        # the tip stops this far beyond the planned tip
    align_fraction: float = 0.1      # time aligning outside the skin
    hold_fraction: float = 0.1       # time holding at depth
    fle_mm: float = 0.5              # RMS fiducial localisation error of the simulated pointer (3D)
    n_fiducials: int = 6


def random_rigid(rng: np.random.Generator, shift_mm: float = 300.0) -> np.ndarray:
    """A random rotation (uniform, from a normalised quaternion) and shift."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = rng.uniform(-shift_mm, shift_mm, 3)
    return m


@dataclass
class SimulatedSetup:
    tracker_from_image: np.ndarray
    fiducials_image_lps: np.ndarray
    fiducials_tracker: np.ndarray


def simulated_setup(spec: InsertionSpec, fiducial_candidates_lps: np.ndarray,
                    near_lps: Sequence[float]) -> SimulatedSetup:
    """A tracker pose and ``n_fiducials`` skin markers: spread (farthest-point) among candidates
    within 150 mm of ``near_lps``, touched in the tracker frame with Gaussian noise of RMS ``fle_mm``."""
    rng = np.random.default_rng([spec.seed, 1])
    cand = np.asarray(fiducial_candidates_lps, float).reshape(-1, 3)
    close = cand[np.linalg.norm(cand - np.asarray(near_lps, float), axis=1) < 150.0]
    cand = close if len(close) >= spec.n_fiducials else cand
    chosen = [int(rng.integers(len(cand)))]
    d = np.linalg.norm(cand - cand[chosen[0]], axis=1)
    while len(chosen) < spec.n_fiducials:
        chosen.append(int(np.argmax(d)))
        d = np.minimum(d, np.linalg.norm(cand - cand[chosen[-1]], axis=1))
    img = cand[chosen]
    t = random_rigid(rng)
    noise = rng.normal(scale=spec.fle_mm / np.sqrt(3.0), size=img.shape)
    trk = (img + noise) @ t[:3, :3].T + t[:3, 3]
    return SimulatedSetup(t, img, trk)


def simulated_poses(path: PlannedPath, spec: InsertionSpec,
                    tracker_from_image: np.ndarray | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """(seq, t_s, needle pose in the tracker frame) at ``rate_hz`` for ``duration_s``."""
    rng = np.random.default_rng([spec.seed, 2])
    m = np.eye(4) if tracker_from_image is None else np.asarray(tracker_from_image, float)
    e, tip = np.asarray(path.entry_lps, float), np.asarray(path.tip_lps, float)
    u = np.asarray(path.direction_lps, float)
    length = path.length_mm + spec.overshoot_mm
    if spec.drift_toward_lps is not None:
        w = np.asarray(spec.drift_toward_lps, float) - tip
    else:
        w = rng.normal(size=3)
    w = w - (w @ u) * u
    w = w / (np.linalg.norm(w) or 1.0)
    n = int(round(spec.duration_s * spec.rate_hz))
    phases = rng.uniform(0, 2 * np.pi, 6)
    freqs = spec.tremor_hz * np.array([0.85, 1.0, 1.2])
    for seq in range(n):
        t = seq / spec.rate_hz
        f = t / spec.duration_s
        ins = (f - spec.align_fraction) / max(1e-9, 1.0 - spec.align_fraction - spec.hold_fraction)
        ins = float(np.clip(ins, 0.0, 1.0))
        depth = -15.0 + ins * (length + 15.0)  # starts 15 mm outside the skin
        lateral = spec.drift_mm * max(0.0, depth) / max(length, 1e-9)
        tremor = np.array([np.sin(2 * np.pi * freqs[i] * t + phases[i]) + 0.5 * np.sin(2 * np.pi * freqs[i] * 1.7 * t
                           + phases[3 + i]) for i in range(3)])
        tremor = tremor / np.sqrt(0.625) * spec.tremor_mm / np.sqrt(3.0)  # RMS of the 3D vector = tremor_mm
        p = e + depth * u + lateral * w + tremor
        pivot = e + 0.3 * tremor  # the skin holds the shaft near the entry
        d = p - pivot if depth > 5.0 else u + (p - e - depth * u) / 50.0
        pose = needle_pose(p, d)
        yield seq, t, m @ pose
