"""Learning-curve CUSUM for operators: Bernoulli CUSUM and the risk-adjusted (Steiner) RA-CUSUM.

The RA-CUSUM (below) weighs each failure by the case's expected risk, so an operator given harder
cases is not flagged for them; the learning-curve chart beside it gives the number of cases to
competence. :func:`openir.registry.qc.learning_curves` uses the risk-adjusted charts.

Unadjusted chart:
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


# ---- risk-adjusted CUSUM (Steiner SH, Cook RJ, Farewell VT, Treasure T. Biostatistics 2000;1:441-452) ----
def odds_ratio(p0: float, p1: float) -> float:
    """The odds ratio R_A that moves an acceptable failure rate p0 to the unacceptable p1."""
    return (p1 / (1 - p1)) / (p0 / (1 - p0))


def ra_scores(failures: np.ndarray, risk: np.ndarray, r_a: float, r_0: float = 1.0) -> np.ndarray:
    """Log-likelihood-ratio weight of each case for H1: odds x ``r_a`` against H0: odds x ``r_0``.

    w_t = y_t ln(R_A/R_0) - ln((1 - p_t + R_A p_t) / (1 - p_t + R_0 p_t)), p_t the case's expected
    failure risk (Steiner 2000, eq. 2, with R_0 = 1). A high-risk failure weighs less than a low-risk one.
    """
    y = np.asarray(failures, dtype=float)
    p = np.clip(np.asarray(risk, dtype=float), 1e-9, 1 - 1e-9)
    return y * np.log(r_a / r_0) - np.log((1 - p + r_a * p) / (1 - p + r_0 * p))


def upper_path(scores: np.ndarray) -> np.ndarray:
    """W_t = max(0, W_{t-1} + s_t)."""
    w = np.empty(len(scores))
    acc = 0.0
    for i, s in enumerate(np.asarray(scores, dtype=float).tolist()):
        acc = max(0.0, acc + s)
        w[i] = acc
    return w


def _hit_rate(h: float, scores: np.ndarray) -> float:
    w = np.zeros(scores.shape[0])
    hit = np.zeros(scores.shape[0], dtype=bool)
    for t in range(scores.shape[1]):
        w = np.maximum(0.0, w + scores[:, t])
        hit |= w >= h
    return float(hit.mean())


def simulated_threshold(scores: np.ndarray, false_alarm: float) -> float:
    """h with P(a chart of ``scores`` (sims x horizon, drawn under the null) reaches h) ~= false_alarm."""
    lo, hi = 0.05, 20.0
    for _ in range(22):
        mid = (lo + hi) / 2
        if _hit_rate(mid, scores) > false_alarm:
            lo = mid
        else:
            hi = mid
    return round(hi, 3)


def ra_thresholds(risk_pool: np.ndarray, r_a: float, *, horizon: int = 200, false_alarm: float = 0.05,
                  n_sim: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(h, h_competence) for a case mix drawn from ``risk_pool`` (bootstrap), both by seeded simulation.

    h: an operator at the expected risk (odds ratio 1) reaches the RA-CUSUM alarm within ``horizon``
    cases with probability ``false_alarm``. h_competence: an operator at the unacceptable odds ratio
    ``r_a`` is wrongly declared competent by the learning-curve chart (H0: odds x r_a, H1: odds x 1,
    after Biau DJ et al., Qual Saf Health Care 2008;17:i3) with probability ``false_alarm``.
    """
    rng = np.random.default_rng(seed)
    p = rng.choice(np.asarray(risk_pool, dtype=float), size=(n_sim, horizon), replace=True)
    y0 = rng.random((n_sim, horizon)) < p
    pa = r_a * p / (1 - p + r_a * p)
    ya = rng.random((n_sim, horizon)) < pa
    h = simulated_threshold(ra_scores(y0, p, r_a), false_alarm)
    h_c = simulated_threshold(ra_scores(ya, p, 1.0, r_0=r_a), false_alarm)
    return h, h_c


def ra_learning_curve(failures: np.ndarray, risk: np.ndarray, r_a: float, h: float, h_c: float) -> dict[str, object]:
    """RA-CUSUM path with its first alarm, and the learning-curve chart with the case where competence
    is first shown (``cases_to_competence``; None when not yet)."""
    f = np.asarray(failures, dtype=bool)
    w = upper_path(ra_scores(f, risk, r_a))
    c = upper_path(ra_scores(f, risk, 1.0, r_0=r_a))
    hit, comp = np.flatnonzero(w >= h), np.flatnonzero(c >= h_c)
    return {"path": w, "competence_path": c, "signal_at": int(hit[0]) + 1 if hit.size else None,
            "cases_to_competence": int(comp[0]) + 1 if comp.size else None,
            "n": int(f.size), "failures": int(f.sum()), "expected": float(np.sum(risk))}
