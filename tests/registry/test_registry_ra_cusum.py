"""Risk-adjusted (Steiner) CUSUM and the learning-curve competence chart."""

from __future__ import annotations

import numpy as np

from openir.registry.cusum import (
    odds_ratio,
    ra_learning_curve,
    ra_scores,
    ra_thresholds,
    upper_path,
)


def test_scores_are_the_log_likelihood_ratio():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.4, 500)
    y = rng.random(500) < p
    r = 2.5
    pa = r * p / (1 - p + r * p)  # failure probability with the odds multiplied by r
    llr = np.where(y, np.log(pa / p), np.log((1 - pa) / (1 - p)))  # independent: Bernoulli likelihood ratio
    assert np.allclose(ra_scores(y, p, r), llr)
    # the competence chart tests odds x 1 against odds x r
    assert np.allclose(ra_scores(y, p, 1.0, r_0=r), -llr)


def test_risk_adjustment_discounts_failures_in_hard_cases():
    fails = np.zeros(60, bool)
    fails[::6] = True  # 10 failures in 60 cases
    easy = upper_path(ra_scores(fails, np.full(60, 0.05), 2.0))
    hard = upper_path(ra_scores(fails, np.full(60, 0.20), 2.0))
    assert easy[-1] > 2 and hard[-1] < easy[-1] / 2
    assert odds_ratio(0.05, 0.10) == (0.1 / 0.9) / (0.05 / 0.95)


def test_threshold_gives_the_false_alarm_rate_it_promises():
    pool = np.random.default_rng(2).uniform(0.02, 0.15, 2000)
    r_a = 2.0
    h, h_c = ra_thresholds(pool, r_a, horizon=150, false_alarm=0.05, n_sim=2000, seed=3)
    rng = np.random.default_rng(99)  # fresh operators, not the simulation's own draws
    alarms, competent = 0, 0
    for _ in range(1500):
        p = rng.choice(pool, 150)
        ok_ops = rng.random(150) < p
        bad_ops = rng.random(150) < r_a * p / (1 - p + r_a * p)
        alarms += ra_learning_curve(ok_ops, p, r_a, h, h_c)["signal_at"] is not None
        competent += ra_learning_curve(bad_ops, p, r_a, h, h_c)["cases_to_competence"] is not None
    assert abs(alarms / 1500 - 0.05) < 0.02
    assert abs(competent / 1500 - 0.05) < 0.02


def test_cases_to_competence_of_a_learning_operator():
    rng = np.random.default_rng(5)
    p = np.full(300, 0.05)
    fails = np.r_[rng.random(40) < 0.30, rng.random(260) < 0.03]  # 40 rough cases, then good
    h, h_c = ra_thresholds(p, 2.0, horizon=200, seed=1)
    res = ra_learning_curve(fails, p, 2.0, h, h_c)
    assert res["signal_at"] is not None and res["signal_at"] <= 60  # the rough start alarms
    assert res["cases_to_competence"] is not None and res["cases_to_competence"] > 40
    assert abs(res["expected"] - 15.0) < 1e-9 and res["failures"] == int(fails.sum())


def test_registry_curves_are_risk_adjusted(seeded):
    from openir.registry import learning_curves

    engine, ds = seeded
    curves = learning_curves(engine)
    planted = [c for c in curves if c.operator == ds.truth["cusum"][0]]
    assert planted and any(c.signal_at for c in planted)
    assert all(c.risk_adjusted and c.expected_failures > 0 and c.odds_ratio > 1 for c in curves)
    assert all(c.cases_to_competence is None or 1 <= c.cases_to_competence <= c.n for c in curves)
    assert len({c.h for c in curves if c.technique == curves[0].technique}) == 1
