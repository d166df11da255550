"""Learning-curve CUSUM for operators (Bernoulli CUSUM of failures).

W_t = max(0, W_{t-1} + s_t), with s_t = ln(p1/p0) after a failure and ln((1-p1)/(1-p0)) after a
success (Steiner SH et al., Biostatistics 2000;1:441, without risk adjustment): the chart climbs
when failures come at the unacceptable rate p1 and drifts to zero at the acceptable rate p0, and
signals at W >= h. The threshold h is not a clinical number; it is chosen so that an operator
working exactly at p0 signals falsely within ``horizon`` procedures with probability
``false_alarm`` (simulated, seeded, cached).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def cusum_path(failures: np.ndarray, p0: float, p1: float) -> np.ndarray:
    """The CUSUM value after each procedure (``failures``: 1 = failure, in date order)."""
    f = np.asarray(failures, dtype=bool)
    up, down = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    w = np.empty(f.size)
    acc = 0.0
    for i, fail in enumerate(f):
        acc = max(0.0, acc + (up if fail else down))
        w[i] = acc
    return w


def _false_alarm_rate(h: float, p0: float, p1: float, horizon: int, sims: np.ndarray) -> float:
    up, down = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    w = np.zeros(sims.shape[0])
    hit = np.zeros(sims.shape[0], dtype=bool)
    for t in range(horizon):
        w = np.maximum(0.0, w + np.where(sims[:, t], up, down))
        hit |= w >= h
    return float(hit.mean())


@lru_cache(maxsize=64)
def cusum_threshold(p0: float, p1: float, *, horizon: int = 200, false_alarm: float = 0.05,
                    n_sim: int = 4000, seed: int = 0) -> float:
    """h such that P(false signal within ``horizon`` procedures at rate p0) ~= ``false_alarm``."""
    rng = np.random.default_rng(seed)
    sims = rng.random((n_sim, horizon)) < p0
    lo, hi = 0.1, 20.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if _false_alarm_rate(mid, p0, p1, horizon, sims) > false_alarm:
            lo = mid
        else:
            hi = mid
    return round(hi, 3)


def cusum_signal(failures: np.ndarray, p0: float, p1: float, h: float | None = None) -> dict[str, object]:
    """Path, threshold and the first procedure (1-based) where the chart signals (None if never)."""
    h = cusum_threshold(p0, p1) if h is None else h
    w = cusum_path(failures, p0, p1)
    hit = np.flatnonzero(w >= h)
    return {"path": w, "h": h, "signal_at": int(hit[0]) + 1 if hit.size else None,
            "n": int(w.size), "failures": int(np.sum(failures))}
