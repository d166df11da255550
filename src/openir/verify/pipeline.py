"""One verification case: labels (and images) in, margins, verdict and files out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.resample import resample
from openir.core.volume import Volume

from .margins import MarginAnalysis, margin_analysis
from .models import MarginReport, RegistrationQuality
from .registration import register, warp_labels


@dataclass
class Verification:
    report: MarginReport
    analysis: MarginAnalysis
    tumour: np.ndarray  # on the evaluation (post) grid
    zone: np.ndarray
    image: np.ndarray | None


def find_label(labels: LabelMap, name: str, role: str, required: bool = True) -> str | None:
    """The label called ``name``, or the first whose name starts with it ('tumour' -> 'tumour_1')."""
    if labels.has(name):
        return labels.labels[labels.value_of(name)]
    hits = labels.find(name)
    if hits:
        return hits[0]
    if required:
        raise InputError(f"no {role} label '{name}' (available: {', '.join(labels.names) or 'none'})",
                         source=labels.meta.get("source"), field=role)
    return None


def verify(
    pre_labels: LabelMap,
    post_labels: LabelMap | None = None,
    *,
    pre_image: Volume | None = None,
    post_image: Volume | None = None,
    tumour: str = "tumour",
    zone: str = "ablation_zone",
    organ: str | None = "liver",
    stages: Sequence[str] = ("rigid",),
    landmarks_post: np.ndarray | None = None,
    landmarks_pre: np.ndarray | None = None,
    capsule_rule: bool = False,
    capsule_exclusion_mm: float | None = None,
    case_id: str | None = None,
    out: Path | None = None,
) -> Verification:
    """Verify one ablation. With only ``pre_labels``, tumour and zone are read from it (one frame).

    With ``post_labels``, the zone comes from the post study; the pre tumour is brought onto the
    post grid by registration when both images are given and ``stages`` is not empty (or by
    landmarks alone), else by the scanner coordinates (same frame assumed).
    """
    reg_q: RegistrationQuality | None = None
    if post_labels is None:
        t_name = find_label(pre_labels, tumour, "tumour")
        z_name = find_label(pre_labels, zone, "ablation zone")
        o_name = find_label(pre_labels, organ, "organ", required=False) if organ else None
        evl = pre_labels
        image = pre_image
    else:
        t_name = find_label(pre_labels, tumour, "tumour")
        z_name = find_label(post_labels, zone, "ablation zone")
        o_pre = find_label(pre_labels, organ, "organ", required=False) if organ else None
        o_post = find_label(post_labels, organ, "organ", required=False) if organ else None
        have_lm = landmarks_post is not None and landmarks_pre is not None
        if (pre_image is not None and post_image is not None and stages) or have_lm:
            if post_image is None or pre_image is None:
                raise InputError("landmark registration needs both the pre and the post image")
            reg = register(
                post_image, pre_image,
                post_organ=post_labels.mask(o_post) if o_post else None,
                pre_organ=pre_labels.mask(o_pre) if o_pre else None,
                stages=stages if (pre_image is not None and post_image is not None) else (),
                landmarks_post=landmarks_post, landmarks_pre=landmarks_pre,
            )
            reg_q = reg.quality
            moved = warp_labels(pre_labels, post_labels.grid, reg.transform)
        else:
            moved = resample(pre_labels, post_labels.grid)  # type: ignore[assignment]
            reg_q = RegistrationQuality(method="identity (scanner coordinates)",
                                        message="no registration: images not given or no stages")
        evl = post_labels
        # merged view: tumour from the moved pre labels, zone/organ from post
        o_name = o_post
        image = post_image.array if post_image is not None else None
        tmask = moved.mask(t_name)
        zmask = post_labels.mask(z_name)
        omask = post_labels.mask(o_post) if o_post else (moved.mask(o_pre) if o_pre else None)
        return _finish(tmask, zmask, omask, evl, image, t_name, z_name, reg_q, capsule_rule,
                       capsule_exclusion_mm, case_id, out)
    img = image.array if image is not None else None
    return _finish(evl.mask(t_name), evl.mask(z_name), evl.mask(o_name) if o_name else None, evl, img,
                   t_name, z_name, reg_q, capsule_rule, capsule_exclusion_mm, case_id, out)


def _finish(tmask, zmask, omask, evl: LabelMap, image, t_name, z_name, reg_q, capsule_rule,
            capsule_mm, case_id, out) -> Verification:
    if not tmask.any():
        raise InputError(f"tumour label '{t_name}' is empty on the evaluation grid", field="tumour")
    a = margin_analysis(
        tmask, zmask, evl.grid, organ=omask, capsule_rule=capsule_rule and omask is not None,
        capsule_exclusion_mm=capsule_mm, tumour_label=str(t_name), zone_label=str(z_name),
        case_id=case_id,
    )
    a.report.registration = reg_q
    v = Verification(a.report, a, tmask, zmask, image)
    if out is not None:
        write_outputs(v, Path(out))
    return v


def write_vtk_mesh(path: Path, verts_lps: np.ndarray, faces: np.ndarray, values: np.ndarray) -> Path:
    """Legacy VTK polydata (LPS, readable by 3D Slicer and ParaView) with the margin per point."""
    lines = ["# vtk DataFile Version 3.0", "OpenIR margin map SPACE=LPS", "ASCII", "DATASET POLYDATA",
             f"POINTS {len(verts_lps)} float"]
    lines += [f"{x:.3f} {y:.3f} {z:.3f}" for x, y, z in verts_lps]
    lines.append(f"POLYGONS {len(faces)} {4 * len(faces)}")
    lines += [f"3 {a} {b} {c}" for a, b, c in faces]
    lines += [f"POINT_DATA {len(values)}", "SCALARS margin_mm float 1", "LOOKUP_TABLE default"]
    lines += [f"{m:.3f}" for m in np.nan_to_num(values, nan=0.0, posinf=99.0, neginf=-99.0)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_outputs(v: Verification, out: Path) -> dict[str, str]:
    """report.json, report.html, margin_map.nii.gz, margin_surface.vtk and margin_surface.png."""
    from openir.io import write_nifti

    from .report import margin_surface_png, write_html

    out.mkdir(parents=True, exist_ok=True)
    a = v.analysis
    files = {
        "margin_map_nifti": str(write_nifti(a.surface_map, out / "margin_map.nii.gz")),
        "margin_mesh_vtk": str(write_vtk_mesh(out / "margin_surface.vtk", a.vertices_lps, a.faces, a.margins_mm)),
        "margin_surface_png": str(out / "margin_surface.png"),
        "html": str(out / "report.html"),
        "json": str(out / "report.json"),
    }
    margin_surface_png(a, out / "margin_surface.png")
    v.report.files = files
    write_html(a, out / "report.html", image=v.image, tumour=v.tumour, zone=v.zone)
    (out / "report.json").write_text(v.report.model_dump_json(indent=2), encoding="utf-8")
    return files


__all__ = ["Verification", "find_label", "verify", "write_outputs"]
