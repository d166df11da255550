"""Figure of planned needle paths: axial, coronal and sagittal views through the target (radiological
convention, through the affine) with the shortlisted needles and entries, plus a 3D view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openir.core import LabelMap, Volume
from openir.plan import TrajectoryResult

from .views import Needle, ViewSpec, draw_views

PATH_COLOURS = ("#ffff00", "#00e5ff", "#ff00ff", "#7CFC00", "#ffa500", "#ffffff", "#ff6060", "#a0a0ff")


def trajectory_view_spec(result: TrajectoryResult, labels: LabelMap, ct: Volume | None = None,
                         structures: list[str] | None = None) -> ViewSpec:
    """What the trajectory figure shows (also for tests): structures, shortlisted needles, target."""
    names = structures or [n for n in labels.names if not n.lower().startswith(("skin", "fat", "muscle"))]
    needles = [Needle(t.entry_lps, t.target_lps, f"#{t.rank} {t.length_mm:.0f} mm, gantry {t.inplane_angle_deg:+.0f}, "
                      f"cc {t.craniocaudal_angle_deg:+.0f} deg", PATH_COLOURS[(t.rank - 1) % len(PATH_COLOURS)])
               for t in result.shortlist]
    return ViewSpec(labels=labels, centre_lps=result.target_lps, ct=ct if ct is not None and ct.shape == labels.shape
                    else None, needles=needles, structures=names, target_lps=result.target_lps)


def plot_trajectories(result: TrajectoryResult, labels: LabelMap, path: str | Path,
                      ct: Volume | None = None, structures: list[str] | None = None) -> Path:
    """PNG: the shortlisted paths over the three views through the target, plus a 3D view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = trajectory_view_spec(result, labels, ct, structures)
    fig = plt.figure(figsize=(19, 5.6), facecolor="black")
    axes = [fig.add_subplot(1, 4, n + 1) for n in range(3)]
    handles = draw_views(spec, axes)
    ax3 = fig.add_subplot(1, 4, 4, projection="3d")
    t = np.asarray(result.target_lps)
    for tr, nd in zip(result.shortlist, spec.needles, strict=True):
        e, p = np.asarray(tr.entry_lps), np.asarray(tr.target_lps)
        ax3.plot([e[0], p[0]], [e[1], p[1]], [e[2], p[2]], lw=2 if tr.rank == 1 else 1, color=nd.colour)
        ax3.scatter(*e, s=10, color=nd.colour)
    for tr in result.pareto[:200]:
        ax3.scatter(*np.asarray(tr.entry_lps), s=2, c="grey", alpha=0.4)
    ax3.scatter(*t, c="r", s=30)
    ax3.set_xlabel("L (mm)")
    ax3.set_ylabel("P (mm)")
    ax3.set_zlabel("S (mm)")
    ax3.set_title("3D: shortlist, Pareto entries (grey)", fontsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False,
               labelcolor="white")
    fig.tight_layout(rect=(0, min(0.35, 0.05 * ((len(handles) + 5) // 6) + 0.02), 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, facecolor=fig.get_facecolor())
    plt.close(fig)
    return out
