"""Navigation snapshot: the tracked needle and the planned path over radiological slices (through
the affine: patient's right on the image left, anterior up, true aspect), three orthogonal views at
the tip and axial slices along the planned path, a timeline of the guidance with its alerts, and a
self-contained HTML page (`write_navigation_html`). Navigation computes; this module draws."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from openir.core import LabelMap, Volume  # noqa: E402
from openir.navigate import GuidanceFrame, NavigationSummary, PlannedPath  # noqa: E402

from .figures import figure_png  # noqa: E402
from .html import esc, img_tag, page, table  # noqa: E402
from .views import Needle, Outline, ViewSpec, draw_views  # noqa: E402


def _needle_segment(frame: GuidanceFrame, path: PlannedPath) -> tuple[np.ndarray, np.ndarray]:
    tip = np.asarray(frame.tip_lps, float)
    d = np.asarray(frame.direction_lps, float)
    back = max(float(frame.inserted_mm or 0.0), 0.0) + 20.0  # the shaft in the body and a little outside
    return tip - back * d, tip


def snapshot_figure(labels: LabelMap, path: PlannedPath, frame: GuidanceFrame, ct: Volume | None = None,
                    structures: Sequence[str] | None = None):
    """Views at the tip (axial, coronal, sagittal) and four axial slices along the planned path."""
    fig = plt.figure(figsize=(13.2, 9.4), facecolor="black")
    tip = np.asarray(frame.tip_lps if frame.tip_lps else path.tip_lps, float)
    needles = [Needle(path.entry_lps, path.tip_lps, f"planned path P{path.probe_order}", colour="lime")]
    if frame.tip_lps and frame.direction_lps:
        a, b = _needle_segment(frame, path)
        needles.append(Needle(a, b, "tracked needle", colour="yellow"))
    outlines = [Outline(path.tumour, labels.mask(path.tumour), "red", width=1.2)] if labels.has(path.tumour) else []
    names = list(structures) if structures is not None else None
    if names is not None and labels.has(path.tumour):
        names.append(path.tumour)
    gs = fig.add_gridspec(2, 12)
    top = [fig.add_subplot(gs[0, 4 * i:4 * i + 4]) for i in range(3)]
    spec = ViewSpec(labels=labels, centre_lps=tip, ct=ct, outlines=outlines, needles=needles, structures=names,
                    target_lps=path.tip_lps)
    handles = draw_views(spec, top)
    e, t = np.asarray(path.entry_lps, float), np.asarray(path.tip_lps, float)
    bottom = [fig.add_subplot(gs[1, 3 * i:3 * i + 3]) for i in range(4)]
    for ax, f in zip(bottom, (0.25, 0.5, 0.75, 1.0), strict=True):
        c = e + f * (t - e)
        draw_views(ViewSpec(labels=labels, centre_lps=c, ct=ct, outlines=outlines, needles=needles, structures=names,
                            target_lps=path.tip_lps), [ax], planes=("axial",))
        ax.set_title(f"axial at {f * 100:.0f} % of the path (z {c[2]:.0f} mm)", color="white", fontsize=8)
    state = (f"tip to planned tip {frame.tip_to_target_mm:.1f} mm, off the line {frame.lateral_mm:.1f} mm, "
             f"angle {frame.angle_deg:.1f} deg, depth to go {frame.depth_to_go_mm:.1f} mm"
             if frame.state == "guiding" else f"guidance {frame.state}")
    alerts = "; ".join(a.message for a in frame.alerts[:3])
    fig.suptitle(f"t = {frame.t_s:.1f} s: {state}" + (f"\n{alerts}" if alerts else ""), color="white", fontsize=10)
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False,
               labelcolor="white")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.07, wspace=0.25, hspace=0.18)
    return fig


def timeline_figure(frames: Sequence[GuidanceFrame], path: PlannedPath):
    """Tip distance from the line, depth to go and the smallest clearance over time, alerts marked."""
    g = [f for f in frames if f.state == "guiding"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.2), sharex=True)
    if not g:
        axes[0].text(0.5, 0.5, "no guided pose", ha="center", transform=axes[0].transAxes)
        return fig
    t = np.array([f.t_s for f in g])
    axes[0].plot(t, [f.lateral_mm for f in g], lw=1, label="tip off the planned line (mm)")
    axes[0].plot(t, [f.tip_to_target_mm for f in g], lw=1, label="tip to planned tip (mm)")
    axes[1].plot(t, [f.depth_to_go_mm for f in g], lw=1, color="tab:green", label="depth to go (mm)")
    axes[1].axhline(0, color="grey", lw=0.6)
    for name in g[0].clearance_mm:
        axes[2].plot(t, [f.clearance_mm.get(name, np.nan) for f in g], lw=1, label=f"{name} (shaft)")
    colours = {"approaching": "orange", "keep_away": "red", "off_path": "purple", "past_target": "black",
               "outside_region": "grey"}
    seen: set[str] = set()
    for f in g:
        for a in f.alerts:
            if a.kind in colours and a.kind not in seen:
                seen.add(a.kind)
                for ax in axes:
                    ax.axvline(f.t_s, color=colours[a.kind], lw=0.8, ls="--")
                axes[0].text(f.t_s, axes[0].get_ylim()[1], f" first {a.kind}", color=colours[a.kind], fontsize=7,
                             va="top", rotation=90)
    axes[2].set_ylabel("clearance (mm)")
    axes[2].set_xlabel("time (s)")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Navigation of P{path.probe_order} ({path.tumour}): guidance over time", fontsize=10)
    fig.tight_layout()
    return fig


def snapshot_png(labels: LabelMap, path: PlannedPath, frame: GuidanceFrame, ct: Volume | None = None,
                 structures: Sequence[str] | None = None) -> bytes:
    fig = snapshot_figure(labels, path, frame, ct, structures)
    try:
        return figure_png(fig)
    finally:
        plt.close(fig)


def timeline_png(frames: Sequence[GuidanceFrame], path: PlannedPath) -> bytes:
    fig = timeline_figure(frames, path)
    try:
        return figure_png(fig)
    finally:
        plt.close(fig)


def summary_table(s: NavigationSummary) -> str:
    def mm(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    reg = s.registration
    rows = [("procedure", s.procedure_id), ("poses / guided / refused / invalid",
                                             f"{s.n_poses} / {s.n_guided} / {s.n_refused} / {s.n_invalid}"),
            ("entry error (mm)", mm(s.entry_error_mm)), ("tip error (mm)", mm(s.tip_error_mm)),
            ("tip off the line at the end (mm)", mm(s.tip_lateral_mm)),
            ("final depth to go (mm)", mm(s.final_depth_to_go_mm)), ("final angle (deg)", mm(s.final_angle_deg))]
    if reg is not None:
        rows += [("registration", f"{reg.method}, {'accepted' if reg.accepted else 'REFUSED'}"),
                 ("FRE / expected TRE at target (mm)", f"{mm(reg.fre_mm)} / {mm(reg.expected_tre_mm)}")]
    rows += [(f"alerts: {k}", str(v)) for k, v in sorted(s.alerts_by_kind.items())]
    rows += [(f"smallest clearance to {k} (mm)", mm(v)) for k, v in sorted(s.min_clearance_mm.items())]
    return table(["", ""], rows)


def navigation_fragment(summary: NavigationSummary, snapshot: bytes, timeline: bytes) -> str:
    notes = "".join(f"<li>{esc(n)}</li>" for n in summary.notes)
    return (f"{summary_table(summary)}<ul>{notes}</ul>{img_tag(snapshot, 'needle over slices')}"
            f"{img_tag(timeline, 'guidance timeline')}")


def write_navigation_html(out: Path, summary: NavigationSummary, snapshot: bytes, timeline: bytes) -> Path:
    """A self-contained page; written to a temporary name and renamed (a reloading browser never
    sees half a page)."""
    out = Path(out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(page("OpenIR navigation", f"procedure {summary.procedure_id}",
                        [("Needle against the plan", navigation_fragment(summary, snapshot, timeline))],
                        footer="Distances are lower bounds (they never over-state a clearance). "
                               "Thresholds: openir/navigate/data/navigation.yaml (project defaults are marked)."),
                   encoding="utf-8")
    tmp.replace(out)
    return out
