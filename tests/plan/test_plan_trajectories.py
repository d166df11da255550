"""Trajectory search against the brute-force reference, plus the error cases."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from openir.core import LabelMap
from openir.core.errors import InputError, UnknownLabelError
from openir.plan import (
    evaluate_directions,
    fibonacci_directions,
    find_trajectories,
    load_policy,
    prepare_case,
)
from openir.plan._march import FEASIBLE, HIT
from openir.plan.reference import brute_force_rays

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import small_case  # noqa: E402


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.5), (0.8, 0.9, 1.0)])
def test_fast_search_agrees_with_brute_force(spacing):
    labels, target = small_case(spacing=spacing)
    prep = prepare_case(labels, target, load_policy(), 60.0, keep_away={"gallbladder": 3})
    dirs = fibonacci_directions(300)
    fast = evaluate_directions(prep, dirs, stop_at_block=False)
    ref = brute_force_rays(prep, dirs)
    voxel = float(np.max(spacing))
    # clearances within one voxel everywhere (both march to the skin)
    assert np.abs(fast.clearance_mm - ref.clearance_mm).max() <= voxel + 1e-6
    both = np.isfinite(fast.length_mm) & np.isfinite(ref.length_mm)
    assert np.abs(fast.length_mm - ref.length_mm)[both].max() <= voxel
    # feasible sets agree except on grazing paths, where the reference clearance to the
    # deciding structure is within one voxel of the decision threshold
    differ = np.flatnonzero((fast.status == FEASIBLE) != (ref.status == FEASIBLE))
    assert len(differ) <= 0.03 * len(dirs)
    for r in differ:
        st = fast.status[r] if fast.status[r] != FEASIBLE else ref.status[r]
        s = fast.blocker[r] if fast.status[r] != FEASIBLE else ref.blocker[r]
        if st == HIT:
            assert ref.clearance_mm[r, s] <= voxel
        else:
            assert abs(ref.clearance_mm[r, s] - prep.margins[s]) <= voxel
    assert (fast.capsules == ref.capsules).mean() >= 0.97


def test_result_has_pareto_shortlist_and_reasons():
    labels, target = small_case()
    res = find_trajectories(labels, target, needle_length_mm=60, n_directions=3000,
                            keep_away={"gallbladder": 3})
    assert res.n_feasible > 0 and res.shortlist and len(res.pareto) >= len(res.shortlist)
    assert [t.rank for t in res.shortlist] == list(range(1, len(res.shortlist) + 1))
    best = res.shortlist[0]
    assert set(best.clearances_mm) == set(res.risk_structures)
    assert best.min_clearance_mm >= 0 and best.length_mm <= 60
    entry, tgt = np.asarray(best.entry_lps), np.asarray(best.target_lps)
    assert np.allclose((tgt - entry) / np.linalg.norm(tgt - entry), best.direction_lps, atol=1e-6)
    assert labels.value_at(entry + 2 * np.asarray(best.direction_lps)) > 0  # just inside the body
    assert "crosses ribs" in res.blocked_by
    assert any(k.startswith("too close to gallbladder") for k in res.blocked_by)
    assert res.model_dump_json()  # serialisable


def test_target_structure_is_exempt():
    labels, target = small_case()
    res = find_trajectories(labels, np.array([-2.0, -12.0, 4.0]), needle_length_mm=60, n_directions=500)
    assert "gallbladder" in res.exempt_structures


def test_no_feasible_path_names_the_main_blocker():
    labels, target = small_case()
    with pytest.raises(InputError, match="most were blocked because the path"):
        find_trajectories(labels, target, needle_length_mm=5, n_directions=500)


def test_clear_errors_for_bad_targets_and_labels():
    labels, target = small_case()
    with pytest.raises(InputError, match="outside the body"):
        find_trajectories(labels, np.array([27.0, 22.0, 0.0]), n_directions=100)
    with pytest.raises(InputError, match="outside the image"):
        find_trajectories(labels, np.array([500.0, 0.0, 0.0]), n_directions=100)
    with pytest.raises(UnknownLabelError, match="available labels"):
        find_trajectories(labels, target, n_directions=100, keep_away={"pancreas_tail": 5})
    full = LabelMap(np.ones_like(labels.array), labels.affine, {}, {1: "fat"})
    with pytest.raises(InputError, match="no skin"):
        find_trajectories(full, target, n_directions=100)
