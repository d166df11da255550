"""Seed-implant figures and report: isodose lines on radiological CT slices, DVH, HTML page.

:mod:`openir.seeds` computes the plan and the dose; this module only draws. Views go through the
affine (`slices.radiological_slice`): patient right on the image left, anterior up on axial views,
true aspect ratio. Isodose lines are drawn at 50/100/150/200 % of the prescription.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from openir.core import Volume  # noqa: E402
from openir.seeds.models import SeedPlan  # noqa: E402

from .figures import figure_png  # noqa: E402
from .html import esc, img_tag, page, table  # noqa: E402
from .slices import PLANES, Plane, decorate, field_of_view, radiological_slice, to_plane  # noqa: E402

ISODOSE = ((0.5, "#4da6ff"), (1.0, "#ffd400"), (1.5, "#ff8c00"), (2.0, "#ff2020"))
_FIXED = {"axial": 2, "coronal": 1, "sagittal": 0}


def isodose_png(ct: Volume, dose_gy: Volume, target: np.ndarray, plan: SeedPlan,
                planes: tuple[Plane, ...] = PLANES, dpi: int = 90) -> bytes:
    """CT with target outline, isodose lines and the seeds near each plane (within 3 mm)."""
    centre = np.asarray(plan.target_centroid_lps)
    bounds = field_of_view(dose_gy)
    tvol = Volume(target.astype(np.uint8), dose_gy.affine)
    rx = plan.prescription_gy
    fig, axes = plt.subplots(1, len(planes), figsize=(4.2 * len(planes), 4.4), facecolor="black")
    axes = np.atleast_1d(axes)
    seeds = np.array([s.position_lps for s in plan.seeds]) if plan.seeds else np.zeros((0, 3))
    for ax, plane in zip(axes, planes, strict=True):
        h = float(min(dose_gy.spacing.min(), 1.0))
        img = radiological_slice(ct, plane, centre, order=1, pixel_mm=h, bounds=bounds, cval=-1000)
        dv = radiological_slice(dose_gy, plane, centre, order=1, pixel_mm=h, bounds=bounds)
        tv = radiological_slice(tvol, plane, centre, order=0, pixel_mm=h, bounds=bounds)
        ax.imshow(img.pixels, cmap="gray", vmin=-160, vmax=240, extent=img.extent, interpolation="bilinear")
        ny, nx = dv.pixels.shape
        left, right, bottom, top = dv.extent
        xs = left + (np.arange(nx) + 0.5) * (right - left) / nx
        ys = top + (np.arange(ny) + 0.5) * (bottom - top) / ny
        if tv.pixels.any():
            ax.contour(xs, ys, tv.pixels.astype(float), levels=[0.5], colors=["#00e5ff"], linewidths=1.4)
        for frac, colour in ISODOSE:
            if dv.pixels.max() >= frac * rx:
                ax.contour(xs, ys, dv.pixels, levels=[frac * rx], colors=[colour], linewidths=1.0)
        if len(seeds):
            near = np.abs(seeds[:, _FIXED[plane]] - centre[_FIXED[plane]]) <= 3.0
            p2 = to_plane(plane, seeds[near])
            ax.plot(p2[:, 0], p2[:, 1], "o", ms=3, mfc="#39ff14", mec="black", mew=0.4)
        decorate(ax, img)
        ax.set_title(plane, color="white", fontsize=10)
    handles = [Line2D([], [], color="#00e5ff", label="planning target")]
    handles += [Line2D([], [], color=c, label=f"{int(f * 100)} % ({f * rx:.0f} Gy)") for f, c in ISODOSE]
    handles += [Line2D([], [], ls="", marker="o", mfc="#39ff14", mec="black", label="seeds within 3 mm")]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, facecolor="black", labelcolor="white",
               frameon=False)
    fig.suptitle(f"{plan.tumour}: {len(plan.seeds)} seeds, {len(plan.needles)} needles, Rx {rx:.0f} Gy",
                 color="white", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return figure_png(fig, dpi=dpi)


def dvh_png(plan: SeedPlan, dpi: int = 90) -> bytes:
    """Cumulative DVHs of the target, the tumour and the organs at risk; Rx and D90 marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for c in plan.dvh:
        ax.plot(c.dose_gy, c.volume_pct, label=c.name, lw=2 if c.name == "planning target" else 1.2)
    rx = plan.prescription_gy
    ax.axvline(rx, color="k", ls="--", lw=1, label=f"Rx {rx:.0f} Gy")
    ax.plot([plan.metrics.d90_gy], [90.0], "kv", label=f"D90 {plan.metrics.d90_gy:.0f} Gy")
    ax.set_xlabel("total dose (Gy, permanent implant)")
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 101)
    ax.set_xlim(0, max(c.dose_gy[-1] for c in plan.dvh) if plan.dvh else 2.5 * rx)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Dose-volume histograms")
    fig.tight_layout()
    return figure_png(fig, dpi=dpi)


def seed_report_html(plan: SeedPlan, ct: Volume, dose_gy: Volume, target: np.ndarray) -> str:
    """A self-contained HTML page: plan summary, indices, organ doses, needle table, figures, sources."""
    m = plan.metrics
    g = plan.goals_met
    ok = lambda k: "yes" if g.get(k) else "NO"  # noqa: E731
    summary = table(["item", "value"], [
        ("site / tumour", f"{plan.site} / {plan.tumour}"),
        ("seed model", f"{plan.seed_model}, {plan.activity_mci:g} mCi = {plan.air_kerma_strength_U:.3f} U"),
        ("prescription", f"{plan.prescription_gy:g} Gy (margin {plan.margin_mm:g} mm)"),
        ("seeds / needles", f"{len(plan.seeds)} / {len(plan.needles)} (from {plan.candidate_needles} safe candidates)"),
        ("total activity", f"{plan.total_activity_mci:.2f} mCi ({plan.total_air_kerma_strength_U:.2f} U)"),
        ("planning time", f"{plan.seconds:.1f} s"),
    ])
    idx = table(["index", "value", "goal met"], [
        ("D90", f"{m.d90_gy:.1f} Gy", ok("d90")), ("D100", f"{m.d100_gy:.1f} Gy", ""),
        ("V100", f"{m.v100_pct:.1f} %", ok("v100")), ("V150", f"{m.v150_pct:.1f} %", ok("v150")),
        ("V200", f"{m.v200_pct:.1f} %", ok("v200")), ("CI (Paddick)", f"{m.ci:.2f}", ""),
        ("EI", f"{m.ei:.2f}", ""), ("HI", f"{m.hi:.2f}", ""),
        ("target volume", f"{m.target_volume_ml:.1f} mL", "")], numeric=(1,))
    organs = table(["organ", "D0.1cc", "D2cc", "Dmax", "limit", "kept", "source"], [
        (o.name, _f(o.d0_1cc_gy), _f(o.d2cc_gy), _f(o.d_max_gy),
         f"{o.limit_metric} <= {o.limit_gy:g} Gy" if o.limit_gy else "", "yes" if o.within_limit else "NO",
         o.limit_source or "") for o in m.organs], numeric=(1, 2, 3))
    needles = table(["needle", "hole", "depth from skin (mm)", "seeds", "seed depths (mm)"], [
        (n.index + 1, n.hole, f"{n.depth_mm:.1f}", n.seeds, " ".join(f"{v:.0f}" for v in n.seed_depths_mm))
        for n in plan.needles], numeric=(2, 3))
    figs = img_tag(isodose_png(ct, dose_gy, target, plan), "isodose lines") + img_tag(dvh_png(plan), "DVH")
    notes = "".join(f"<li>{esc(n)}</li>" for n in plan.notes)
    sources = table(["value", "source"], sorted(plan.sources.items()))
    sections = [("Plan", summary), ("Plan quality", idx), ("Organs at risk", organs), ("Dose", figs),
                ("Needles", needles), ("Notes", f"<ul>{notes}</ul>"), ("Sources", sources)]
    return page("Seed implant plan (I-125, TG-43U1)", f"{plan.site}: {plan.tumour}", sections,
                footer="OpenIR. Doses are planning estimates (TG-43U1, water, no heterogeneity "
                       "correction); check against a commissioned planning system.")


def _f(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"
