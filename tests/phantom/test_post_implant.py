"""The synthetic post-implant CT: deterministic, seeds where the truth says, touching cases present."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core import InputError
from openir.phantom import PostImplantSpec, make_post_implant_ct
from openir.phantom.post_implant import seed_look

COARSE = PostImplantSpec(seed=3, spacing_mm=(1.0, 1.0, 1.5), tumour_diameter_mm=36.0)


@pytest.fixture(scope="module")
def phantom():
    return make_post_implant_ct(COARSE)


def test_deterministic(phantom):
    again = make_post_implant_ct(COARSE)
    assert np.array_equal(again.ct.array, phantom.ct.array)
    assert np.allclose(again.true_lps, phantom.true_lps)


def test_every_seed_is_bright_metal_at_its_true_centre(phantom):
    vals = phantom.ct.value_at(phantom.true_lps)
    assert np.all(vals >= 1500), vals.min()  # metal, above bone (900 HU) and contrast, even off-centre
    assert np.median(vals) == seed_look().ct_max_hu.value  # most seed cores saturate the scale


def test_ct_scale_is_clipped_like_a_scanner(phantom):
    a = phantom.ct.array
    look = seed_look()
    assert a.max() == look.ct_max_hu.value and a.min() >= look.ct_min_hu.value
    assert phantom.ct.meta["units"] == "HU"


def test_touching_chains_and_side_by_side_pairs(phantom):
    kinds = [s.touching for s in phantom.seeds]
    chains = [s for s in phantom.seeds if s.touching == "chain"]
    assert kinds.count("chain") == COARSE.chain_needles * COARSE.chain_length
    by_needle: dict[int, list] = {}
    for s in chains:
        by_needle.setdefault(s.needle, []).append(np.asarray(s.position_lps))
    for pts in by_needle.values():
        gaps = np.linalg.norm(np.diff(np.array(pts), axis=0), axis=1)
        assert np.all(gaps < seed_look().seed_length_mm.value + 0.6)  # end to end: touching
    side = [np.asarray(s.position_lps) for s in phantom.seeds if s.touching == "side"]
    assert len(side) == 2 * COARSE.side_by_side
    nearest = [min(np.linalg.norm(p - q) for q in side if q is not p) for p in side]
    assert max(nearest) < 2.0  # beside each other (0.95 mm apart across, <= 0.8 along)


def test_oblique_needles_leave_the_axial_plane(phantom):
    tilt = [np.degrees(np.arcsin(abs(n.planned_direction[2]))) for n in phantom.needles if n.kind == "oblique"]
    flat = [abs(n.planned_direction[2]) for n in phantom.needles if n.kind == "template"]
    assert len(tilt) == COARSE.oblique_needles and np.allclose(tilt, COARSE.oblique_deg, atol=1e-6)
    assert max(flat) < 1e-9


def test_implant_errors_move_seeds_off_the_plan(phantom):
    d = np.linalg.norm(phantom.true_lps - phantom.planned_lps, axis=1)
    assert 0.3 < np.median(d) < 6.0


def test_streaks_are_drawn_around_seeds():
    quiet = make_post_implant_ct(PostImplantSpec(**{**COARSE.__dict__, "streaks": False}))
    loud = make_post_implant_ct(COARSE)
    diff = loud.ct.array.astype(int) - quiet.ct.array.astype(int)
    assert diff.min() < -100 and diff.max() > 100  # dark and bright streaks
    far = np.abs(quiet.ct.index_to_world(np.argwhere(diff != 0)[:, ::-1]) - np.asarray(quiet.tumour.centre_lps))
    assert far.max() < 120.0  # around the implant only


@pytest.mark.parametrize("bad", [{"spacing_mm": (0.8, 0.8, 0.0)}, {"tumour_diameter_mm": 80.0},
                                 {"oblique_deg": 90.0}, {"side_by_side": -1}])
def test_bad_spec(bad):
    with pytest.raises(InputError):
        PostImplantSpec(**bad)


def test_a_plan_becomes_a_post_implant_ct_whose_seeds_are_found():
    from openir.phantom import implant_seeds, make_abdomen, seeds_from_plan
    from openir.seeds.detect import detect_seeds
    from openir.seeds.postimplant import match_seeds

    base = make_abdomen(seed=4, spacing_mm=(1.0, 1.0, 1.5), fov_mm=(409.6, 409.6, 60.0), fov_centre_lps=(0, 0, 50))
    c = np.asarray(base.tumours[0].centre_lps)
    grid = np.array([(x, 0.0, z) for x in (-10.0, 0.0, 10.0) for z in (-8.0, 8.0)])
    planned = np.concatenate([c + grid + [0.0, y, 0.0] for y in (-10.0, 0.0, 10.0)])
    needles = [n % 6 for n in range(len(planned))]
    truth = seeds_from_plan(planned, np.tile([0.0, 1.0, 0.0], (len(planned), 1)), needles, seed=2)
    post = implant_seeds(base.ct, truth, seed=2)
    assert np.array_equal(post.array, implant_seeds(base.ct, truth, seed=2).array)
    shift = np.linalg.norm(np.array([t.position_lps for t in truth]) - planned, axis=1)
    assert 0.2 < np.median(shift) < 5.0
    found = detect_seeds(post).positions_lps
    pairs = match_seeds(np.array([t.position_lps for t in truth]), found, 2.0)
    assert len(pairs) == len(truth)
    # 1.5 mm slices: a lone seed's volume varies ~2x with where it falls in the slices, and one or
    # two of them are split as if two seeds lay side by side (known limit, see RESULTS.md)
    assert len(pairs) / len(found) >= 0.85
