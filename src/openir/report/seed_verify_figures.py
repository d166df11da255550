"""Post-implant figure: found vs planned seeds over radiological CT slices through the target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openir.core import Volume

from .slices import PLANES, decorate, radiological_slice, to_plane


def seed_verify_figure(ct: Volume, planned_lps: np.ndarray, found_lps: np.ndarray,
                       pairs: Sequence[tuple[int, int]], centre_lps: Sequence[float], path: str | Path,
                       title: str = "Post-implant seeds", half_width_mm: float = 45.0) -> Path:
    """Axial, coronal and sagittal CT slices through ``centre_lps`` (radiological, true aspect) with
    every planned seed (open circle) and found seed (cross) projected onto each view and a line
    from each planned seed to the seed matched with it; missing and extra seeds in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    planned = np.asarray(planned_lps, float).reshape(-1, 3)
    found = np.asarray(found_lps, float).reshape(-1, 3)
    c = np.asarray(centre_lps, float)
    bounds = (c - half_width_mm, c + half_width_mm)
    matched_p = {p for p, _ in pairs}
    matched_f = {f for _, f in pairs}
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    for ax, plane in zip(axes, PLANES, strict=True):
        view = radiological_slice(ct, plane, c, order=1, cval=-1000.0, bounds=bounds)
        ax.imshow(view.pixels, cmap="gray", vmin=-160, vmax=340, extent=view.extent, interpolation="nearest")
        for p, f in pairs:
            seg = to_plane(plane, np.stack([planned[p], found[f]]))
            ax.plot(seg[:, 0], seg[:, 1], color="yellow", lw=0.8)
        pp = to_plane(plane, planned)
        ff = to_plane(plane, found)
        miss = np.array([i not in matched_p for i in range(len(planned))], bool)
        extra = np.array([i not in matched_f for i in range(len(found))], bool)
        ax.scatter(pp[~miss, 0], pp[~miss, 1], s=36, facecolors="none", edgecolors="deepskyblue", lw=1.2,
                   label="planned")
        ax.scatter(ff[~extra, 0], ff[~extra, 1], s=30, marker="x", color="lime", lw=1.2, label="found")
        if miss.any():
            ax.scatter(pp[miss, 0], pp[miss, 1], s=60, facecolors="none", edgecolors="red", lw=1.6,
                       label="planned, not found")
        if extra.any():
            ax.scatter(ff[extra, 0], ff[extra, 1], s=50, marker="x", color="red", lw=1.6, label="found, not planned")
        decorate(ax, view)
        ax.set_title(f"{plane} (seeds of all slices projected)", fontsize=10)
    axes[0].legend(loc="upper right", fontsize=8, framealpha=0.6)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
