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
from openir.plan._march import FEASIBLE, MARGIN, TOO_LONG
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
    diag = float(np.linalg.norm(spacing))
    # clearances: a lower bound of the exact one (never over-stated), within one voxel diagonal
    dc = fast.clearance_mm - ref.clearance_mm
    assert dc.max() <= prep.quantum_mm + 0.1 and dc.min() >= -diag - 1e-6
    # voxel-exact traversal: same skin distance, same crossings and capsules as the slab-test walk
    assert np.array_equal(np.isfinite(fast.length_mm), np.isfinite(ref.length_mm))
    both = np.isfinite(fast.length_mm)
    assert np.abs(fast.length_mm - ref.length_mm)[both].max() <= 1e-4
    assert np.array_equal(fast.capsules, ref.capsules) and np.array_equal(fast.counted, ref.counted)
    assert np.allclose(fast.counted_length_mm, ref.counted_length_mm, atol=1e-3)
    # safe side: nothing the fast search calls feasible is infeasible for the reference, and the
    # few it refuses more are within one voxel diagonal of a keep-away
    assert not np.any((fast.status == FEASIBLE) & (ref.status != FEASIBLE))
    extra = np.flatnonzero((fast.status != FEASIBLE) & (ref.status == FEASIBLE))
    assert len(extra) <= 0.05 * len(dirs)
    for r in extra:
        s = fast.blocker[r]
        assert fast.status[r] == MARGIN and ref.clearance_mm[r, s] - prep.margins[s] <= diag
    # the two-pass early-stopping search decides and measures the same as the full walk
    quick = evaluate_directions(prep, dirs, stop_at_block=True)
    ok = fast.status == FEASIBLE
    assert np.array_equal(quick.status == FEASIBLE, ok)
    assert np.array_equal(quick.clearance_mm[ok], fast.clearance_mm[ok])
    assert np.array_equal(quick.counted[ok], fast.counted[ok]) and np.array_equal(quick.capsules[ok], fast.capsules[ok])


def _thin_plate_case(offset_mm: float):
    """A 0.6 mm-thick forbidden plate, tilted, that half-voxel stepping can jump over."""
    from openir.core import Grid, make_affine

    grid = Grid((40, 40, 40), make_affine((1.0, 1.0, 1.0), (-20, -20, -20)))
    p = grid.voxel_centres()
    body = (p[..., 0] ** 2 + p[..., 1] ** 2 + p[..., 2] ** 2) <= 18**2
    arr = body.astype(np.uint8)
    # a single-voxel-thick oblique sheet of "ribs" (voxels whose centre is within 0.3 mm of a plane)
    n = np.array([1.0, 0.7, 0.4]) / np.linalg.norm([1.0, 0.7, 0.4])
    plane = np.abs(p @ n - offset_mm) < 0.3
    arr[plane & body] = 2
    return LabelMap(arr, grid.affine, {}, {1: "fat", 2: "ribs"})


def test_no_feasible_path_touches_a_forbidden_voxel():
    """Held-out synthetic case: every voxel of every feasible segment, checked by slab tests."""
    from openir.plan.reference import touched_voxels

    labels = _thin_plate_case(6.0)
    pol = load_policy().model_copy(update={"patient_position": "any", "needle_gauge": None})
    pol.keep_away_by_kind = {}
    prep = prepare_case(labels, (0.0, 0.0, 0.0), pol, 40.0)
    dirs = fibonacci_directions(4000)
    rays = evaluate_directions(prep, dirs, stop_at_block=True)
    ok = np.flatnonzero(rays.feasible)
    assert 100 < len(ok) < len(dirs)
    from openir.plan.trajectories import _index_dirs

    dv = _index_dirs(prep, rays.directions[ok])
    for n, r in enumerate(ok):
        vox, _, _ = touched_voxels(prep.target_kji, dv[n], float(rays.length_mm[r]) - 1e-6, prep.codes.shape)
        codes = prep.codes[vox[:, 0], vox[:, 1], vox[:, 2]]
        assert not prep.forbid[codes].any()
        assert rays.length_mm[r] <= 40.0


def test_needle_gauge_keep_away_and_patient_position():
    labels, target = small_case()
    base = load_policy().model_copy(update={"patient_position": "any", "needle_gauge": None})
    base.keep_away_by_kind = {}
    thin = prepare_case(labels, target, base, 60.0)
    thick = prepare_case(labels, target, base.model_copy(update={"needle_gauge": 11}), 60.0)
    assert np.all(thick.margins[[thick.names.index("ribs")]] >= 3.05 / 2)
    d = fibonacci_directions(2000)
    a, b = evaluate_directions(thin, d), evaluate_directions(thick, d)
    assert b.feasible.sum() < a.feasible.sum() and not np.any(b.feasible & ~a.feasible)
    # keep-away per structure class comes from the policy
    kinds = base.model_copy(deep=True)
    kinds.keep_away_by_kind = load_policy().keep_away_by_kind
    k = prepare_case(labels, target, kinds, 60.0)
    assert k.margins[k.names.index("aorta")] == pytest.approx(load_policy().keep_away_by_kind["vessel"].mm)
    # supine: nothing enters from the back (outward direction toward +P)
    sup = prepare_case(labels, target, base.model_copy(update={"patient_position": "supine"}), 60.0)
    rs = evaluate_directions(sup, d)
    up = rs.directions[rs.feasible] @ np.array([0.0, 1.0, 0.0])
    assert rs.feasible.any() and up.max() <= np.sin(np.radians(20)) + 1e-9
    assert np.any(a.directions[a.feasible] @ np.array([0.0, 1.0, 0.0]) > 0.5)  # the back was open before


def test_operator_angles_and_depth():
    from openir.plan.trajectories import operator_angles

    # needle from the patient's left, 30 deg below the vertical, entry 20 deg cranial
    up, left, sup = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    inplane = np.cos(np.radians(20)) * (np.cos(np.radians(30)) * up + np.sin(np.radians(30)) * left)
    d = inplane + np.sin(np.radians(20)) * sup
    a, c = operator_angles(d[None], "supine")
    assert a[0] == pytest.approx(30.0) and c[0] == pytest.approx(20.0)
    a, _ = operator_angles(-d[None] * np.array([1, 1, -1]), "prone")  # prone: up is posterior
    assert a[0] == pytest.approx(-30.0)
    labels, target = small_case()
    res = find_trajectories(labels, target, needle_length_mm=60, n_directions=2000)
    t = res.shortlist[0]
    assert t.depth_mm == pytest.approx(t.length_mm) and t.length_mm <= 60
    assert res.needle_diameter_mm > 0 and res.patient_position == "supine"


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
    assert any(k.startswith("too close to") for k in res.blocked_by)
    assert res.keep_away_mm["gallbladder"] == pytest.approx(3 + res.needle_diameter_mm / 2, abs=1e-4)
    assert res.model_dump_json()  # serialisable


def test_target_structure_is_exempt():
    labels, target = small_case()
    pol = load_policy().model_copy(update={"needle_gauge": None})
    pol.keep_away_by_kind = {}
    res = find_trajectories(labels, np.array([-2.0, -12.0, 4.0]), pol, needle_length_mm=60, n_directions=3000)
    assert "gallbladder" in res.exempt_structures and res.keep_away_mm.get("gallbladder", 0.0) == 0


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


def test_no_path_longer_than_the_needle():
    """A ball of fat around the target: the skin lies 17-19 mm away depending on the direction."""
    from openir.core import Grid, make_affine

    grid = Grid((48, 48, 48), make_affine((1.0, 1.0, 1.0), (-23.5, -23.5, -23.5)))
    p = grid.voxel_centres()
    lm = LabelMap(((p**2).sum(axis=-1) <= 18.0**2).astype(np.uint8), grid.affine, {}, {1: "fat"})
    pol = load_policy().model_copy(update={"patient_position": "any"})
    prep = prepare_case(lm, (0.0, 0.0, 0.0), pol, 18.0)
    rays = evaluate_directions(prep, fibonacci_directions(3000))
    assert rays.feasible.any() and (rays.status == TOO_LONG).any()
    assert np.nanmax(rays.length_mm[rays.feasible]) <= 18.0


def test_real_ct_labels_no_feasible_path_touches_a_forbidden_voxel():
    """Held-out real case: TotalSegmentator's abdomen label map (3 mm), target in the liver."""
    from openir import io
    from openir.plan.reference import touched_voxels
    from openir.plan.trajectories import _index_dirs, target_from_label
    from openir.testing import need

    d = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "totalseg-abdomen-ct"
    need((d / "example_seg.nii.gz").exists(), "../shared/data/totalseg-abdomen-ct not present")
    lm = io.read_labels(d / "example_seg.nii.gz", d / "labels.json")
    target = target_from_label(lm, "liver")
    prep = prepare_case(lm, target, load_policy(), 150.0)
    rays = evaluate_directions(prep, fibonacci_directions(3000))
    ok = np.flatnonzero(rays.feasible)
    assert len(ok) > 20
    dv = _index_dirs(prep, rays.directions[ok])
    for n, r in enumerate(ok):
        vox, _, _ = touched_voxels(prep.target_kji, dv[n], float(rays.length_mm[r]) - 1e-6, prep.codes.shape)
        assert not prep.forbid[prep.codes[vox[:, 0], vox[:, 1], vox[:, 2]]].any()
    assert rays.length_mm[ok].max() <= 150.0
    ref = brute_force_rays(prep, rays.directions[ok[:25]])
    dc = rays.clearance_mm[ok[:25]] - ref.clearance_mm
    assert dc.max() <= prep.quantum_mm + 0.1 and dc.min() >= -float(np.linalg.norm(lm.spacing)) - 1e-6
