"""Exact intervals, funnel limits, over-dispersion, CUSUM (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from openir.registry.cusum import cusum_path, cusum_signal, cusum_threshold
from openir.registry.funnel import binomial_limit, classify, exact_ci, overdispersion
from openir.registry.indicators import fit_logistic


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_exact_ci_matches_scipy_binomtest(xn):
    x, n = xn
    lo, hi = exact_ci(np.array([x]), np.array([n]))
    ref = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    assert lo[0] == pytest.approx(ref.low, abs=1e-10)
    assert hi[0] == pytest.approx(ref.high, abs=1e-10)


def test_exact_ci_other_level():
    lo, hi = exact_ci(np.array([3, 0, 50]), np.array([40, 10, 50]), confidence=0.998)
    for i, (x, n) in enumerate([(3, 40), (0, 10), (50, 50)]):
        ref = stats.binomtest(x, n).proportion_ci(confidence_level=0.998, method="exact")
        assert (lo[i], hi[i]) == pytest.approx((ref.low, ref.high), abs=1e-10)


def test_binomial_limits_bracket_the_quantile_and_narrow_with_n():
    n = np.array([20, 50, 100, 500, 2000, 10000])
    theta = 0.05
    hi = binomial_limit(n, theta, 0.999)
    lo = binomial_limit(n, theta, 0.001)
    assert np.all(np.diff(hi) < 0) and np.all(lo <= theta) and np.all(hi >= theta)
    r = stats.binom.ppf(0.999, n, theta)
    assert np.all(hi <= r / n + 1e-12) and np.all(hi >= (r - 1) / n - 1e-12)
    # limits converge to the normal approximation for large n
    assert hi[-1] == pytest.approx(theta + 3.09 * np.sqrt(theta * (1 - theta) / n[-1]), rel=0.02)


def test_false_alarm_rate_at_target_is_nominal():
    rng = np.random.default_rng(0)
    n = rng.integers(50, 2000, 4000)
    x = rng.binomial(n, 0.05)
    status, _, od = classify(x / n, n, 0.05, direction="lower_better", min_cases=1, method="none")
    frac = np.mean(np.array(status) == "alarm")
    assert frac < 0.004  # one-sided 0.1% nominal (discreteness makes it smaller)
    assert np.mean(np.array(status) == "alert") < 0.04
    assert not od.significant


def test_overdispersion_detected_and_widens_limits():
    rng = np.random.default_rng(1)
    n = rng.integers(200, 3000, 60)
    p = np.clip(rng.normal(0.1, 0.03, 60), 0.01, 0.5)  # true between-unit variation
    x = rng.binomial(n, p)
    od = overdispersion(x / n, n, 0.1)
    assert od.significant and od.phi > 2 and od.tau2 > 0
    plain, _, _ = classify(x / n, n, 0.1, direction="lower_better", method="none")
    corrected, _, _ = classify(x / n, n, 0.1, direction="lower_better", method="additive")
    assert sum(s in ("alarm", "alert") for s in corrected) < sum(s in ("alarm", "alert") for s in plain)


def test_logistic_fit_recovers_odds_ratio():
    X = np.array([[0], [1]])
    n = np.array([100000, 100000])
    p = np.array([0.05, 0.05 * 2 / (1 - 0.05 + 0.05 * 2)])  # odds ratio 2
    beta = fit_logistic(X, n * p, n)
    assert np.exp(beta[1]) == pytest.approx(2.0, rel=1e-6)


def test_cusum_known_path_and_signal():
    p0, p1 = 0.1, 0.2
    up, down = np.log(2), np.log(0.8 / 0.9)
    w = cusum_path(np.array([1, 0, 1, 1]), p0, p1)
    assert w == pytest.approx([up, up + down, 2 * up + down, 3 * up + down])
    h = cusum_threshold(p0, p1, horizon=100, false_alarm=0.05)
    rng = np.random.default_rng(5)
    good = [cusum_signal(rng.random(100) < p0, p0, p1, h)["signal_at"] for _ in range(300)]
    bad = [cusum_signal(rng.random(100) < 0.35, p0, p1, h)["signal_at"] for _ in range(300)]
    assert np.mean([g is not None for g in good]) < 0.09
    assert np.mean([b is not None for b in bad]) > 0.9
