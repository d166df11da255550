"""Issue 14 bar: 2-3 cm tumours get the cryoprobe counts of practice (2-4) from the packaged physics
table (regenerated with the sourced planning isotherm and the re-fitted probe), at >= 99 % of
tumour + 5 mm or with the reason why not; and the cryo array device is the sourced default."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openir.phantom import TumourSpec, make_abdomen
from openir.plan import arrays as arrays_mod
from openir.plan import load_catalogue, plan_ablation
from openir.plan.devices import DeviceCatalogue, validate_catalogue
from openir.plan.placement import _array_device


@pytest.fixture(autouse=True)
def _real_physics():
    arrays_mod._array_zone_cached.cache_clear()
    yield
    arrays_mod._array_zone_cached.cache_clear()


def _plan(diameter, **spec):
    p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=diameter, **spec),), spacing_mm=(2.0, 2.0, 2.0))
    plan = plan_ablation(p.labels, [p.tumours[0].name], modality="cryo")
    t = plan.targets[0]
    assert t.modality == "cryo" and t.within_limits
    return plan, t


def test_30_mm_phantom_tumour_says_why_one_cryo_array_cannot_cover_it():
    """A 30 mm tumour + 5 mm margin is 40 mm long in every direction; one cryo array's modelled lethal
    zone (-30 C after 10-8-10, 30 mm active length) is 36-40 mm along the probes (packaged table), so
    the plan says so and lists the alternatives instead of exceeding the limits."""
    plan, t = _plan(30.0)
    assert t.n_probes <= 6 and not t.full_coverage
    assert 50.0 < t.target_coverage_pct < 99.0
    assert t.alternatives and any("within the configuration limits" in w for w in plan.warnings)
    from openir.plan.planner import (
        NOT_A_PLAN,  # a partial array is shown for the tumour board, not as a plan
    )

    assert t.configuration.startswith(NOT_A_PLAN) and any(NOT_A_PLAN in w and "cryoprobe array" in w for w in plan.warnings)


@pytest.mark.xfail(strict=True, reason="issue 14 bar not met at 30 mm: a 3-4 probe array's modelled -30 C zone is "
                   "31-34 mm across the probes (and 36 mm along, 30 mm active length NOT SOURCED) for a 38-40 mm "
                   "target; one pull-back lengthens it but cannot widen it, so the planner keeps 5-6 probes. The "
                   "power-limited probe option (cryo round 3) gives 3 probes, but its zones exceed the clinical "
                   "1-month zone's mean + 1 SD (Young 2024), so it is not the default")
def test_30_mm_phantom_tumour_gets_2_to_4_cryoprobes():
    _plan_and_check(30.0)


def test_20_mm_phantom_tumour_gets_2_to_4_cryoprobes_and_full_coverage():
    plan, t = _plan_and_check(20.0)
    assert t.full_coverage and t.target_coverage_pct >= 99.0


def test_30_mm_plan_says_why_3_to_4_probes_were_not_tried():
    plan, t = _plan(30.0)
    assert any("arrays of 2-4 probes not tried" in n and "even with 1 pull-back(s)" in n for n in t.notes), t.notes


def test_20_mm_subcapsular_ellipsoid_gets_4_probes_and_one_pull_back_not_5():
    """Target 38 x 30 x 26 mm: longer than one 3-4 probe zone along the probes (36 mm); drawn back once by
    the freezing length less the overlap (30 - 10 mm), 4 probes cover it (was 5 probes at one position)."""
    plan, t = _plan_and_check(20.0, shape="ellipsoid", location="subcapsular")
    assert t.full_coverage and t.n_probes <= 4
    assert any("cryo pull-back (unsourced" in w for w in plan.warnings)  # said in the plan and console
    assert any("freezing (active) length 30 mm" in w and "NOT SOURCED" in w for w in plan.warnings)
    pos = {}
    for pr in plan.probes:
        pos.setdefault(pr.array_position, []).append(np.array(pr.tip_lps))
    assert len(pos) == 2  # the second position: the same tracks, tips drawn back 20 mm along the shafts
    if len(pos) == 2:
        shift = np.array(pos[1]) - np.array(pos[2])
        assert np.allclose(np.linalg.norm(shift, axis=1), 20.0, atol=1e-6)
        assert {pr.track for pr in plan.probes if pr.array_position == 1} == \
            {pr.track for pr in plan.probes if pr.array_position == 2}
        assert all(pr.schedule for pr in plan.probes)  # each position is a full freeze-thaw-freeze


def _plan_and_check(diameter, **spec):
    plan, t = _plan(diameter, **spec)
    assert 2 <= t.n_probes <= 4, (t.n_probes, t.configuration)
    # coverage counted independently: the target mask against the planned zones (voxel counts)
    if t.full_coverage:
        assert t.target_coverage_pct >= 99.0
    else:  # the why-not is said, with the alternatives a tumour board would discuss
        assert plan.warnings and t.alternatives
    # tips of the array are the modelled layout: nearest neighbours 10-20 mm apart
    tips = np.array([pr.tip_lps for pr in plan.probes if pr.array_position == 1])
    d = np.linalg.norm(tips[:, None] - tips[None], axis=-1)
    nearest = np.where(np.eye(len(tips), dtype=bool), np.inf, d).min(axis=1)
    assert np.all(nearest >= 10.0 - 0.5) and np.all(nearest <= 20.0 + 0.5)
    assert math.isfinite(t.target_coverage_pct)
    assert t.evidence_used.startswith("model (") and "Littrup 2009" in t.evidence_used and "icerod" in t.evidence_used
    return plan, t


def test_cryo_array_device_is_the_sourced_default_and_said():
    cat = load_catalogue()
    dev, why = _array_device(cat, "cryo", None)
    assert dev == "icerod" and "PMC2762356" in why and "17 G" in why
    assert _array_device(cat, "cryo", ["visica2"]) == ("visica2", "chosen by the user")
    bad = DeviceCatalogue.model_validate({**cat.model_dump(), "array_defaults": {"cryo": {"device": "emprint",
                                                                                          "reason": "a wrong modality"}}})
    assert any("is microwave, not cryo" in p for p in validate_catalogue(bad))
