"""Plan scoring bars (issue 22): the expert plan scores full marks; a plan with one known defect
loses exactly the rubric's points for that defect and nothing else.

The case is a synthetic abdomen (openir.phantom) with the expert plan made by the planner; the
expected points come from an independent numpy/scipy computation of coverage and margin (target =
tumour dilated by 5 mm inside the liver, zones = spheroids tested voxel by voxel), not from the
scorer's own numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from openir import phantom
from openir.core import LabelMap, body_mask_from_ct
from openir.plan import Plan, plan_ablation
from openir.training import (
    TeachingCase,
    add_case,
    load_case,
    load_rubric,
    score_plan,
    teaching_case,
)
from openir.training.models import LibraryEntry

RUBRIC = load_rubric()
C = RUBRIC.criteria


# ---- independent geometry (numpy / scipy only) ----------------------------------------------------

def _world(labels: LabelMap) -> np.ndarray:
    k, j, i = np.indices(labels.shape)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)], axis=0)
    return (labels.affine @ ijk)[:3].T.reshape(labels.shape + (3,))


def _spheroid(pts: np.ndarray, centre, d, semi) -> np.ndarray:
    d = np.asarray(d, float) / np.linalg.norm(d)
    rel = pts - np.asarray(centre, float)
    along = rel @ d
    perp2 = (rel**2).sum(-1) - along**2
    a, b, _ = semi
    return along**2 / a**2 + perp2 / b**2 <= 1.0


def _zones(pts: np.ndarray, plan: Plan) -> np.ndarray:
    """Union of the plan's zones, each centred ``tip_offset_mm`` behind its probe's tip."""
    out = np.zeros(pts.shape[:3], bool)
    for pr in plan.probes:
        z = plan.zones[pr.zone_index]
        c = np.asarray(pr.tip_lps) - np.asarray(pr.direction_lps) * pr.tip_offset_mm
        out |= _spheroid(pts, c, pr.direction_lps, z.semi_axes_mm)
    return out


def _truth(labels: LabelMap, tumour: str, zone: np.ndarray) -> tuple[float, float, float]:
    """(tumour + 5 mm coverage %, tumour coverage %, minimal margin mm) by scipy EDT."""
    sp = labels.grid.spacing[::-1]
    tm = labels.mask(tumour)
    dist = ndimage.distance_transform_edt(~tm, sampling=sp)
    target = tm | ((dist <= 5.0 + 1e-6) & (labels.array == labels.value_of("liver")))
    cov_g = 100.0 * (zone & target).sum() / target.sum()
    cov_t = 100.0 * (zone & tm).sum() / tm.sum()
    half = float(sp.min()) / 2
    if (tm & ~zone).any():
        margin = -float(ndimage.distance_transform_edt(~zone, sampling=sp)[tm].max()) + half
    else:
        margin = float(ndimage.distance_transform_edt(zone, sampling=sp)[tm].min()) - half
    return float(cov_g), float(cov_t), margin


def _moved(plan: Plan, shift_mm=(0.0, 0.0, 0.0), *, flip: bool = False) -> Plan:
    """The plan with its (single) probe moved by ``shift_mm`` (LPS) or turned end for end about its
    zone centre (the same spheroid, the needle from the other side)."""
    p = plan.model_copy(deep=True)
    pr = p.probes[0]
    d = np.asarray(pr.direction_lps)
    tip = np.asarray(pr.tip_lps) + np.asarray(shift_mm)
    if flip:
        centre = tip - d * pr.tip_offset_mm
        d = -d
        tip = centre + d * pr.tip_offset_mm
        pr.entry_lps = tuple(tip - d * 60.0)
    else:
        pr.entry_lps = tuple(np.asarray(pr.entry_lps) + np.asarray(shift_mm))
    pr.tip_lps, pr.direction_lps = tuple(tip), tuple(d)
    return p


# ---- the case ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def setting():
    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=22.0),), spacing_mm=(2.5, 2.5, 2.5),
                             fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    body = body_mask_from_ct(p.ct, p.labels)
    expert = plan_ablation(p.labels, ["tumour_1"], modality="microwave", n_directions=1000, body_mask=body)
    assert len(expert.probes) == 1 and expert.targets[0].full_coverage
    pr = expert.probes[0]
    semi = expert.zones[0].semi_axes_mm
    assert semi[1] == semi[2]  # a spheroid: turning the probe end for end keeps the zone
    pts = _world(p.labels)
    arr = p.labels.array.copy()
    d = np.asarray(pr.direction_lps)
    centre = np.asarray(pr.tip_lps) - d * pr.tip_offset_mm
    ezone = _zones(pts, expert)
    # a vein (not must-spare) across the path of the turned-round needle, beyond the zone
    vein = ((pts - (centre + d * (semi[0] + 5.0))) ** 2).sum(-1) <= 3.0**2
    assert not (vein & ezone).any()
    arr[vein] = p.labels.value_of("hepatic_veins")
    # a must-spare structure in the crescent the zone reaches when the probe moves 1 mm sideways
    deeper = _spheroid(pts, centre + 1.0 * _side(d), d, semi) & ~ezone
    assert deeper.any()
    arr[deeper] = p.labels.value_of("gallbladder")
    labels = LabelMap(arr, p.labels.affine, {}, dict(p.labels.labels))
    entry = LibraryEntry.model_construct(entry_id="tc-test", tumour="tumour_1", expert_time_min=40.0)
    case = TeachingCase(entry, labels, expert, p.ct)
    return case, pts


def _side(d: np.ndarray) -> np.ndarray:
    u = np.cross(d, [0.0, 0.0, 1.0])
    return u / np.linalg.norm(u)


def _lost(score) -> dict[str, float]:
    return {c.id: c.lost for c in score.criteria if c.lost > 0}


def test_expert_plan_scores_full_marks(setting):
    case, _ = setting
    s = score_plan(case, case.expert)
    assert s.total == s.max_total == 100.0 and _lost(s) == {}
    assert s.zone_dice_vs_expert == 1.0 and s.missed_target_ml == 0.0 and s.passed


def test_missed_margin_loses_coverage_and_margin_points_only(setting):
    case, pts = setting
    d = np.asarray(case.expert.probes[0].direction_lps)
    plan = _moved(case.expert, -7.0 * _side(d))  # 7 mm sideways, away from the gallbladder crescent
    cov_g, cov_t, margin = _truth(case.labels, "tumour_1", _zones(pts, plan))
    _, _, expert_margin = _truth(case.labels, "tumour_1", _zones(pts, case.expert))
    assert cov_g < 99.0  # the defect is real
    s = score_plan(case, plan)
    lost = _lost(s)
    assert set(lost) <= {"target_coverage", "tumour_coverage", "min_margin"}
    assert lost["target_coverage"] == pytest.approx(min(30.0, 3.0 * (99.0 - cov_g)), abs=0.02)
    assert lost.get("tumour_coverage", 0.0) == pytest.approx(min(20.0, 10.0 * (100.0 - cov_t)), abs=0.02)
    ref = min(5.0, expert_margin)
    want = 15.0 if margin <= 0 else max(0.0, 15.0 * (ref - margin) / ref)
    assert lost.get("min_margin", 0.0) == pytest.approx(want, abs=0.05)
    by = {c.id: c for c in s.criteria}
    assert by["target_coverage"].measured == pytest.approx(cov_g, abs=1e-3)
    assert "below the reference" in by["target_coverage"].explanation_en and by["target_coverage"].explanation_zh


def test_path_through_a_vessel_loses_the_path_points_only(setting):
    case, pts = setting
    plan = _moved(case.expert, flip=True)
    assert (_zones(pts, plan) == _zones(pts, case.expert)).all()  # the same zone, another path
    s = score_plan(case, plan)
    assert _lost(s) == {"path_risk": C.path_risk.lost_per_path}
    bad = [p for p in s.paths if not p.feasible]
    assert len(bad) == 1 and bad[0].blocker == "hepatic_veins"
    assert "hepatic_veins" in {c.id: c for c in s.criteria}["path_risk"].explanation_en


def test_one_extra_probe_loses_the_probe_points_only(setting):
    case, pts = setting
    plan = case.expert.model_copy(deep=True)
    extra = plan.probes[0].model_copy(deep=True)
    u = -_side(np.asarray(extra.direction_lps))  # away from the must-spare crescent
    extra.tip_lps = tuple(np.asarray(extra.tip_lps) + 1.5 * u)
    extra.entry_lps = tuple(np.asarray(extra.entry_lps) + 1.5 * u)
    extra.order, extra.track = 2, 2
    plan.probes.append(extra)
    z = _zones(pts, plan)
    assert not (z & (case.labels.array == case.labels.value_of("gallbladder"))).any()
    s = score_plan(case, plan)
    assert s.n_probes == 2 and s.expert_n_probes == 1
    assert _lost(s) == {"probe_count": C.probe_count.lost_per_extra_probe}


def test_must_spare_inside_a_zone_loses_the_must_spare_points_only(setting):
    case, pts = setting
    d = np.asarray(case.expert.probes[0].direction_lps)
    plan = _moved(case.expert, 1.0 * _side(d))  # 1 mm sideways: the zone reaches the gallbladder crescent
    cov_g, cov_t, margin = _truth(case.labels, "tumour_1", _zones(pts, plan))
    assert cov_g >= 99.0 and cov_t == 100.0 and margin >= 5.0  # nothing else changes
    s = score_plan(case, plan)
    assert _lost(s) == {"must_spare": C.must_spare.lost_per_structure}
    assert "gallbladder" in {c.id: c for c in s.criteria}["must_spare"].explanation_en


def test_procedure_time_scored_against_the_expert(setting):
    case, _ = setting
    s = score_plan(case, case.expert, procedure_time_min=80.0)  # 2 x the expert's 40 min: 50 % over 1.5 x
    assert _lost(s) == {"procedure_time": 5.0} and s.max_total == 105.0
    assert score_plan(case, case.expert, procedure_time_min=55.0).total == 105.0


def test_library_round_trip_scores_the_same(setting, tmp_path):
    case, _ = setting
    entry = add_case(tmp_path, case.ct, case.labels, case.expert, expert_time_min=40.0)
    back = load_case(tmp_path, entry.entry_id)
    assert back.entry.difficulty.criteria and back.entry.organ == "liver"
    assert score_plan(back, back.expert).total == 100.0


def test_in_memory_case_for_the_demo(setting):
    case, _ = setting
    tc = teaching_case(case.ct, case.labels, case.expert, expert_time_min=40.0)
    assert tc.entry.tumour == "tumour_1" and tc.entry.technique == "microwave" and tc.entry.organ == "liver"
    assert score_plan(tc, case.expert).total == 100.0


def test_needles_as_points_score_like_the_expert_plan(setting):
    """A trainee writes needles as entry/tip points; the zones are the catalogue's predicted zones."""
    import json

    from openir.core.errors import InputError
    from openir.training import parse_trainee_plan

    case, _ = setting
    pr = case.expert.probes[0]
    spec = {"tumour": "tumour_1", "probes": [{"device": pr.device, "power_w": pr.power_w, "time_s": pr.time_s,
                                              "entry_lps": list(pr.entry_lps), "tip_lps": list(pr.tip_lps)}]}
    assert score_plan(case, parse_trainee_plan(json.dumps(spec))).total == 100.0
    spec["probes"][0]["device"] = "no_such_device"
    with pytest.raises(InputError, match="no_such_device"):
        parse_trainee_plan(json.dumps(spec))
