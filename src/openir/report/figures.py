"""Slice figures with label overlays, shared by every stage's report.

Slices are shown in the radiological convention (patient's right on the image left, anterior up on
axial, superior up on coronal/sagittal), with the aspect ratio taken from the voxel spacing. Grids
are assumed near-axial (identity-like direction), which is what CT and the phantoms produce.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from openir.core import LabelMap, Volume  # noqa: E402

CT_WINDOW = (-160.0, 240.0)  # abdominal soft-tissue window (level 40, width 400 HU)


def label_colours(labels: LabelMap) -> dict[int, tuple[float, float, float]]:
    """A stable colour per label value; tumours red, vessels blue/purple, bone ivory."""
    fixed = {
        "tumour": (0.95, 0.1, 0.1), "nodule": (0.95, 0.1, 0.1), "liver": (0.75, 0.45, 0.25),
        "aorta": (0.85, 0.15, 0.55), "ivc": (0.3, 0.3, 0.95), "portal_vein": (0.45, 0.2, 0.9),
        "hepatic_veins": (0.2, 0.55, 0.95), "ribs": (0.95, 0.92, 0.75), "spine": (0.95, 0.92, 0.75),
        "gallbladder": (0.3, 0.8, 0.3), "kidney": (0.95, 0.75, 0.2), "lung": (0.5, 0.8, 0.95),
        "ablation": (1.0, 0.6, 0.0), "zone": (1.0, 0.6, 0.0),
    }
    skip = ("skin", "fat", "muscle")
    cmap = plt.get_cmap("tab20")
    out = {}
    for n, (value, name) in enumerate(sorted(labels.labels.items())):
        key = name.lower()
        if any(key.startswith(s) for s in skip):
            continue
        colour = next((c for p, c in fixed.items() if key.startswith(p)), cmap(n % 20)[:3])
        out[value] = colour
    return out


def _overlay_rgba(lab2d: np.ndarray, colours: dict[int, tuple[float, float, float]], alpha: float) -> np.ndarray:
    rgba = np.zeros((*lab2d.shape, 4), dtype=float)
    for value, c in colours.items():
        m = lab2d == value
        if m.any():
            rgba[m, :3] = c
            rgba[m, 3] = alpha
    return rgba


_OUTLINES = ("#ffa500", "#00e5ff", "#7CFC00", "#ff00ff")


def _pixel_centres(shape: tuple[int, int], extent: tuple[float, float, float, float]):
    """Coordinates of pixel centres of an image drawn by imshow with ``extent`` (origin upper)."""
    left, right, bottom, top = extent
    x = left + (np.arange(shape[1]) + 0.5) * (right - left) / shape[1]
    y = top + (np.arange(shape[0]) + 0.5) * (bottom - top) / shape[0]
    return x, y


def _planes(vol: Volume, point_kji: Sequence[int]):
    k, j, i = (int(v) for v in point_kji)
    si, sj, sk = vol.spacing
    a = vol.array
    # (title, 2-D slice, extent (left, right, bottom, top) in mm, origin)
    yield "axial", lambda arr: arr[k], (0, a.shape[2] * si, a.shape[1] * sj, 0)
    yield "coronal", lambda arr: arr[:, j, :][::-1], (0, a.shape[2] * si, 0, a.shape[0] * sk)
    yield "sagittal", lambda arr: arr[:, :, i][::-1], (0, a.shape[1] * sj, 0, a.shape[0] * sk)


def overlay_slices_png(
    image: Volume,
    labels: LabelMap | None = None,
    centre_lps: Sequence[float] | None = None,
    window: tuple[float, float] = CT_WINDOW,
    alpha: float = 0.35,
    title: str | None = None,
    extra_masks: dict[str, np.ndarray] | None = None,
    dpi: int = 90,
) -> bytes:
    """PNG bytes of axial, coronal and sagittal slices through ``centre_lps`` with label overlays.

    ``extra_masks`` (name -> boolean array on the image grid) are drawn as outlines, e.g. a
    predicted ablation zone over the tumour.
    """
    if centre_lps is None:
        point = np.array(image.shape) // 2
    else:
        ijk = np.rint(image.world_to_index(centre_lps)).astype(int)
        point = np.clip(ijk[::-1], 0, np.array(image.shape) - 1)
    colours = label_colours(labels) if labels is not None else {}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), facecolor="black")
    for ax, (name, take, extent) in zip(axes, _planes(image, point), strict=True):
        ax.imshow(take(image.array), cmap="gray", vmin=window[0], vmax=window[1], extent=extent,
                  interpolation="nearest")
        if labels is not None:
            ax.imshow(_overlay_rgba(take(labels.array), colours, alpha), extent=extent, interpolation="nearest")
        for n, (_, mask) in enumerate((extra_masks or {}).items()):
            sl = take(mask.astype(np.uint8))
            if sl.any():
                x, y = _pixel_centres(sl.shape, extent)
                ax.contour(x, y, sl, levels=[0.5], colors=[_OUTLINES[n % len(_OUTLINES)]], linewidths=1.2)
        ax.set_title(name, color="white", fontsize=10)
        ax.axis("off")
    if labels is not None or extra_masks:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[v]) for v in colours]
        names = [labels.labels[v] for v in colours] if labels is not None else []
        for n, mname in enumerate(extra_masks or {}):
            handles.append(plt.Line2D([0], [0], color=_OUTLINES[n % len(_OUTLINES)]))
            names.append(mname)
        fig.legend(handles, names, loc="lower center", ncol=min(8, max(1, len(names))), fontsize=7,
                   frameon=False, labelcolor="white")
    if title:
        fig.suptitle(title, color="white")
    fig.tight_layout(rect=(0, 0.08 if (labels is not None or extra_masks) else 0, 1, 1))
    return figure_png(fig, dpi=dpi)


def figure_png(fig: plt.Figure, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    plt.close(fig)
    return buf.getvalue()
