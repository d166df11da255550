"""Funnel plots for fair comparison of units (hospitals, operators, regions).

Control limits around the benchmark rate ``theta`` for every case count ``n``, following
Spiegelhalter DJ, "Funnel plots for comparing institutional performance", Stat Med 2005;24:1185
(exact binomial limits with interpolation, appendix A.1.1) and "Handling over-dispersion of
performance indicators", Qual Saf Health Care 2005;14:347 (multiplicative phi or additive
random-effects tau^2, estimated from winsorised z-scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVELS = (0.95, 0.998)


def exact_ci(x: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson interval of x/n, vectorised (same values as scipy's binomtest exact CI)."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    a = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, stats.beta.ppf(a, x, n - x + 1), 0.0)
        hi = np.where(x < n, stats.beta.ppf(1 - a, x + 1, n - x), 1.0)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def binomial_limit(n: np.ndarray, theta: float, p: float) -> np.ndarray:
    """The ``p`` quantile of a proportion out of ``n`` at rate ``theta``, interpolated (Spiegelhalter 2005).

    r = binom.ppf(p); alpha = (F(r) - p) / (F(r) - F(r - 1)); limit = (r - alpha) / n, so the
    limits are smooth in n instead of stepping with the integer quantile.
    """
    n = np.asarray(n, dtype=float)
    r = stats.binom.ppf(p, n, theta)
    f_r = stats.binom.cdf(r, n, theta)
    f_r1 = stats.binom.cdf(r - 1, n, theta)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(f_r > f_r1, (f_r - p) / (f_r - f_r1), 0.0)
    return np.clip((r - alpha) / np.where(n > 0, n, np.nan), 0.0, 1.0)


@dataclass(frozen=True)
class Overdispersion:
    phi: float  # multiplicative factor (1 = none)
    tau2: float  # additive between-unit variance
    significant: bool  # I*phi beyond the chi-square(I-1) 95% point
    units: int


def overdispersion(y: np.ndarray, n: np.ndarray, theta: float, *, winsor: float = 0.10) -> Overdispersion:
    """Estimate over-dispersion from winsorised z-scores (outliers cannot inflate it)."""
    y, n = np.asarray(y, float), np.asarray(n, float)
    ok = n > 0
    y, n = y[ok], n[ok]
    k = y.size
    if k < 3 or theta <= 0 or theta >= 1:
        return Overdispersion(1.0, 0.0, False, k)
    s = np.sqrt(theta * (1 - theta) / n)
    z = (y - theta) / s
    lo, hi = np.quantile(z, [winsor, 1 - winsor])
    zw = np.clip(z, lo, hi)
    phi = float(np.mean(zw**2))
    significant = bool(k * phi > stats.chi2.ppf(0.95, k - 1))
    w = 1 / s**2
    tau2 = max(0.0, float((k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum())))
    return Overdispersion(phi, tau2, significant, k)


def funnel_limits(n: np.ndarray, theta: float, *, od: Overdispersion | None = None,
                  method: str = "additive", levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Lower and upper limits at each ``n`` for each level (keys ``lo95``, ``hi95``, ``lo998``, ...).

    Without (significant) over-dispersion the limits are exact binomial; with it, normal limits
    widened by ``phi`` (multiplicative) or ``tau2`` (additive random effects).
    """
    n = np.asarray(n, dtype=float)
    out = {}
    for lev in levels:
        tag = f"{lev * 100:g}".replace(".", "")
        if od is None or not od.significant or method == "none":
            lo = binomial_limit(n, theta, (1 - lev) / 2)
            hi = binomial_limit(n, theta, 1 - (1 - lev) / 2)
        else:
            z = stats.norm.ppf(1 - (1 - lev) / 2)
            var = theta * (1 - theta) / np.maximum(n, 1)
            sd = np.sqrt(var * od.phi) if method == "multiplicative" else np.sqrt(var + od.tau2)
            lo, hi = np.clip(theta - z * sd, 0, 1), np.clip(theta + z * sd, 0, 1)
        out[f"lo{tag}"], out[f"hi{tag}"] = lo, hi
    return out


def classify(y: np.ndarray, n: np.ndarray, theta: float, *, direction: str, min_cases: int = 1,
             method: str = "additive") -> tuple[list[str], dict[str, np.ndarray], Overdispersion]:
    """Status of each unit: ``alarm`` (beyond 99.8% on the bad side), ``alert`` (beyond 95%),
    ``better`` (beyond 95% on the good side), ``ok``, or ``too few`` (n < min_cases)."""
    y, n = np.asarray(y, float), np.asarray(n, float)
    enough = n >= min_cases
    od = overdispersion(y[enough], n[enough], theta)
    lim = funnel_limits(n, theta, od=od, method=method)
    hi_bad = direction == "lower_better"
    worse998 = y > lim["hi998"] if hi_bad else y < lim["lo998"]
    worse95 = y > lim["hi95"] if hi_bad else y < lim["lo95"]
    better95 = y < lim["lo95"] if hi_bad else y > lim["hi95"]
    st = np.select([~enough, worse998, worse95, better95], ["too few", "alarm", "alert", "better"], "ok")
    status = st.tolist()
    return status, lim, od
