"""The verification report: one self-contained HTML page (slices, 3-D margin map, histogram) and its files.

The verify package computes; this module draws and writes (plotting lives in report/).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from openir.core import Volume
from openir.verify import MarginAnalysis, Verification

from .slices import Plane, decorate, radiological_slice


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def margin_surface_png(analysis: MarginAnalysis, path: Path | None = None) -> str:
    """3-D tumour surface coloured by signed margin (red < 0, yellow 0-5, green >= 5 mm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    v, f, m = analysis.vertices_lps, analysis.faces, analysis.margins_mm
    fig = plt.figure(figsize=(5, 4.5))
    ax = fig.add_subplot(projection="3d")
    cmap = ListedColormap(["#c62828", "#f9a825", "#2e7d32"])
    norm = BoundaryNorm([-1e9, 0.0, 5.0, 1e9], 3)
    face_m = m[f].min(axis=1)
    surf = ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=f, linewidth=0, antialiased=False)
    surf.set_facecolor(cmap(norm(face_m)))
    # turn the worst (smallest-margin) point towards the viewer
    d = v[int(np.argmin(np.where(analysis.excluded, np.inf, m)))] - v.mean(axis=0)
    n = float(np.linalg.norm(d)) or 1.0
    ax.view_init(elev=float(np.degrees(np.arcsin(d[2] / n))), azim=float(np.degrees(np.arctan2(d[1], d[0]))))
    ax.set_xlabel("L (mm)")
    ax.set_ylabel("P (mm)")
    ax.set_zlabel("S (mm)")
    ax.set_title("margin on tumour surface: red <0, yellow 0-5, green >=5 mm", fontsize=8)
    b64 = _png(fig)
    if path is not None:
        Path(path).write_bytes(base64.b64decode(b64))
    return b64


def histogram_png(analysis: MarginAnalysis) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = analysis.report.histogram
    e = np.asarray(h.edges_mm)
    fig, ax = plt.subplots(figsize=(5, 3))
    colours = ["#c62828" if x < 0 else "#f9a825" if x < 5 else "#2e7d32" for x in e[:-1]]
    ax.bar(e[:-1], h.area_pct, width=np.diff(e), align="edge", color=colours, edgecolor="white")
    ax.axvline(analysis.report.min_margin_mm, color="k", ls="--", lw=1)
    ax.set_xlabel("tumour-surface to zone-surface distance (mm)")
    ax.set_ylabel("% of tumour surface")
    return _png(fig)


def slices_png(analysis: MarginAnalysis, image: np.ndarray | None, tumour: np.ndarray,
               zone: np.ndarray) -> str:
    """Axial, coronal and sagittal views through the tumour in the radiological convention.

    Drawn through the crop's affine (patient's right on the image left, anterior up on axial),
    with orientation letters and a scale bar: tumour outline blue, zone orange, margin colour on the
    tumour surface.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    box = analysis.crop_box
    affine = analysis.surface_map.affine
    t = Volume(tumour[box].astype(np.uint8), affine)
    z = Volume(zone[box].astype(np.uint8), affine)
    img = Volume(image[box].astype(np.float32), affine) if image is not None else None
    centre = t.index_to_world(np.argwhere(tumour[box]).mean(axis=0)[::-1][None, :])[0]
    pixel = min(float(t.spacing.min()), 1.0)
    planes: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.8))
    for ax, plane in zip(axes, planes, strict=True):
        tv = radiological_slice(t, plane, centre, pixel_mm=pixel)
        zv = radiological_slice(z, plane, centre, pixel_mm=pixel)
        mv = radiological_slice(analysis.surface_map, plane, centre, pixel_mm=pixel, cval=np.nan)
        if img is not None:
            bg = radiological_slice(img, plane, centre, order=1, pixel_mm=pixel).pixels
            lo, hi = np.percentile(bg, [1, 99]) if bg.size else (0.0, 1.0)
            ax.imshow(bg, cmap="gray", vmin=lo, vmax=hi, extent=tv.extent, interpolation="bilinear")
        else:
            ax.imshow(tv.pixels * 0.5 + zv.pixels * 0.25, cmap="gray", extent=tv.extent)
        for view, colour in ((tv, "#1e88e5"), (zv, "#fb8c00")):
            if view.pixels.any():
                ax.contour(view.pixels.astype(float), [0.5], colors=colour, linewidths=1.2, extent=view.extent,
                           origin="upper")
        ax.imshow(np.ma.masked_invalid(mv.pixels.astype(float)), cmap="RdYlGn", vmin=-5, vmax=10,
                  extent=mv.extent, interpolation="nearest")
        decorate(ax, tv)
        ax.set_title(plane, fontsize=9)
    fig.suptitle("tumour (blue), ablation zone (orange), margin colour on tumour surface", fontsize=9)
    return _png(fig)


def write_html(analysis: MarginAnalysis, path: Path, *, image: np.ndarray | None, tumour: np.ndarray,
               zone: np.ndarray, title: str = "Ablation verification") -> Path:
    """Write the one-page report; every figure is embedded, nothing is fetched from the network."""
    r = analysis.report
    v = r.verdict
    colour = "#2e7d32" if v.complete else "#c62828"
    rows = [
        ("Minimal ablative margin", f"{r.min_margin_mm:.1f} mm{' (bound)' if r.min_margin_is_bound else ''}"
         f"{' (conservative: not resolved by the grid)' if not r.margin_resolved else ''}"
         f" &nbsp; (sub-voxel estimate {r.min_margin_estimate_mm:.1f} mm, voxel estimate {r.min_margin_voxel_mm:.1f} mm)"),
        ("Margin class", v.margin_class),
        ("Surface <0 / 0-5 / >=5 mm", " / ".join(f"{x:.1f} %" for x in r.surface_pct_by_class.values())),
        ("Tumour covered", f"{r.tumour_covered_pct:.1f} %"),
        (f"Tumour + {r.shell_mm:g} mm covered", f"{r.tumour_plus_shell_covered_pct:.1f} %"),
        ("Residual tumour", f"{r.residual.volume_ml:.3f} ml"
         + (f", {r.residual.direction}" if r.residual.direction else "")),
        ("Tumour volume", f"{r.tumour_volume_ml:.2f} ml"),
        ("Capsule rule", f"on ({r.capsule_exclusion_mm:g} mm, {r.excluded_surface_pct:.1f} % excluded)"
         if r.capsule_rule else "off"),
    ]
    if r.resolution_note:
        rows.append(("Grid resolution", html.escape(r.resolution_note)))
    if r.layout_note:
        rows.append(("Label layout", html.escape(r.layout_note)))
    if r.registration is not None:
        q = r.registration
        rows.append(("Registration", html.escape(
            f"{q.method}; organ Dice {q.organ_dice}, MSD {q.organ_mean_surface_distance_mm} mm, image similarity "
            f"{q.image_similarity}, landmark TRE {q.landmark_tre_mm} mm; "
            f"{'usable for the verdict' if q.usable_for_verdict else 'NOT usable for a verdict'}: {q.message}")))
    table = "".join(f"<tr><th>{html.escape(a)}</th><td>{b}</td></tr>" for a, b in rows)
    imgs = [slices_png(analysis, image, tumour, zone), margin_surface_png(analysis), histogram_png(analysis)]
    figs = "".join(f'<img alt="figure" src="data:image/png;base64,{b}">' for b in imgs)
    src = "".join(f"<li>{html.escape(s)}</li>" for s in v.sources)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}th{{text-align:left;padding-right:1em}}
.v{{color:white;background:{colour};padding:.4em .8em;display:inline-block;border-radius:4px}}
img{{max-width:100%;margin:.3em}}small{{color:#555}}</style></head><body>
<h1>{html.escape(title)}{' - ' + html.escape(r.case_id) if r.case_id else ''}</h1>
<p class="v"><b>{html.escape(v.term)}</b> - {html.escape(v.explanation)}</p>
<table>{table}</table>{figs}<small><ul>{src}</ul></small></body></html>"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def write_verification(v: Verification, out: Path) -> dict[str, str]:
    """report.json, report.html, margin_map.nii.gz, margin_surface.vtk and .png into ``out``; their paths."""
    from openir.io import write_nifti, write_vtk_surface

    out.mkdir(parents=True, exist_ok=True)
    a = v.analysis
    files = {
        "margin_map_nifti": str(write_nifti(a.surface_map, out / "margin_map.nii.gz")),
        "margin_mesh_vtk": str(write_vtk_surface(a.vertices_lps, a.faces, out / "margin_surface.vtk",
                                                 name="OpenIR margin map",
                                                 point_data={"margin_mm": a.margins_mm})),
        "margin_surface_png": str(out / "margin_surface.png"),
        "html": str(out / "report.html"),
        "json": str(out / "report.json"),
    }
    margin_surface_png(a, out / "margin_surface.png")
    v.report.files = files
    write_html(a, out / "report.html", image=v.image, tumour=v.tumour, zone=v.zone)
    (out / "report.json").write_text(v.report.model_dump_json(indent=2), encoding="utf-8")
    return files
