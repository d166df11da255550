"""One verification case: labels (and images) in, margins, verdict and files out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.resample import resample
from openir.core.volume import Grid, Volume

from .margins import MarginAnalysis, MarginOptions, margin_analysis
from .models import MarginReport, RegistrationQuality
from .registration import RegistrationOptions, RegistrationRefused, assess, register, warp_labels
from .structures import Structures, as_structures, zone_behind_tumour


@dataclass(frozen=True)
class VerifyOptions:
    """Label names, registration stages and margin rules of one case.

    ``organ``: label of the organ on both scans (registration quality, capsule rule); a name that
    is in neither label file is an error. ``vessels``: label of large vessels (vessel rule).
    ``same_frame``: the caller vouches that pre and post labels share one frame (e.g. both drawn on
    the registered images); without it an unregistered, unmeasured pair gives no verdict.
    """

    tumour: str = "tumour"
    zone: str = "ablation_zone"
    organ: str | None = None
    vessels: str | None = None
    stages: Sequence[str] = ("rigid",)
    same_frame: bool = False
    capsule_rule: bool = False
    capsule_exclusion_mm: float | None = None
    vessel_rule: bool = False
    case_id: str | None = None
    registration: RegistrationOptions = field(default_factory=RegistrationOptions)


@dataclass
class Verification:
    report: MarginReport
    analysis: MarginAnalysis
    tumour: np.ndarray  # on the evaluation (post) grid
    zone: np.ndarray
    image: np.ndarray | None


def find_label(labels: LabelMap | Structures, name: str, role: str, required: bool = True) -> str | None:
    """The label called ``name``, or the first whose name starts with it ('tumour' -> 'tumour_1')."""
    return as_structures(labels).find(name, role, required=required)


def _check_overlap(grid: Grid, image: Volume | None, what: str) -> None:
    """Labels must lie on the image they were drawn on (at least overlap it)."""
    if image is None:
        return

    def box(g: Grid) -> tuple[np.ndarray, np.ndarray]:
        n = np.array(g.shape_ijk) - 1
        corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
        w = g.index_to_world(corners)
        return w.min(axis=0), w.max(axis=0)

    (l0, l1), (i0, i1) = box(grid), box(image.grid)
    if np.any(l1 < i0 - 1e-3) or np.any(i1 < l0 - 1e-3):
        raise InputError(f"the {what} labels and the {what} image do not overlap in patient coordinates: "
                         "the labels belong to another series", source=image.meta.get("source"), field=f"{what}_labels")


def _display(image: Volume | None, grid: Grid) -> np.ndarray | None:
    """The image on the evaluation grid (for the report figures only)."""
    if image is None:
        return None
    if image.grid.same_as(grid):
        return np.asarray(image.array)
    return resample(image, grid, interpolation="linear").array


def _organ_name(opts: VerifyOptions, *sources: Structures) -> list[str | None]:
    """The organ label in each source; a name asked for and found in none of them is an error."""
    if not opts.organ:
        return [None] * len(sources)
    names = [s.find(opts.organ, "organ", required=False) for s in sources]
    if not any(names):
        avail = sorted({n for s in sources for n in s.names})
        raise InputError(f"no organ label '{opts.organ}' (available: {', '.join(avail) or 'none'})", field="organ")
    return names


def verify(
    pre_labels: LabelMap | Structures,
    post_labels: LabelMap | Structures | None = None,
    *,
    pre_image: Volume | None = None,
    post_image: Volume | None = None,
    landmarks: tuple[np.ndarray, np.ndarray] | None = None,
    options: VerifyOptions | None = None,
) -> Verification:
    """Verify one ablation. With only ``pre_labels``, tumour and zone are read from it (one frame).

    With ``post_labels``, the zone comes from the post study and the pre tumour is brought onto the
    post grid by registration (both images and ``stages``, or ``landmarks`` = (post, pre) points),
    else by the scanner coordinates. Every alignment is measured; an unmeasured one gives margins
    but no verdict unless ``options.same_frame``, a poor one raises `RegistrationRefused`.
    ``openir.report.write_verification`` writes the report files of the result.

    >>> import numpy as np
    >>> from openir.core import Grid, LabelMap, make_affine
    >>> g = Grid((40, 40, 40), make_affine((1.0, 1.0, 1.0)))
    >>> d = np.linalg.norm(g.voxel_centres() - 19.6, axis=-1)
    >>> one_map = LabelMap.from_masks({"ablation_zone": d <= 14.0, "tumour": d <= 8.0}, g)
    >>> r = verify(one_map).report  # one label per voxel: the zone behind the tumour is restored
    >>> r.verdict.term, r.tumour_covered_pct, r.zone_restored_under_tumour
    ('technical success (complete ablation)', 100.0, True)
    """
    opts = options or VerifyOptions()
    pre = as_structures(pre_labels)
    if post_labels is None:
        return _one_frame(pre, pre_image, opts)
    post = as_structures(post_labels)
    _check_overlap(pre.grid, pre_image, "pre")
    _check_overlap(post.grid, post_image, "post")
    t_name = pre.find(opts.tumour, "tumour")
    z_name = post.find(opts.zone, "ablation zone")
    o_pre, o_post = _organ_name(opts, pre, post)
    v_name = post.find(opts.vessels, "vessels") if opts.vessels else None
    moving = pre.as_labelmap()
    have_lm = landmarks is not None
    if (pre_image is not None and post_image is not None and opts.stages) or have_lm:
        if post_image is None or pre_image is None:
            raise InputError("landmark registration needs both the pre and the post image")
        reg = register(
            post_image, pre_image,
            post_organ=_on_grid(post, o_post, post_image.grid), pre_organ=_on_grid(pre, o_pre, pre_image.grid),
            landmarks_post=landmarks[0] if have_lm else None, landmarks_pre=landmarks[1] if have_lm else None,
            options=RegistrationOptions(**{**opts.registration.__dict__, "stages": tuple(opts.stages)}),
        )
        reg_q = reg.quality
        moved = warp_labels(moving, post.grid, reg.transform)
    else:
        moved = resample(moving, post.grid)  # type: ignore[assignment]
        reg_q = _unregistered_quality(pre, post, (o_pre, o_post), (pre_image, post_image), opts)
    moved_s = as_structures(moved)
    tmask = moved.mask(t_name)
    zmask = post.mask(z_name)
    omask = _organ(post, o_post) if o_post else (_organ(moved_s, o_pre) if o_pre else None)
    vmask = post.mask(v_name) if v_name else None
    return _finish(_Case(tmask, zmask, omask, vmask, post.grid, _display(post_image, post.grid), t_name, z_name,
                         reg_q, False), opts)


def _organ(s: Structures, name: str | None) -> np.ndarray | None:
    """The organ with what lies inside it (tumour, zone, vessels drawn as other labels): its capsule
    is the outer boundary, and its overlap between scans must not depend on what was drawn inside."""
    if not name:
        return None
    from scipy import ndimage

    return ndimage.binary_fill_holes(s.mask(name))


def _on_grid(s: Structures, name: str | None, grid: Grid) -> np.ndarray | None:
    organ = _organ(s, name)
    if organ is None or s.grid.same_as(grid):
        return organ
    lm = LabelMap.from_masks({"organ": organ}, s.grid)
    return resample(lm, grid).array > 0


def _unregistered_quality(pre: Structures, post: Structures, organs: tuple[str | None, str | None],
                          images: tuple[Volume | None, Volume | None], opts: VerifyOptions) -> RegistrationQuality:
    """Scanner coordinates: measured by the organ overlap and the images when given, else not measured."""
    import SimpleITK as sitk

    o_pre, o_post = organs
    pre_img, post_img = images
    both = pre_img is not None and post_img is not None
    q = assess(sitk.Euler3DTransform(), post_img if both else None, pre_img if both else None,
               organs=(_organ(post, o_post), _organ(pre, o_pre)),
               grids=(post.grid, pre.grid), method="identity (scanner coordinates)")
    if q.measured_by and not q.accepted:
        raise RegistrationRefused(f"the scans do not line up in scanner coordinates: {q.message}; "
                                  "register them (give both images and --stages) or check the files")
    if not q.measured_by and opts.same_frame:
        q.usable_for_verdict = True
        q.message = "not measured; same frame vouched for by the user (--same-frame)"
    return q


def _one_frame(labels: Structures, image: Volume | None, opts: VerifyOptions) -> Verification:
    _check_overlap(labels.grid, image, "pre")
    t_name = labels.find(opts.tumour, "tumour")
    z_name = labels.find(opts.zone, "ablation zone")
    (o_name,) = _organ_name(opts, labels)
    v_name = labels.find(opts.vessels, "vessels") if opts.vessels else None
    tmask, zmask = labels.mask(t_name), labels.mask(z_name)  # type: ignore[arg-type]
    restored = False
    if t_name != z_name:
        # one label per voxel (or disjoint segments of one file): the tumour label hides the zone
        zmask, restored = zone_behind_tumour(tmask, zmask, labels.grid.spacing[::-1])
    q = RegistrationQuality(method="none (one frame)", measured_by=["one frame"], accepted=True,
                            usable_for_verdict=True, message="tumour and zone drawn on the same image")
    case = _Case(tmask, zmask, _organ(labels, o_name), labels.mask(v_name) if v_name else None,
                 labels.grid, _display(image, labels.grid), str(t_name), str(z_name), q, restored)
    return _finish(case, opts)


@dataclass
class _Case:
    tumour: np.ndarray
    zone: np.ndarray
    organ: np.ndarray | None
    vessels: np.ndarray | None
    grid: Grid
    image: np.ndarray | None
    t_name: str
    z_name: str
    quality: RegistrationQuality
    zone_restored: bool


def _finish(c: _Case, opts: VerifyOptions) -> Verification:
    if not c.tumour.any():
        raise InputError(f"tumour label '{c.t_name}' is empty on the evaluation grid (after alignment it lies "
                         "outside the post image)", field="tumour")
    a = margin_analysis(
        c.tumour, c.zone, c.grid, organ=c.organ, vessels=c.vessels,
        options=MarginOptions(capsule_rule=opts.capsule_rule and c.organ is not None,
                              capsule_exclusion_mm=opts.capsule_exclusion_mm,
                              vessel_rule=opts.vessel_rule and c.vessels is not None,
                              tumour_label=c.t_name, zone_label=c.z_name, case_id=opts.case_id),
    )
    r = a.report
    r.registration = c.quality
    r.zone_restored_under_tumour = c.zone_restored
    if c.zone_restored:
        r.layout_note = ("tumour and zone in one label map: the zone hidden under the tumour label was restored "
                         "from its surroundings" + ("" if r.tumour_covered_pct >= 100.0 else
                                                    "; where the tumour reaches outside the zone, the hidden "
                                                    "zone boundary is an estimate"))
    if not c.quality.usable_for_verdict:
        from .verdict import no_verdict

        r.verdict = no_verdict(c.quality.message)
    return Verification(r, a, c.tumour, c.zone, c.image)


__all__ = ["Verification", "VerifyOptions", "find_label", "verify"]
