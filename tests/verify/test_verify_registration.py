"""Known rigid and smooth deformations are recovered well enough for margins (bar: error < 1 mm)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from verify_synth import abdomen_like, ball, grid_for

from openir.core import InputError, Volume
from openir.verify.margins import margin_analysis
from openir.verify.registration import (
    RegistrationOptions,
    RegistrationRefused,
    register,
    warp_array,
)


@pytest.fixture(scope="module")
def case():
    g = grid_for(110.0, (2.0, 2.0, 2.5))
    mid = g.origin + (np.array(g.shape_ijk) - 1) / 2.0 * g.spacing
    tc = mid + np.array([6.0, -4.0, 3.0])
    img, organ, tumour = abdomen_like(g, tc, 9.0, seed=3)
    zone_pre = ball(g, tc + np.array([3.0, 0.0, 0.0]), 14.0)  # analytic margin 2 mm
    return g, mid, img, organ, tumour, zone_pre


def _to_post(arr, g, tx, nearest=True):
    out = warp_array(arr.astype(np.float32), g, g, tx, nearest=nearest)
    return out if not nearest else out > 0.5


def _tre(case, reg_tx: sitk.Transform, truth: sitk.Transform) -> float:
    """Mean target registration error (mm) over organ points: fitted vs known post -> pre mapping."""
    g, organ = case[0], case[3]
    pts = g.voxel_centres()[organ][::97]
    err = [np.linalg.norm(np.subtract(reg_tx.TransformPoint([float(x) for x in p]),
                                      truth.TransformPoint([float(x) for x in p]))) for p in pts]
    return float(np.mean(err))


def _margin_error(case, truth: sitk.Transform, stages, iterations=200):
    g, _, img, organ, tumour, zone_pre = case
    post_img = _to_post(img, g, truth, nearest=False)
    post_organ, post_zone = _to_post(organ, g, truth), _to_post(zone_pre, g, truth)
    reg = register(Volume(post_img, g.affine), Volume(img, g.affine), post_organ=post_organ,
                   pre_organ=organ, options=RegistrationOptions(stages=stages, iterations=iterations))
    assert reg.quality.accepted and reg.quality.usable_for_verdict and reg.quality.organ_dice > 0.95
    m_reg = margin_analysis(_to_post(tumour, g, reg.transform), post_zone, g).report.min_margin_mm
    m_true = margin_analysis(_to_post(tumour, g, truth), post_zone, g).report.min_margin_mm
    return m_reg, m_true, _tre(case, reg.transform, truth)


def test_known_rigid_motion_is_recovered(case):
    g, mid = case[0], case[1]
    truth = sitk.Euler3DTransform()
    truth.SetCenter([float(x) for x in mid])
    truth.SetRotation(0.05, -0.04, 0.07)
    truth.SetTranslation((7.0, -5.0, 4.0))
    m_reg, m_true, tre = _margin_error(case, truth, ("rigid",))
    assert abs(m_reg - m_true) < 1.0 and tre < 1.0
    assert abs(m_reg - 2.0) < 1.0 + max(g.spacing) / 2  # analytic value, through two resamplings


def test_known_smooth_deformation_is_recovered(case):
    g, mid = case[0], case[1]
    p = g.voxel_centres() - mid
    disp = 4.0 * np.stack([np.sin(2 * np.pi * p[..., 1] / 140.0), np.sin(2 * np.pi * p[..., 2] / 140.0),
                           np.sin(2 * np.pi * p[..., 0] / 140.0)], -1)
    field = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
    field.SetSpacing([float(s) for s in g.spacing])
    field.SetOrigin([float(o) for o in g.origin])
    truth = sitk.DisplacementFieldTransform(field)
    m_reg, m_true, tre = _margin_error(case, truth, ("rigid", "bspline"), iterations=80)
    print(f"deformable stage on a known 4 mm sinusoidal deformation: TRE {tre:.2f} mm")
    assert abs(m_reg - m_true) < 1.0 and tre < 1.5


def test_failed_registration_is_refused(case):
    g, mid, img, organ, *_ = case
    other = np.roll(organ, 18, axis=2)  # a post organ that does not match the image content
    post = Volume(abdomen_like(g, mid, 5.0, seed=11)[0], g.affine)
    with pytest.raises(RegistrationRefused, match="organ Dice"):
        register(post, Volume(img, g.affine), post_organ=other, pre_organ=organ,
                 options=RegistrationOptions(iterations=5))


def test_blank_image_is_refused_not_a_traceback(case):
    g, mid, img, organ, *_ = case
    with pytest.raises(InputError, match="post image is blank"):
        register(Volume(np.zeros(img.shape, np.float32), g.affine), Volume(img, g.affine))


def test_landmark_initialisation(case):
    g, mid, img, organ, *_ = case
    truth = sitk.Euler3DTransform()
    truth.SetCenter([float(x) for x in mid])
    truth.SetRotation(0.0, 0.0, 0.3)
    truth.SetTranslation((20.0, 0.0, 0.0))
    post_pts = mid + np.array([[20, 0, 0], [0, 25, 0], [0, 0, 30], [-15, -10, 5.0]])
    pre_pts = np.array([truth.TransformPoint([float(x) for x in q]) for q in post_pts])
    post_img = _to_post(img, g, truth, nearest=False)
    reg = register(Volume(post_img, g.affine), Volume(img, g.affine), post_organ=_to_post(organ, g, truth),
                   pre_organ=organ, landmarks_post=post_pts, landmarks_pre=pre_pts,
                   options=RegistrationOptions(stages=()))
    assert reg.quality.landmark_tre_mm < 0.01 and reg.quality.organ_dice > 0.95


def test_mirror_image_is_never_accepted(case):
    """A CT registered to its own left-right mirror image: refused with organs, and without them."""
    g, mid, img, organ, *_ = case
    mirrored = np.ascontiguousarray(img[:, :, ::-1])
    with pytest.raises(RegistrationRefused, match="image similarity"):
        register(Volume(img, g.affine), Volume(mirrored, g.affine))
    with pytest.raises(RegistrationRefused, match="image similarity"):  # the organ outline is symmetric here
        register(Volume(img, g.affine), Volume(mirrored, g.affine), post_organ=organ,
                 pre_organ=np.ascontiguousarray(organ[:, :, ::-1]))


def test_rigid_motion_without_organs_is_accepted_by_image_similarity(case):
    g, mid, img, *_ = case
    truth = sitk.Euler3DTransform()
    truth.SetCenter([float(x) for x in mid])
    truth.SetRotation(0.03, 0.0, -0.05)
    truth.SetTranslation((5.0, 3.0, -4.0))
    reg = register(Volume(_to_post(img, g, truth, nearest=False), g.affine), Volume(img, g.affine))
    assert reg.quality.measured_by == ["image"] and reg.quality.accepted and reg.quality.image_similarity > 0.8


def test_images_that_do_not_overlap_are_refused_in_plain_words(case):
    g, mid, img, *_ = case
    far = Volume(img, g.affine.copy())
    far.affine[:3, 3] += [0.0, 0.0, 400.0]  # another part of the body, same scanner frame
    with pytest.raises(RegistrationRefused) as err:
        register(Volume(img, g.affine), far, landmarks_post=np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0.0]]) + mid,
                 landmarks_pre=np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0.0]]) + mid,
                 options=RegistrationOptions(stages=()))
    assert "overlap" in str(err.value) and "itk" not in str(err.value).lower()
