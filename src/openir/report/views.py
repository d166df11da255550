"""The three orthogonal views every report draws: CT, structure colours, outlines (zone under
target under tumour), needles with entry points, orientation letters, scale bar and a legend; all
through the affine in the radiological convention (see `slices`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from openir.core import LabelMap, Volume  # noqa: E402

from .slices import PLANES, Plane, decorate, field_of_view, radiological_slice, to_plane  # noqa: E402

CT_WINDOW = (-160.0, 240.0)  # abdominal soft tissue (level 40, width 400 HU)


@dataclass
class Outline:
    """A mask drawn over the views; ``fill`` shades it; later outlines are drawn on top."""

    name: str
    mask: np.ndarray  # on the label map's grid
    colour: str
    fill: bool = False
    style: str = "solid"
    width: float = 1.5


@dataclass
class Needle:
    entry_lps: Sequence[float]
    tip_lps: Sequence[float]
    label: str
    colour: str = "yellow"


@dataclass
class ViewSpec:
    """What to draw: the background, structures, outlines (bottom first), needles, a marked point."""

    labels: LabelMap
    centre_lps: Sequence[float]
    ct: Volume | None = None
    outlines: list[Outline] = field(default_factory=list)
    needles: list[Needle] = field(default_factory=list)
    structures: list[str] | None = None  # label names coloured (default: all but skin/fat/muscle)
    target_lps: Sequence[float] | None = None
    window: tuple[float, float] = CT_WINDOW
    alpha: float = 0.3


def structure_colours(labels: LabelMap, names: list[str] | None = None) -> dict[int, tuple[float, float, float]]:
    from .figures import label_colours

    colours = label_colours(labels)
    if names is None:
        return colours
    keep = {labels.value_of(n) for n in names if labels.has(n)}
    return {v: c for v, c in colours.items() if v in keep}


def draw_views(spec: ViewSpec, axes: Sequence, planes: Sequence[Plane] = PLANES) -> list:
    """Draw ``planes`` of ``spec`` on ``axes``; returns legend handles."""
    lab = spec.labels
    bounds = field_of_view(spec.ct if spec.ct is not None else lab)
    colours = structure_colours(lab, spec.structures)
    seen: set[int] = set()
    handles: list = []
    for ax, plane in zip(axes, planes, strict=True):
        h = float(min(lab.spacing.min(), 2.0))
        ax.set_facecolor("black")
        if spec.ct is not None:
            bg = radiological_slice(spec.ct, plane, spec.centre_lps, order=1, pixel_mm=h, cval=-1000, bounds=bounds)
            ax.imshow(bg.pixels, cmap="gray", vmin=spec.window[0], vmax=spec.window[1], extent=bg.extent,
                      interpolation="bilinear")
        ls = radiological_slice(lab, plane, spec.centre_lps, order=0, pixel_mm=h, bounds=bounds)
        rgba = np.zeros((*ls.pixels.shape, 4))
        for v, c in colours.items():
            m = ls.pixels == v
            if m.any():
                rgba[m, :3] = c
                rgba[m, 3] = spec.alpha if spec.ct is not None else 0.8
                seen.add(v)
        if spec.ct is None:  # no CT: body in grey under the structures
            body = (ls.pixels > 0) & (rgba[..., 3] == 0)
            rgba[body] = (0.35, 0.35, 0.35, 1.0)
        ax.imshow(rgba, extent=ls.extent, interpolation="nearest")
        for z, o in enumerate(spec.outlines):
            ov = radiological_slice(Volume(o.mask.astype(np.uint8), lab.affine), plane, spec.centre_lps,
                                    order=0, pixel_mm=h, bounds=bounds)
            if not ov.pixels.any():
                continue
            left, right, bottom, top = ov.extent
            nr, nc = ov.pixels.shape
            xs = left + (np.arange(nc) + 0.5) * (right - left) / nc
            ys = top + (np.arange(nr) + 0.5) * (bottom - top) / nr
            if o.fill:
                ax.contourf(xs, ys, ov.pixels, levels=[0.5, 1.5], colors=[o.colour], alpha=0.25, zorder=2 + z)
            ax.contour(xs, ys, ov.pixels, levels=[0.5], colors=[o.colour], linewidths=o.width,
                       linestyles=o.style, zorder=3 + z)
        for nd in spec.needles:
            seg = to_plane(plane, np.asarray([nd.entry_lps, nd.tip_lps], float))
            ax.plot(seg[:, 0], seg[:, 1], "-", color=nd.colour, lw=1.6, zorder=20)
            ax.plot(seg[0, 0], seg[0, 1], "o", color=nd.colour, ms=4, mec="black", mew=0.5, zorder=21)
        if spec.target_lps is not None:
            t = to_plane(plane, spec.target_lps)
            ax.plot(t[0], t[1], "+", color="red", ms=12, mew=2, zorder=22)
        decorate(ax, ls)
        ax.set_title(plane, color="white", fontsize=9)
    for v in sorted(seen):
        handles.append(Patch(color=colours[v], label=lab.labels[v]))
    for o in spec.outlines:
        handles.append(Line2D([], [], color=o.colour, lw=o.width, ls=o.style, label=o.name))
    for nd in spec.needles[:8]:
        handles.append(Line2D([], [], color=nd.colour, marker="o", lw=1.6, label=nd.label))
    if spec.needles:
        handles.append(Line2D([], [], color="white", marker="o", lw=0, label="(dot: skin entry)"))
    if spec.target_lps is not None:
        handles.append(Line2D([], [], color="red", marker="+", lw=0, ms=10, label="target"))
    return handles


def views_figure(spec: ViewSpec, title: str | None = None, planes: Sequence[Plane] = PLANES):
    """A figure of the views with the legend below (dark background, as a viewer shows CT)."""
    fig, axes = plt.subplots(1, len(planes), figsize=(4.4 * len(planes), 5.0), facecolor="black", squeeze=False)
    handles = draw_views(spec, axes[0], planes)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False,
                   labelcolor="white")
    if title:
        fig.suptitle(title, color="white", fontsize=10)
    nrows = (len(handles) + 5) // 6
    fig.tight_layout(rect=(0, min(0.35, 0.05 * nrows + 0.02), 1, 1))
    return fig
