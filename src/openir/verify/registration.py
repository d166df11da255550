"""Pre/post registration with SimpleITK: rigid, then optional affine and B-spline, organ-masked.

Direction: the post image is fixed and the pre image moves, so the pre tumour label is warped onto
the post grid where the ablation zone was drawn. The fitted transform maps post points to pre
points (ITK convention).

Quality gate: every alignment is measured before a margin may rest on it - organ overlap after
warping (Dice, mean surface distance) when both scans carry the organ, the normalised correlation
of the two images inside the body whenever both images are given, and the landmark residual when
landmarks are given. An alignment with no measure, or one below a threshold of ``data/verification.yaml``, is
refused with a message in the user's terms (a CT registered to its own mirror image fails both
the organ and the image check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from openir.core.errors import GeometryError, InputError, OpenIRError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .config import load_config
from .models import RegistrationQuality


class RegistrationRefused(OpenIRError):
    """The images could not be aligned well enough to measure margins."""

    exit_code = 3


@dataclass(frozen=True)
class RegistrationOptions:
    """``stages``: any of 'rigid', 'affine', 'bspline' (in that order); () = landmarks alone."""

    stages: Sequence[str] = ("rigid",)
    metric: str = "mattes"
    bspline_mesh_mm: float = 40.0
    iterations: int = 200
    refuse: bool = True


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
    landmarks_post: np.ndarray | None = None,
    landmarks_pre: np.ndarray | None = None,
    options: RegistrationOptions | None = None,
) -> Registration:
    """Align ``pre`` onto ``post``; returns the transform and its measured quality.

    With organ masks the metric is restricted to the (dilated) post organ and quality is measured
    on the organ overlap. With paired landmarks (``(N, 3)`` LPS mm each, N >= 3) the rigid stage
    starts from their best fit, and with stages=() the landmark fit alone is used. A refused
    alignment raises `RegistrationRefused` (unless ``options.refuse`` is false).

    >>> import numpy as np
    >>> from openir.core import Volume, make_affine
    >>> z, y, x = np.mgrid[:32, :32, :32]
    >>> img = (np.sin(x / 3.0) + np.cos(y / 4.0) + np.sin(z / 5.0 + x / 7.0)).astype(np.float32)
    >>> reg = register(Volume(img, make_affine((2.0, 2.0, 2.0))), Volume(img, make_affine((2.0, 2.0, 2.0))))
    >>> reg.quality.accepted, reg.quality.measured_by, reg.quality.image_similarity > 0.95
    (True, ['image'], True)
    """
    opts = options or RegistrationOptions()
    stages, metric, iterations = tuple(opts.stages), opts.metric, opts.iterations
    _check_image(post, "post")
    _check_image(pre, "pre")
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
            size = [max(1, int(round(e / opts.bspline_mesh_mm))) for e in post.grid.extent_mm]
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
        except RuntimeError as exc:  # ITK stops on e.g. no overlap; say it in the user's terms
            raise RegistrationRefused(_itk_reason(str(exc), stage)) from None
        metric_value = float(r.GetMetricValue())
        composite.AddTransform(tx)
        done.append(stage)
    if not done:
        composite.AddTransform(init)
        done.append("landmarks" if landmarks_post is not None else "identity")
    quality = assess(composite, post, pre, organs=(post_organ, pre_organ),
                     landmarks=(landmarks_post, landmarks_pre), method="+".join(done), metric_value=metric_value)
    if opts.refuse and not quality.accepted:
        raise RegistrationRefused(f"registration refused: {quality.message}")
    return Registration(composite, quality)


def _check_image(v: Volume, which: str) -> None:
    a = np.asarray(v.array)
    if a.size == 0 or not np.isfinite(a).any():
        raise InputError(f"the {which} image has no valid voxels", field=f"{which}_image")
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi - lo <= 1e-6 * max(1.0, abs(hi)):
        raise InputError(f"the {which} image is blank (every voxel is {lo:g}): nothing to align",
                         source=v.meta.get("source"), field=f"{which}_image")


def _itk_reason(text: str, stage: str) -> str:
    low = text.lower()
    if "outside" in low or "overlap" in low or "no valid points" in low or "samples" in low:
        return ("the pre and post images do not overlap once aligned: they seem to show different parts of "
                "the body - check that both series cover the treated region")
    return (f"the {stage} alignment did not converge: check that both images show the treated region "
            "and are not blank or truncated")


def image_similarity(post: Volume, pre: Volume, transform: sitk.Transform) -> tuple[float, float]:
    """Normalised correlation of post and moved pre inside the body, and the overlap fraction.

    Correlation is taken over the overlap's bright interior (above the mid-level, eroded 3 voxels),
    after a 1-voxel Gaussian; the overlap fraction is the overlap volume over the smaller image's.
    """
    moved = warp_array(pre.array.astype(np.float32), pre.grid, post.grid, transform, nearest=False)
    cover = warp_array(np.ones(pre.shape, np.float32), pre.grid, post.grid, transform, nearest=True) > 0.5
    frac = float(cover.sum() * post.grid.voxel_volume_mm3) / min(
        float(np.prod(post.shape)) * post.grid.voxel_volume_mm3, float(np.prod(pre.shape)) * pre.grid.voxel_volume_mm3
    )
    a_all = ndimage.gaussian_filter(np.asarray(post.array, np.float32), 1.0)
    lo, hi = np.percentile(a_all[cover], [5, 95]) if cover.any() else (0.0, 0.0)
    # inside the body, away from its outline: the outline of a roughly symmetric body matches its own
    # mirror image; the structures inside do not
    inner = ndimage.binary_erosion(cover & (a_all > 0.5 * (lo + hi)), iterations=3)
    if inner.sum() < 100:
        return 0.0, min(frac, 1.0)
    a = a_all[inner]
    b = ndimage.gaussian_filter(moved, 1.0)[inner]
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return (float((a * b).sum()) / den if den > 0 else 0.0), min(frac, 1.0)


def assess(
    transform: sitk.Transform,
    post: Volume | None,
    pre: Volume | None,
    *,
    organs: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    landmarks: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    grids: tuple[Grid, Grid] | None = None,
    method: str = "",
    metric_value: float | None = None,
) -> RegistrationQuality:
    """Measure an alignment and decide whether a verdict may rest on it.

    Organ Dice / mean surface distance when the organ is on both scans; image similarity when both
    images are given (a symmetric organ outline can match its mirror image, the image inside cannot);
    landmark residual when landmarks are given. ``grids`` (post, pre) places the organ masks when no images are given. Accepted only if
    something was measured and every measure is within its threshold.
    """
    cfg = load_config().registration
    min_dice = float(cfg.min_organ_dice.value)  # type: ignore[arg-type]
    max_msd = float(cfg.max_mean_surface_distance_mm.value)  # type: ignore[arg-type]
    min_ncc = float(cfg.min_image_similarity.value)  # type: ignore[arg-type]
    max_tre = float(cfg.max_landmark_tre_mm.value)  # type: ignore[arg-type]
    min_overlap = float(cfg.min_overlap_fraction.value)  # type: ignore[arg-type]
    q = RegistrationQuality(method=method, metric_value=metric_value)
    problems: list[str] = []
    post_organ, pre_organ = organs
    g_post, g_pre = grids if grids is not None else (post.grid, pre.grid)  # type: ignore[union-attr]
    if post_organ is not None and pre_organ is not None and post_organ.any() and pre_organ.any():
        warped = warp_array(pre_organ.astype(np.float32), g_pre, g_post, transform) > 0.5
        q.organ_dice = round(dice(warped, post_organ.astype(bool)), 4)
        q.organ_mean_surface_distance_mm = round(
            mean_surface_distance(warped, post_organ.astype(bool), g_post.spacing[::-1]), 3
        )
        q.measured_by.append("organ")
        if q.organ_dice < min_dice:
            problems.append(f"organ Dice {q.organ_dice:.2f} < {min_dice:.2f}")
        if q.organ_mean_surface_distance_mm > max_msd:
            problems.append(f"organ mean surface distance {q.organ_mean_surface_distance_mm:.1f} mm > {max_msd:.1f} mm")
    if post is not None and pre is not None:
        ncc, frac = image_similarity(post, pre, transform)
        q.image_similarity, q.overlap_fraction = round(ncc, 4), round(frac, 4)
        if frac < min_overlap:
            problems.append(f"the images overlap only {100 * frac:.0f} % once aligned (they seem to show "
                            "different parts of the body)")
        q.measured_by.append("image")
        if ncc < min_ncc:
            problems.append(f"image similarity {ncc:.2f} < {min_ncc:.2f} (the images do not match "
                            "once aligned: wrong series, mirrored or badly misaligned)")
    lm_post, lm_pre = landmarks
    if lm_post is not None and lm_pre is not None:
        mapped = np.array([transform.TransformPoint([float(x) for x in p]) for p in np.asarray(lm_post)])
        q.landmark_tre_mm = round(float(np.linalg.norm(mapped - np.asarray(lm_pre), axis=1).mean()), 3)
        q.measured_by.append("landmarks")
        if q.landmark_tre_mm > max_tre:
            problems.append(f"landmark residual {q.landmark_tre_mm:.1f} mm > {max_tre:.1f} mm")
    src = " (thresholds in openir/verify/data/verification.yaml)"
    if problems:
        q.message = "; ".join(problems) + src
    elif not q.measured_by:
        q.message = ("quality not measured: give the organ label on both scans, both images, or landmarks; "
                     "not usable for a verdict")
    else:
        q.accepted = q.usable_for_verdict = True
        q.message = "accepted (measured by " + ", ".join(q.measured_by) + ")"
    return q
