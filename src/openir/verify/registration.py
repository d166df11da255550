"""Pre/post registration with SimpleITK: rigid, then optional affine and B-spline, organ-masked.

Direction: the post image is fixed and the pre image moves, so the pre tumour label is warped onto
the post grid where the ablation zone was drawn. The fitted transform maps post points to pre
points (ITK convention). Quality is the organ overlap after warping (Dice, mean surface
distance); an alignment below the configured thresholds is refused with a clear message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from openir.core.errors import GeometryError, OpenIRError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .config import load_config
from .models import RegistrationQuality


class RegistrationRefused(OpenIRError):
    """The images could not be aligned well enough to measure margins."""

    exit_code = 3


@dataclass
class Registration:
    transform: sitk.Transform  # post (fixed) point -> pre (moving) point, LPS mm
    quality: RegistrationQuality


def to_sitk(volume: Volume, dtype=sitk.sitkFloat32) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.array))
    img.SetSpacing([float(s) for s in volume.spacing])
    img.SetOrigin([float(o) for o in volume.origin])
    img.SetDirection([float(x) for x in volume.direction.ravel()])
    return sitk.Cast(img, dtype)


def warp_array(array: np.ndarray, source: Grid, target: Grid, transform: sitk.Transform,
               nearest: bool = True) -> np.ndarray:
    """Resample ``array`` (on ``source``) onto ``target`` through ``transform`` (target -> source)."""
    src = to_sitk(Volume(array, source.affine), sitk.sitkFloat32)
    ref = to_sitk(Volume(np.zeros(target.shape, np.uint8), target.affine), sitk.sitkUInt8)
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(src, ref, transform, interp, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def warp_labels(labels: LabelMap, target: Grid, transform: sitk.Transform) -> LabelMap:
    """Bring a pre label map onto the post grid (nearest neighbour, labels kept)."""
    arr = warp_array(labels.array.astype(np.float32), labels.grid, target, transform)
    return LabelMap(np.rint(arr).astype(labels.array.dtype), target.affine.copy(), dict(labels.meta),
                    dict(labels.labels))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * float((a & b).sum()) / s if s else 1.0


def mean_surface_distance(a: np.ndarray, b: np.ndarray, spacing_kji: Sequence[float]) -> float:
    """Symmetric mean distance (mm) between the boundary voxels of two masks on one grid."""
    if not a.any() or not b.any():
        return float("inf")
    sa = a & ~ndimage.binary_erosion(a)
    sb = b & ~ndimage.binary_erosion(b)
    da = ndimage.distance_transform_edt(~sa, sampling=spacing_kji)
    db = ndimage.distance_transform_edt(~sb, sampling=spacing_kji)
    return float((db[sa].sum() + da[sb].sum()) / (sa.sum() + sb.sum()))


def _landmark_init(fixed_pts: np.ndarray, moving_pts: np.ndarray) -> sitk.Euler3DTransform:
    if len(fixed_pts) != len(moving_pts) or len(fixed_pts) < 3:
        raise GeometryError("landmark registration needs at least 3 paired points (post, pre)")
    versor = sitk.VersorRigid3DTransform(sitk.LandmarkBasedTransformInitializer(
        sitk.VersorRigid3DTransform(), [float(x) for x in np.ravel(fixed_pts)],
        [float(x) for x in np.ravel(moving_pts)],
    ))
    tx = sitk.Euler3DTransform()
    tx.SetCenter(versor.GetCenter())
    tx.SetMatrix(versor.GetMatrix())
    tx.SetTranslation(versor.GetTranslation())
    return tx


def _method(metric: str) -> sitk.ImageRegistrationMethod:
    r = sitk.ImageRegistrationMethod()
    if metric == "mattes":
        r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    else:
        r.SetMetricAsMeanSquares()
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(0.25, seed=7)
    r.SetInterpolator(sitk.sitkLinear)
    return r


def register(
    post: Volume,
    pre: Volume,
    *,
    post_organ: np.ndarray | None = None,
    pre_organ: np.ndarray | None = None,
    stages: Sequence[str] = ("rigid",),
    metric: str = "mattes",
    landmarks_post: np.ndarray | None = None,
    landmarks_pre: np.ndarray | None = None,
    bspline_mesh_mm: float = 40.0,
    iterations: int = 200,
    refuse: bool = True,
) -> Registration:
    """Align ``pre`` onto ``post``; returns the transform and its quality.

    ``stages`` is any of 'rigid', 'affine', 'bspline' in that order. With organ masks the metric is
    restricted to the (dilated) post organ and quality is measured on the organ overlap. With
    paired landmarks (``(N, 3)`` LPS mm each, N >= 3) the rigid stage starts from their best fit,
    and with stages=() the landmark fit alone is used.
    """
    unknown = set(stages) - {"rigid", "affine", "bspline"}
    if unknown:
        raise GeometryError(f"unknown registration stage(s) {sorted(unknown)}; use rigid, affine, bspline")
    fixed = to_sitk(post)
    moving = to_sitk(pre)
    mask_img = None
    if post_organ is not None and post_organ.any():
        grown = ndimage.binary_dilation(post_organ, iterations=3)
        mask_img = to_sitk(Volume(grown.astype(np.uint8), post.affine), sitk.sitkUInt8)
    if landmarks_post is not None and landmarks_pre is not None:
        init: sitk.Transform = _landmark_init(np.asarray(landmarks_post), np.asarray(landmarks_pre))
    else:
        init = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    composite = sitk.CompositeTransform(3)
    metric_value = None
    done: list[str] = []
    for stage in ("rigid", "affine", "bspline"):
        if stage not in stages:
            continue
        r = _method(metric)
        if mask_img is not None:
            r.SetMetricFixedMask(mask_img)
        if stage == "bspline":
            size = [max(1, int(round(e / bspline_mesh_mm))) for e in post.grid.extent_mm]
            tx = sitk.BSplineTransformInitializer(fixed, size, order=3)
            r.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=max(10, iterations // 4),
                                   maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=200)
            r.SetShrinkFactorsPerLevel([2, 1])
            r.SetSmoothingSigmasPerLevel([1.0, 0.0])
            r.SetMovingInitialTransform(composite)
            r.SetInitialTransform(tx, inPlace=True)
        else:
            if stage == "rigid":
                tx = sitk.Euler3DTransform(init)
            else:
                tx = sitk.AffineTransform(3)
                centre = post.grid.index_to_world((np.array(post.grid.shape_ijk) - 1) / 2.0)
                tx.SetCenter([float(c) for c in centre])
                r.SetMovingInitialTransform(composite)
            r.SetOptimizerAsRegularStepGradientDescent(
                learningRate=1.0, minStep=1e-4, numberOfIterations=iterations,
                gradientMagnitudeTolerance=1e-8, relaxationFactor=0.5,
            )
            r.SetOptimizerScalesFromPhysicalShift()
            r.SetShrinkFactorsPerLevel([4, 2, 1])
            r.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
            r.SetInitialTransform(tx, inPlace=True)
        r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
        try:
            r.Execute(fixed, moving)
        except RuntimeError as exc:  # ITK stops on e.g. a blank image or no overlap
            reason = str(exc).strip().splitlines()[-1][:200]
            raise RegistrationRefused(f"registration failed at the {stage} stage: {reason}") from None
        metric_value = float(r.GetMetricValue())
        composite.AddTransform(tx)
        done.append(stage)
    if not done:
        composite.AddTransform(init)
        done.append("landmarks" if landmarks_post is not None else "identity")
    quality = assess(composite, post, pre, post_organ, pre_organ, landmarks_post, landmarks_pre,
                     method="+".join(done), metric_value=metric_value)
    if refuse and not quality.accepted:
        raise RegistrationRefused(f"registration refused: {quality.message}")
    return Registration(composite, quality)


def assess(
    transform: sitk.Transform,
    post: Volume,
    pre: Volume,
    post_organ: np.ndarray | None,
    pre_organ: np.ndarray | None,
    landmarks_post: np.ndarray | None = None,
    landmarks_pre: np.ndarray | None = None,
    method: str = "",
    metric_value: float | None = None,
) -> RegistrationQuality:
    """Organ Dice / mean surface distance after warping, landmark residual, and acceptance."""
    cfg = load_config().registration
    min_dice = float(cfg.min_organ_dice.value)  # type: ignore[arg-type]
    max_msd = float(cfg.max_mean_surface_distance_mm.value)  # type: ignore[arg-type]
    q = RegistrationQuality(method=method, metric_value=metric_value)
    problems = []
    if post_organ is not None and pre_organ is not None and post_organ.any() and pre_organ.any():
        warped = warp_array(pre_organ.astype(np.float32), pre.grid, post.grid, transform) > 0.5
        q.organ_dice = round(dice(warped, post_organ.astype(bool)), 4)
        q.organ_mean_surface_distance_mm = round(
            mean_surface_distance(warped, post_organ.astype(bool), post.spacing[::-1]), 3
        )
        if q.organ_dice < min_dice:
            problems.append(f"organ Dice {q.organ_dice:.2f} < {min_dice:.2f}")
        if q.organ_mean_surface_distance_mm > max_msd:
            problems.append(f"organ mean surface distance {q.organ_mean_surface_distance_mm:.1f} mm > {max_msd:.1f} mm")
    if landmarks_post is not None and landmarks_pre is not None:
        mapped = np.array([transform.TransformPoint([float(x) for x in p]) for p in np.asarray(landmarks_post)])
        q.landmark_tre_mm = round(float(np.linalg.norm(mapped - np.asarray(landmarks_pre), axis=1).mean()), 3)
    if problems:
        q.accepted = False
        q.message = "; ".join(problems) + " (thresholds in openir/verify/data/verification.yaml)"
    elif q.organ_dice is None:
        q.message = "no organ masks on both images: quality not measured"
    else:
        q.message = "accepted"
    return q
