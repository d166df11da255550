"""One-page, self-contained HTML report: slices, 3-D margin map and histogram (PNGs inlined)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from .margins import MarginAnalysis


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
    """Axial, coronal and sagittal slices through the tumour (crop), with both contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    box = analysis.crop_box
    t, z = tumour[box], zone[box]
    img = image[box] if image is not None else t.astype(float) * 0.5 + z * 0.25
    c = np.rint(np.argwhere(t).mean(axis=0)).astype(int)
    sp = analysis.surface_map.spacing[::-1]  # k, j, i
    mp = analysis.surface_map.array
    views = [("axial", (c[0], slice(None), slice(None)), sp[1] / sp[2]),
             ("coronal", (slice(None), c[1], slice(None)), sp[0] / sp[2]),
             ("sagittal", (slice(None), slice(None), c[2]), sp[0] / sp[1])]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for ax, (name, sl, aspect) in zip(axes, views, strict=True):
        ax.imshow(img[sl], cmap="gray", aspect=aspect, origin="lower" if name != "axial" else "upper")
        ax.contour(t[sl].astype(float), [0.5], colors="#1e88e5", linewidths=1.2)
        ax.contour(z[sl].astype(float), [0.5], colors="#fb8c00", linewidths=1.2)
        ms = np.ma.masked_invalid(mp[sl])
        ax.imshow(ms, cmap="RdYlGn", vmin=-5, vmax=10, aspect=aspect, interpolation="nearest",
                  origin="lower" if name != "axial" else "upper")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
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
