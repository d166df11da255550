"""Plan indices against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from openir.seeds import OrganMask, d_cc, d_percent, dose_metrics, dvh


def test_indices_on_a_ramp_with_known_answers():
    # 1000 target voxels with doses 1..1000 Gy, 1000 outside voxels: 500 of them at 500 Gy
    t = np.arange(1, 1001, dtype=float)
    outside = np.r_[np.full(500, 500.0), np.zeros(500)]
    dose = np.r_[t, outside].reshape(1, 40, 50)
    target = np.r_[np.ones(1000, bool), np.zeros(1000, bool)].reshape(dose.shape)
    m = dose_metrics(dose, target, voxel_mm3=1.0, prescription_gy=400.0)
    assert m.v100_pct == pytest.approx(60.1)  # 400..1000
    assert m.v150_pct == pytest.approx(40.1)  # 600..1000
    assert m.v200_pct == pytest.approx(20.1)  # 800..1000
    assert m.d100_gy == 1.0
    assert m.d90_gy == pytest.approx(101.0, abs=1.0)  # the hottest 90 % start at 101 Gy
    tv_rx, v_rx = 601, 601 + 500
    assert m.ci == pytest.approx(tv_rx**2 / (1000 * v_rx))
    assert m.ei == pytest.approx(500 / 1000)
    assert m.hi == pytest.approx((60.1 - 40.1) / 60.1)
    assert m.target_volume_ml == pytest.approx(1.0)


def test_organ_dcc_and_limits():
    vals = np.arange(10000, dtype=float)  # 1 mm3 voxels: 2 cc = 2000 hottest voxels
    assert d_cc(vals, 2.0, 0.001) == 8000.0
    assert d_cc(vals[:100], 2.0, 0.001) is None  # organ smaller than 2 cc
    assert d_percent(vals, 90) == pytest.approx(1000.0, abs=1)
    dose = vals.reshape(10, 10, 100)
    organ = OrganMask("bowel", np.ones(dose.shape, bool), "d2cc", 7999.0, "test")
    m = dose_metrics(dose, np.ones(dose.shape, bool), 1.0, 100.0, [organ])
    o = m.organs[0]
    assert o.d2cc_gy == 8000.0 and o.within_limit is False and o.d_max_gy == 9999.0


def test_dvh_is_cumulative():
    dose = np.array([[[10.0, 20.0, 30.0, 40.0]]])
    c = dvh(dose, np.ones(dose.shape, bool), "t", max_gy=40.0, bins=4)
    assert c.dose_gy == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert c.volume_pct == [100.0, 100.0, 75.0, 50.0, 25.0]
