"""The figure of a scored teaching exercise: the axial slice through the tumour (through the affine:
patient's right on the image left, anterior up, true aspect) with tumour + margin, the expert's and
the trainee's zones and needle paths, and the part of tumour + margin the trainee missed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from openir.core import Volume

from .slices import decorate, radiological_slice, segment_on_plane


def _slice_of_missed(masks: dict, tumour_centre: np.ndarray) -> np.ndarray:
    """The axial plane through the most missed target (or the tumour centre when nothing is missed)."""
    missed = masks["missed"]
    if not missed.any():
        return tumour_centre
    k = int(np.argmax(missed.sum(axis=(1, 2))))
    c = tumour_centre.copy()
    ijk = np.array([0.0, 0.0, float(k)])
    c[2] = float(masks["grid"].index_to_world(ijk)[2])
    return c


def case_background(ax, case, centre: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]):
    """Draw the case's axial slice through ``centre`` (CT window, or the body outline from the labels when
    the case has no image), radiological through the affine; returns the slice for `decorate`."""
    if case.ct is not None:
        v = radiological_slice(case.ct, "axial", centre, order=1, bounds=bounds, pixel_mm=0.5)
        ax.imshow(v.pixels, cmap="gray", vmin=-160, vmax=240, extent=v.extent, interpolation="bilinear")
    else:
        v = radiological_slice(Volume(case.labels.array.astype(np.float32), case.labels.affine), "axial", centre,
                               bounds=bounds, pixel_mm=0.5)
        ax.imshow(v.pixels > 0, cmap="gray", vmin=0, vmax=3, extent=v.extent)
    return v


def exercise_figure(path: str | Path, case, trainee, score, *, span_mm: float = 120.0) -> Path:
    """Write the exercise figure (PNG) for ``trainee`` scored as ``score`` on teaching ``case``
    (English labels: matplotlib ships no CJK font; the zh-CN explanations are in the score).
    A seed-implant exercise (``score.kind == "seeds"``) gets `seed_exercise_figure`."""
    if getattr(score, "kind", "ablation") == "seeds":
        from .seed_exercise_figure import seed_exercise_figure

        return seed_exercise_figure(path, case, trainee, score)
    from openir.plan import target_from_label
    from openir.training import score_masks  # report may import any domain package

    masks = score_masks(case, trainee, score.tumour)
    g = masks["grid"]
    centre = np.asarray(target_from_label(case.labels, score.tumour), float)
    centre = _slice_of_missed(masks, centre)
    lo, hi = centre - span_mm / 2, centre + span_mm / 2
    bounds = (lo, hi)
    fig = Figure(figsize=(6.4, 6.8), dpi=110)  # no pyplot state: safe in the web server's threads
    ax = fig.subplots()
    v = case_background(ax, case, centre, bounds)

    def contour(mask: np.ndarray, colour: str, style: str = "-", lw: float = 1.6) -> None:
        sl = radiological_slice(Volume(mask.astype(np.uint8), g.affine), "axial", centre, bounds=bounds, pixel_mm=0.5)
        if sl.pixels.any():
            ax.contour(sl.pixels, levels=[0.5], colors=[colour], linestyles=style, linewidths=lw, extent=sl.extent,
                       origin="upper")

    miss = radiological_slice(Volume(masks["missed"].astype(np.uint8), g.affine), "axial", centre, bounds=bounds,
                              pixel_mm=0.5)
    if miss.pixels.any():
        rgba = np.zeros(miss.pixels.shape + (4,))
        rgba[miss.pixels > 0] = (1.0, 0.1, 0.1, 0.65)
        ax.imshow(rgba, extent=miss.extent, interpolation="nearest")
    contour(masks["tumour"], "#ffd400", lw=1.8)
    contour(masks["target"], "#ffd400", "--", lw=1.2)
    contour(masks["expert"], "#39d353", lw=1.6)
    contour(masks["trainee"], "#3ab0ff", lw=1.8)
    for plan, colour in ((case.expert, "#39d353"), (trainee, "#3ab0ff")):
        for pr in plan.probes:
            if pr.tumour != score.tumour:
                continue
            seg = segment_on_plane("axial", pr.entry_lps, pr.tip_lps)
            ax.plot(seg[:, 0], seg[:, 1], color=colour, lw=1.4, alpha=0.9)
            ax.plot(seg[1, 0], seg[1, 1], "o", color=colour, ms=3)
    for p in score.paths:
        if not p.feasible:
            seg = segment_on_plane("axial", p.entry_lps, p.tip_lps)
            ax.plot(seg[:, 0], seg[:, 1], color="#ff3030", lw=2.4, ls=":")
    decorate(ax, v)
    # labels in English: matplotlib ships no CJK font (the web page and CLI give the zh-CN text)
    names = ["tumour", "tumour + 5 mm margin", "expert zone / path", "trainee zone / path", "missed target",
             "risky path"]
    handles = [Line2D([], [], color="#ffd400", lw=1.8), Line2D([], [], color="#ffd400", ls="--"),
               Line2D([], [], color="#39d353"), Line2D([], [], color="#3ab0ff"),
               Patch(color=(1.0, 0.1, 0.1, 0.65)), Line2D([], [], color="#ff3030", ls=":", lw=2.4)]
    ax.legend(handles, names, loc="lower right", fontsize=7, framealpha=0.6)
    lost = ", ".join(f"{k} -{v:g}" for k, v in score.lost.items()) or "no points lost"
    title = f"score {score.total:g}/{score.max_total:g} ({lost})"
    ax.set_title(f"{title}\naxial z = {centre[2]:.0f} mm", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
