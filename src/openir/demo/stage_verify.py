"""Demo stage: ablation verification on the synthetic patient.

Without a plan result, the post-ablation zone is simulated as an ellipsoid around the first tumour
with a small miss (centre 4 mm off, zone 3 mm larger than the tumour radius along its short axes),
and the post scan is the pre scan moved rigidly (the patient shifted between scans). Verification
must find the motion (rigid registration on the liver) and report the miss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext

MISS_MM = (4.0, -1.5, 0.0)  # zone centre offset from the tumour centre, LPS
MOTION_ROT_RAD = (0.02, -0.015, 0.035)
MOTION_SHIFT_MM = (6.0, -5.0, 4.0)


def _planned_zone(ctx: DemoContext, labels, tumour) -> np.ndarray:
    """A zone mask: from the plan if one offers ``zone_mask(grid)``, else the simulated ellipsoid."""
    plan = ctx.results.get("plan")
    if plan is not None and hasattr(plan, "zone_mask"):
        try:
            return np.asarray(plan.zone_mask(labels.grid), dtype=bool)
        except Exception:  # a plan of another shape: fall back to the simulation
            pass
    r = tumour.diameter_mm / 2.0
    axes = np.array([r + 3.0, r + 3.0, r + 9.0])  # longer along the (cranio-caudal) antenna axis
    centre = np.asarray(tumour.centre_lps) + np.asarray(MISS_MM)
    from openir.core import world_box

    box = world_box(labels.grid, centre, 2 * axes + 4)
    sub = labels.grid.subgrid([s.start for s in box], labels.array[box].shape)
    p = sub.voxel_centres() - centre
    zone = np.zeros(labels.shape, bool)
    zone[box] = ((p / axes) ** 2).sum(-1) <= 1.0
    return zone


def run(ctx: DemoContext) -> None:
    import SimpleITK as sitk

    from openir.core import LabelMap, Volume, crop, world_box
    from openir.io import write_nifti
    from openir.report.verify_report import (
        histogram_png,
        margin_surface_png,
        slices_png,
        write_verification,
    )
    from openir.verify.margins import margin_analysis
    from openir.verify.pipeline import VerifyOptions, verify
    from openir.verify.registration import warp_array

    patient = ctx.results["patient"]
    tum = patient.tumours[0]
    box = world_box(patient.ct.grid, tum.centre_lps, 110.0)
    ct, labels = crop(patient.ct, box), crop(patient.labels, box)
    ct = Volume(np.ascontiguousarray(ct.array), ct.affine, dict(ct.meta))
    labels = LabelMap(np.ascontiguousarray(labels.array), labels.affine, dict(labels.meta), dict(labels.labels))
    zone_pre = _planned_zone(ctx, labels, tum)

    # post scan = pre scan after a rigid patient motion, with the ablation zone painted in
    motion = sitk.Euler3DTransform()
    motion.SetCenter([float(c) for c in tum.centre_lps])
    motion.SetRotation(*MOTION_ROT_RAD)
    motion.SetTranslation(MOTION_SHIFT_MM)
    g = ct.grid
    post_ct = warp_array(ct.array.astype(np.float32), g, g, motion, nearest=False)
    zone_post = warp_array(zone_pre.astype(np.float32), g, g, motion) > 0.5
    liver_post = warp_array(labels.mask("liver").astype(np.float32), g, g, motion) > 0.5
    post_ct = np.where(zone_post, 25.0, post_ct).astype(np.float32)  # hypo-attenuating coagulation
    post_labels = LabelMap.from_masks({"liver": liver_post & ~zone_post, "ablation_zone": zone_post}, g)
    post_labels = post_labels.with_array(np.where(zone_post, 2, np.where(liver_post, 1, 0)).astype(np.uint8))
    pre_labels = labels.subset([tum.name, "liver"])

    folder = ctx.out / "verify"
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(Volume(post_ct, g.affine), folder / "post_ct.nii.gz")
    write_nifti(post_labels, folder / "post_labels.nii.gz")
    v = verify(pre_labels, post_labels, pre_image=ct, post_image=Volume(post_ct, g.affine),
               options=VerifyOptions(tumour=tum.name, zone="ablation_zone", organ="liver", stages=("rigid",),
                                     case_id=f"demo seed {ctx.seed}"))
    write_verification(v, folder)
    truth = margin_analysis(labels.mask(tum.name), zone_pre, g).report  # in the pre frame, no motion
    ctx.results["verify"] = v.report
    r = v.report
    colour = "#2e7d32" if r.verdict.complete else "#c62828"
    q = r.registration
    figs = [slices_png(v.analysis, v.image, v.tumour, v.zone), margin_surface_png(v.analysis),
            histogram_png(v.analysis)]
    imgs = "".join(f'<img alt="verify figure" style="max-width:32%" src="data:image/png;base64,{b}">'
                   for b in figs)
    ctx.add_section(
        "Verification (simulated ablation)",
        f"<p>Simulated zone {MISS_MM} mm off the centre of {tum.name}; patient moved "
        f"{MOTION_SHIFT_MM} mm between scans. Registration: {q.method if q else 'none'}, liver Dice "
        f"{q.organ_dice if q else '-'}.</p>"
        f"<p style='color:{colour}'><b>{r.verdict.term}</b>: {r.verdict.explanation}</p>"
        f"<p>Minimal margin found {r.min_margin_mm:.1f} mm vs {truth.min_margin_mm:.1f} mm without motion; "
        f"tumour covered {r.tumour_covered_pct:.1f} %, tumour + {r.shell_mm:g} mm covered "
        f"{r.tumour_plus_shell_covered_pct:.1f} %, residual {r.residual.volume_ml:.2f} ml "
        f"({r.residual.direction or '-'}).</p>{imgs}"
        f"<p>Files: <code>verify/report.html</code>, <code>verify/report.json</code>, "
        f"<code>verify/margin_map.nii.gz</code>, <code>verify/margin_surface.vtk</code>.</p>",
    )
