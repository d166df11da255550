"""Registration: exact recovery, the reflection guard, FRE and TRE against Fitzpatrick's analytic
expectations (Monte Carlo, known FLE), refusal above the limits, and surface ICP."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core.errors import InputError
from openir.navigate import (
    Fiducials,
    expected_fre,
    expected_tre,
    label_surface,
    random_rigid,
    refine_with_surface,
    register_paired_points,
    rigid_fit,
)
from openir.navigate.registration import apply

from .phantom import phantom


def test_rigid_fit_recovers_a_random_transform():
    rng = np.random.default_rng(3)
    t = random_rigid(rng)
    p = rng.uniform(-100, 100, (7, 3))
    m = rigid_fit(p, apply(t, p))
    assert np.abs(m - t).max() < 1e-9


def test_reflection_guard_returns_a_rotation_for_mirrored_points():
    rng = np.random.default_rng(4)
    p = rng.uniform(-50, 50, (6, 3))
    mirrored = p * [-1, 1, 1]  # no rotation maps p onto this exactly
    m = rigid_fit(p, mirrored)
    assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0)
    # a plain SVD without the guard would return the reflection diag(-1, 1, 1)
    assert not np.allclose(m[:3, :3], np.diag([-1.0, 1.0, 1.0]))


def test_fre_and_tre_match_their_analytic_expectations():
    """Monte Carlo over 4000 trials with isotropic FLE of RMS 1 mm: RMS FRE and RMS TRE at two
    targets within 10 % of Fitzpatrick's expectations (they agree to about 2 % here)."""
    rng = np.random.default_rng(11)
    fid = np.array([[-60, -40, 10], [70, -50, -20], [0, 80, 30], [-50, 40, -60], [40, 30, 70], [10, -10, -80]], float)
    targets = np.array([[0, 0, 0], [90, 60, 40]], float)
    fle = 1.0
    n_trials = 4000
    fre2, tre2 = [], []
    for _ in range(n_trials):
        t = random_rigid(rng)
        noisy = fid + rng.normal(scale=fle / np.sqrt(3), size=fid.shape)
        trk = apply(t, noisy)
        m = rigid_fit(trk, fid)
        fre2.append(np.mean(np.sum((apply(m, trk) - fid) ** 2, axis=1)))
        tre2.append(np.sum((apply(m, apply(t, targets)) - targets) ** 2, axis=1))
    rms_fre = np.sqrt(np.mean(fre2))
    rms_tre = np.sqrt(np.mean(tre2, axis=0))
    print("FRE", rms_fre, expected_fre(fle, len(fid)), "TRE", rms_tre, [expected_tre(fid, t, fle) for t in targets])
    assert rms_fre == pytest.approx(expected_fre(fle, len(fid)), rel=0.10)
    for k, target in enumerate(targets):
        assert rms_tre[k] == pytest.approx(expected_tre(fid, target, fle), rel=0.10)
    assert rms_tre[1] > 1.5 * rms_tre[0]  # farther from the centroid, larger TRE: the formula's point


def test_registration_is_refused_above_the_limits():
    rng = np.random.default_rng(5)
    fid = rng.uniform(-80, 80, (6, 3))
    good = register_paired_points(Fiducials(fid, fid + rng.normal(scale=0.3, size=fid.shape)), (0, 0, 0))
    assert good.accepted and good.reasons == []
    bad = register_paired_points(Fiducials(fid, fid + rng.normal(scale=6.0, size=fid.shape)), (0, 0, 0))
    assert not bad.accepted and any("FRE" in r for r in bad.reasons)
    far = register_paired_points(Fiducials(fid, fid + rng.normal(scale=0.3, size=fid.shape), fle_mm=2.0),
                                 (900, 900, 900))
    assert not far.accepted and any("TRE" in r for r in far.reasons)
    few = register_paired_points(Fiducials(fid[:3], fid[:3]), (0, 0, 0))
    assert not few.accepted and "fiducials" in few.reasons[0]
    with pytest.raises(InputError, match="collinear"):
        register_paired_points(Fiducials(np.outer(np.arange(5), [1, 2, 3]), np.outer(np.arange(5), [1, 2, 3])), (0, 0, 0))


def test_surface_icp_corrects_a_misregistration():
    _, labels = phantom()
    verts, _ = label_surface(labels, ["skin", "fat"])
    rng = np.random.default_rng(2)
    sel = verts[(verts[:, 1] < 0) & (np.abs(verts[:, 2]) < 50)]  # anterior skin the pointer can touch
    sel = sel[rng.choice(len(sel), 300, replace=False)]
    truth = random_rigid(rng)  # tracker <- image
    trk = apply(truth, sel + rng.normal(scale=0.2, size=sel.shape))
    fid_img = np.array([[0, -66, 0], [40, -50, 30], [-40, -50, -30], [30, -58, -40], [-30, -58, 40.0]])
    fid = Fiducials(fid_img, apply(truth, fid_img + rng.normal(scale=1.0, size=fid_img.shape)))
    initial = register_paired_points(fid, (0, 10, 0))
    inv = np.linalg.inv(truth)
    probe = np.array([[0, 10, 0.0]])
    err0 = np.linalg.norm(apply(np.asarray(initial.image_from_tracker), apply(truth, probe)) - probe)
    refined = refine_with_surface(initial, trk, verts, fid=fid, target_lps=(0, 10, 0))
    err1 = np.linalg.norm(apply(np.asarray(refined.image_from_tracker), apply(truth, probe)) - probe)
    assert refined.method == "surface_icp" and refined.surface_rms_mm < 1.0
    print(f"target error before ICP {err0:.2f} mm, after {err1:.2f} mm")
    assert err1 < err0 or err1 < 0.5
    assert np.abs(np.asarray(refined.image_from_tracker)[:3, :3] - inv[:3, :3]).max() < 0.02
