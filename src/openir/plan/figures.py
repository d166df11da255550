"""Figures of planned needle paths: axial and coronal slices through the target, and a 3D view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openir.core import LabelMap, Volume

from .models import TrajectoryResult


def plot_trajectories(result: TrajectoryResult, labels: LabelMap, path: str | Path,
                      ct: Volume | None = None, structures: list[str] | None = None) -> Path:
    """PNG with the shortlisted paths over axial and coronal slices through the target, plus 3D."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = labels.grid
    t = np.asarray(result.target_lps)
    ti = np.rint(g.world_to_index(t)).astype(int)
    ti = np.clip(ti, 0, np.array(g.shape_ijk) - 1)
    names = structures or [n for n in result.risk_structures if labels.has(n)]
    fig = plt.figure(figsize=(15, 5))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    sp = g.spacing
    for col, (title, sl, ax_u, ax_v) in enumerate((
            ("axial", (ti[2], slice(None), slice(None)), 0, 1),
            ("coronal", (slice(None), ti[1], slice(None)), 0, 2))):
        ax = fig.add_subplot(1, 3, col + 1)
        if ct is not None and ct.shape == labels.shape:
            img = ct.array[sl].astype(float)
            ax.imshow(img, cmap="gray", vmin=-200, vmax=300, origin="lower" if col else "upper",
                      extent=None)
        lab = labels.array[sl]
        ax.imshow(np.ma.masked_equal(lab, 0), cmap="tab20", alpha=0.35 if ct is not None else 0.8,
                  interpolation="nearest", origin="lower" if col else "upper")
        for n, name in enumerate(names[:10]):
            m = labels.mask(name)[sl]
            if m.any():
                ax.contour(m, levels=[0.5], colors=[colours[n % 10]], linewidths=0.6,
                           origin="lower" if col else "upper")
        for tr in result.shortlist:
            e = g.world_to_index(tr.entry_lps)
            p = g.world_to_index(tr.target_lps)
            ax.plot([e[ax_u], p[ax_u]], [e[ax_v], p[ax_v]], "-", lw=2 if tr.rank == 1 else 1,
                    label=f"#{tr.rank} {tr.length_mm:.0f} mm")
        ax.plot(ti[ax_u], ti[ax_v], "r+", ms=12)
        ax.set_title(f"{title} slice through target")
        ax.set_aspect(sp[ax_v] / sp[ax_u])
        ax.axis("off")
        if col == 0 and result.shortlist:
            ax.legend(fontsize=7, loc="lower right")
    ax3 = fig.add_subplot(1, 3, 3, projection="3d")
    for tr in result.shortlist:
        e, p = np.asarray(tr.entry_lps), np.asarray(tr.target_lps)
        ax3.plot([e[0], p[0]], [e[1], p[1]], [e[2], p[2]], lw=2 if tr.rank == 1 else 1)
        ax3.scatter(*e, s=10)
    for tr in result.pareto[:200]:
        e = np.asarray(tr.entry_lps)
        ax3.scatter(*e, s=2, c="grey", alpha=0.4)
    ax3.scatter(*t, c="r", s=30)
    ax3.set_xlabel("L (mm)")
    ax3.set_ylabel("P (mm)")
    ax3.set_zlabel("S (mm)")
    ax3.set_title("3D: shortlist (lines), Pareto entries (grey)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


_X_AXIS = {"microwave": ("time_s", "time (min)", 60.0), "radiofrequency": ("time_s", "time (min)", 60.0),
           "cryo": ("time_s", "freeze time (min)", 60.0), "ire": ("spacing_mm", "electrode spacing (mm)", 1.0),
           "chemical": ("injected_ml", "injected volume (mL)", 1.0)}


_UNIT = {"power_w": "W", "time_s": "s", "isotherm_c": "C isotherm", "exposure_mm": "mm exposure",
         "spacing_mm": "mm spacing", "injected_ml": "mL"}


def device_chart(device, path: str | Path) -> Path:
    """PNG of a device's sourced rows: length (along) and diameter (across) against the main setting.

    One panel per evidence table; one line per other setting (power, isotherm, exposure), so a
    manufacturer chart and a clinical series of the same device can be compared at a glance.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .devices import SETTING_AXES

    xname, xlabel, scale = _X_AXIS[device.modality]
    kinds = device.evidence_kinds
    fig, axes = plt.subplots(1, len(kinds), figsize=(max(7.0, 5.5 * len(kinds)), 4.6), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds, strict=True):
        rows = device.table(kind) if kind is not None else [r for r in device.usable_rows() if r.evidence is None]
        groups: dict[str, list] = {}
        others = [n for n, _ in SETTING_AXES[device.modality] if n != xname]
        for r in rows:
            parts = [f"{getattr(r, n):g} {_UNIT[n]}" for n in others if getattr(r, n) is not None]
            if r.tissue:
                parts.append(r.tissue.split(" (")[0])
            groups.setdefault(", ".join(parts) or "all", []).append(r)
        for i, (key, rs) in enumerate(sorted(groups.items())):
            rs = sorted(rs, key=lambda r: getattr(r, xname) or 0.0)
            x = [(getattr(r, xname) or 0.0) / scale for r in rs]
            colour = plt.cm.tab10(i % 10)
            ax.plot(x, [r.length_mm for r in rs], "o-", color=colour, label=f"{key}: length")
            ax.plot(x, [r.diameter_mm for r in rs], "s--", color=colour, label=f"{key}: diameter")
        ax.set_title(f"{device.id}: {kind or 'unspecified evidence'}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("zone extent (mm)")
    fig.suptitle(f"{device.name}\nsourced zone rows - solid: along the shaft, dashed: across it", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
