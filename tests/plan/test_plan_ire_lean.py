"""IRE electrodes that converge or diverge: pair spacing along the exposure (exact geometry), and
2-3 cm phantom tumours planned with 3-6 electrodes or flagged as not a treatment plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openir.plan.arrays import pair_spacings


def _lean(theta_deg: float, sign: float) -> np.ndarray:
    t = math.radians(theta_deg)
    return np.array([sign * math.sin(t), 0.0, math.cos(t)])


def test_converging_pair_spacing_at_both_ends():
    # tips 20 mm apart on x; each shaft leans 10 deg so the back of a 20 mm exposure moves inward
    tips = np.array([[-10.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    dirs = np.array([_lean(10.0, -1.0), _lean(10.0, 1.0)])  # back = tip - 20 * dir
    (p,) = pair_spacings(tips, dirs, 20.0, 25.0)
    back = 20.0 - 2 * 20.0 * math.sin(math.radians(10.0))  # 13.054 mm
    assert p.tip_mm == pytest.approx(20.0, abs=1e-12)
    assert p.back_mm == pytest.approx(back, abs=1e-12)
    assert p.min_mm == pytest.approx(back, abs=1e-12) and p.max_mm == pytest.approx(20.0, abs=1e-12)


def test_diverging_pair_and_crossing_shafts():
    tips = np.array([[-10.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    (p,) = pair_spacings(tips, np.array([_lean(5.0, 1.0), _lean(5.0, -1.0)]), 15.0, 25.0)
    assert p.back_mm == pytest.approx(20.0 + 30.0 * math.sin(math.radians(5.0)), abs=1e-12)
    assert p.min_mm == pytest.approx(20.0, abs=1e-12)
    # shafts leaning 45 deg inward cross 14.1 mm behind the tips: the narrowest spacing is 0 inside the exposure
    (q,) = pair_spacings(tips, np.array([_lean(45.0, -1.0), _lean(45.0, 1.0)]), 30.0, 25.0)
    assert q.min_mm == pytest.approx(0.0, abs=1e-9)
    assert q.back_mm == pytest.approx(abs(20.0 - 2 * 30.0 * math.sin(math.radians(45.0))), abs=1e-9)


def test_pairs_beyond_the_pulsing_distance_are_not_pairs():
    tips = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [20.0, 20.0, 0.0], [0.0, 20.0, 0.0]])  # square, diagonal 28 mm
    d = np.tile([0.0, 0.0, 1.0], (4, 1))
    pairs = pair_spacings(tips, d, 20.0, 25.0)
    assert sorted((p.a, p.b) for p in pairs) == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert all(p.min_mm == pytest.approx(20.0) and p.max_mm == pytest.approx(20.0) for p in pairs)


@pytest.mark.slow  # 1-2 min each under load: full IRE planning on the 2 mm phantom
@pytest.mark.parametrize(("diameter", "location", "shape"), [(20.0, "perivascular", "lobulated"), (30.0, "central", "sphere")])
def test_2_3_cm_phantom_tumour_gets_3_to_6_electrodes_or_says_it_is_no_plan(diameter, location, shape):
    from openir.phantom import TumourSpec, make_abdomen
    from openir.plan import plan_ablation
    from openir.plan.planner import NOT_A_PLAN

    p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=diameter, location=location, shape=shape),),
                     spacing_mm=(2.0, 2.0, 2.0))
    plan = plan_ablation(p.labels, [p.tumours[0].name], modality="ire", n_directions=500, n_paths=3)
    t = plan.targets[0]
    first = [q for q in plan.probes if q.tumour == t.tumour and q.array_position == 1]
    if t.full_coverage:
        assert 3 <= len(first) <= 6
        assert NOT_A_PLAN not in t.configuration
    else:
        assert t.configuration.startswith(NOT_A_PLAN)
        assert any(NOT_A_PLAN in w for w in plan.warnings) and t.alternatives
