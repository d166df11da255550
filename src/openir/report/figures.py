"""Slice figures with label overlays, shared by every stage's report.

Views are resampled through each volume's affine in the radiological convention (patient's right on
the image left, anterior up on axial, superior up on coronal/sagittal) whatever the file's
orientation; see `openir.report.slices` and `openir.report.views`.
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
    """PNG bytes of axial, coronal and sagittal views through ``centre_lps`` with label overlays,
    in the radiological convention through the affine (`openir.report.slices`), with orientation
    letters, a scale bar and a legend.

    ``extra_masks`` (name -> boolean array on the image grid) are drawn as outlines on top, e.g. a
    predicted ablation zone over the tumour.
    """
    from .views import Outline, ViewSpec, views_figure

    if centre_lps is None:
        centre_lps = image.index_to_world((np.array(image.grid.shape_ijk) - 1) / 2.0)
    lab = labels if labels is not None else LabelMap(np.zeros(image.shape, np.uint8), image.affine, {}, {})
    outlines = [Outline(n, m, _OUTLINES[k % len(_OUTLINES)], width=1.2) for k, (n, m) in enumerate((extra_masks or {}).items())]
    spec = ViewSpec(labels=lab, centre_lps=centre_lps, ct=image, outlines=outlines, window=window, alpha=alpha)
    return figure_png(views_figure(spec, title=title), dpi=dpi)


def figure_png(fig: plt.Figure, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    plt.close(fig)
    return buf.getvalue()
