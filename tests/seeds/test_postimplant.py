"""Post-implant dosimetry: matching, needle errors, dose recomputed from found seeds vs plan."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core import InputError
from openir.phantom import PostImplantSpec, make_post_implant_ct
from openir.seeds import Seed
from openir.seeds.postimplant import match_seeds, registry_dosimetry_post, verify_implant


def test_match_recovers_a_permutation_and_drops_far_pairs():
    rng = np.random.default_rng(4)
    planned = rng.uniform(-30, 30, (25, 3))
    perm = rng.permutation(25)
    found = planned[perm] + rng.normal(0, 0.5, (25, 3))
    found[3] += 40.0  # one seed migrated far away
    pairs = match_seeds(planned, found, 5.0)
    got = {p: f for p, f, _ in pairs}
    assert len(pairs) == 24
    lost = int(perm[3])
    assert lost not in got
    assert all(perm[f] == p for p, f in got.items())


@pytest.fixture(scope="module")
def case():
    return make_post_implant_ct(PostImplantSpec(seed=0))


def _plan(p, positions, sk=0.8):
    return [Seed(position_lps=tuple(x), direction_lps=p.needles[s.needle].planned_direction, air_kerma_strength_U=sk,
                 needle=s.needle) for s, x in zip(p.seeds, positions, strict=True)]


def test_plan_equal_to_truth_gives_the_same_dose(case):
    plan = _plan(case, case.true_lps)
    r = verify_implant(case.ct, case.labels.mask(case.tumour.name), plan, 120.0)
    assert r.matched_seeds >= len(plan) - 1
    assert r.seed_error_mean_mm < 0.6
    assert abs(r.delta_d90_gy) < 0.03 * r.plan.d90_gy
    assert abs(r.delta_v100_pct) < 2.0


def test_needle_shift_is_measured_across_and_along_the_needle(case):
    shift = np.array([1.5, -2.0, 1.0])  # the plan lies shifted from where the seeds are
    plan = _plan(case, case.true_lps - shift)
    r = verify_implant(case.ct, case.labels.mask(case.tumour.name), plan, 120.0)
    for n in r.needles:
        if n.seeds_found < 2:
            continue
        d = np.asarray(case.needles[n.needle].planned_direction)
        along = float(shift @ d)
        assert n.depth_mm == pytest.approx(along, abs=0.6)
        assert n.lateral_mm == pytest.approx(float(np.linalg.norm(shift - along * d)), abs=0.6)


def test_migrated_seeds_are_missing_and_extra(case):
    plan = _plan(case, case.planned_lps)
    r = verify_implant(case.ct, case.labels.mask(case.tumour.name), plan, 120.0)
    far = np.linalg.norm(case.true_lps - case.planned_lps, axis=1) > 10.0
    assert len(r.missing_planned) >= int(far.sum()) - 1
    assert r.found_seeds == pytest.approx(len(plan), abs=1)
    assert r.model_dump()["post"]["d90_gy"] > 0
    reg = registry_dosimetry_post(r)
    from openir.registry import SeedDosimetryIn

    assert SeedDosimetryIn.model_validate(reg).stage == "post_implant"
    assert reg["seeds"] == r.found_seeds and reg["d90_gy"] == round(r.post.d90_gy, 2)


def test_bad_input(case):
    mask = case.labels.mask(case.tumour.name)
    plan = _plan(case, case.true_lps)
    with pytest.raises(InputError, match="no seeds"):
        verify_implant(case.ct, mask, [], 120.0)
    with pytest.raises(InputError, match="empty"):
        verify_implant(case.ct, np.zeros_like(mask), plan, 120.0)
    with pytest.raises(InputError, match="shape"):
        verify_implant(case.ct, mask[1:], plan, 120.0)
    with pytest.raises(InputError, match="prescription"):
        verify_implant(case.ct, mask, plan, 0.0)
