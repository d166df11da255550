"""The figure of a scored seed-implant exercise: the axial slice through the target (through the
affine: patient's right on the image left, anterior up) with tumour, planning target, the expert's
and the trainee's prescription isodose, their seeds near the slice and their needles, the target
left below the prescription by the trainee, and the needles blocked under the path policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from openir.core import Volume

from .slices import decorate, radiological_slice, segment_on_plane, to_plane
from .training_figure import case_background

EXPERT_C, TRAINEE_C = "#39d353", "#3ab0ff"


def seed_exercise_figure(path: str | Path, case, trainee, score, *, span_mm: float = 100.0,
                         slab_mm: float = 2.5) -> Path:
    """Write the figure (PNG) of seed plan ``trainee`` scored as ``score`` on ``case``; seeds within
    ``slab_mm`` of the slice are drawn bold, the others faint (trainee: dots, expert: crosses). English labels only."""
    from openir.training.seed_scoring import seed_dose, seed_ground

    ground = seed_ground(case.labels, case.expert, case.body, score.tumour)
    g = ground.grid
    rx = ground.prescription_gy
    d_me, d_ex = seed_dose(trainee, g), seed_dose(case.expert, g)
    under = ground.target & (d_me < rx)
    k, j, i = np.nonzero(ground.target)
    if under.any():  # the axial plane where the trainee leaves most target under-dosed
        kk = int(np.argmax(under.sum(axis=(1, 2))))
        j0, i0 = np.nonzero(under[kk])
        centre = g.index_to_world(np.array([i0.mean(), j0.mean(), float(kk)]))
    else:
        centre = g.index_to_world(np.array([i.mean(), j.mean(), k.mean()]))
    bounds = (centre - span_mm / 2, centre + span_mm / 2)
    fig = Figure(figsize=(6.4, 6.8), dpi=110)
    ax = fig.subplots()
    v = case_background(ax, case, centre, bounds)

    def sl(arr: np.ndarray, order: int = 0):
        return radiological_slice(Volume(arr, g.affine), "axial", centre, bounds=bounds, pixel_mm=0.5, order=order)

    miss = sl(under.astype(np.uint8))
    if miss.pixels.any():
        rgba = np.zeros(miss.pixels.shape + (4,))
        rgba[miss.pixels > 0] = (1.0, 0.1, 0.1, 0.6)
        ax.imshow(rgba, extent=miss.extent, interpolation="nearest")
    for mask, colour, style, lw in ((ground.tumour, "#ffd400", "-", 1.8), (ground.target, "#ffd400", "--", 1.2)):
        s = sl(mask.astype(np.uint8))
        if s.pixels.any():
            ax.contour(s.pixels, levels=[0.5], colors=[colour], linestyles=style, linewidths=lw, extent=s.extent,
                       origin="upper")
    for dose, colour in ((d_ex, EXPERT_C), (d_me, TRAINEE_C)):
        s = sl(dose.astype(np.float32), order=1)
        if (s.pixels >= rx).any():
            ax.contour(s.pixels, levels=[rx], colors=[colour], linewidths=1.6, extent=s.extent, origin="upper")
    for plan, colour, marker in ((case.expert, EXPERT_C, "x"), (trainee, TRAINEE_C, "o")):
        for n in plan.needles:
            seg = segment_on_plane("axial", n.entry_lps, n.tip_lps)
            ax.plot(seg[:, 0], seg[:, 1], color=colour, lw=1.0, alpha=0.7)
        pts = np.array([s.position_lps for s in plan.seeds], float).reshape(-1, 3)
        close = np.abs(pts[:, 2] - centre[2]) <= slab_mm
        for sel, alpha in ((close, 1.0), (~close, 0.3)):  # seeds off the slice: faint, projected
            if sel.any():
                xy = to_plane("axial", pts[sel])
                ax.plot(xy[:, 0], xy[:, 1], marker, color=colour, ms=5 if marker == "o" else 7, mfc="none", ls="",
                        alpha=alpha)
    for p in score.paths:
        if not p.feasible:
            seg = segment_on_plane("axial", p.entry_lps, p.tip_lps)
            ax.plot(seg[:, 0], seg[:, 1], color="#ff3030", lw=2.4, ls=":")
    decorate(ax, v)
    names = ["tumour", f"planning target (+{case.expert.margin_mm:g} mm)", f"expert {rx:g} Gy isodose / seeds (x)",
             f"trainee {rx:g} Gy isodose / seeds (o)", "target below prescription", "risky needle"]
    handles = [Line2D([], [], color="#ffd400", lw=1.8), Line2D([], [], color="#ffd400", ls="--"),
               Line2D([], [], color=EXPERT_C, marker="x"), Line2D([], [], color=TRAINEE_C, marker="o", mfc="none"),
               Patch(color=(1.0, 0.1, 0.1, 0.6)), Line2D([], [], color="#ff3030", ls=":", lw=2.4)]
    ax.legend(handles, names, loc="lower right", fontsize=7, framealpha=0.6)
    lost = ", ".join(f"{k} -{v:g}" for k, v in score.lost.items()) or "no points lost"
    ax.set_title(f"seed plan score {score.total:g}/{score.max_total:g} ({lost})\n"
                 f"axial z = {centre[2]:.0f} mm; seeds within {slab_mm:g} mm of the slice bold, others faint (projected)", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
