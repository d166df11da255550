"""Cost-outlier funnel plot of one DRG group (matplotlib PNG).

Each hospital's mean cost per case against its case count, with the group mean and the 95 % and
99.8 % limits mean +/- z * SD / sqrt(n) (:func:`openir.registry.cost_funnel` computes them; this
module only draws). Hospitals outside the 99.8 % limit are labelled; ``names`` relabels or hides
hospitals (a hospital user sees the others anonymised), ``highlight`` circles one hospital.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

__all__ = ["drg_funnel_png"]

COLOURS = {"alarm": "#c0392b", "alert": "#e67e22", "better": "#2471a3", "ok": "#555555", "too few": "#bbbbbb"}


def drg_funnel_png(funnel: pd.DataFrame, group: str, *, highlight: str | None = None,
                   names: dict[str, str] | None = None, title: str | None = None,
                   x_label: str = "cases", y_label: str = "mean cost per case (CNY)") -> bytes:
    """PNG of the funnel rows of ``group`` (rows of :func:`openir.registry.cost_funnel`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = funnel[funnel["drg_code"] == group]
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    if t.empty:
        ax.text(0.5, 0.5, "no cases", ha="center", va="center", transform=ax.transAxes)
    else:
        mu, sd = float(t["group_mean"].iloc[0]), float(t["group_sd"].iloc[0])
        n_lo = max(1.0, float(t["n"].min()) * 0.5)
        n = np.linspace(n_lo, max(float(t["n"].max()) * 1.1, 10.0), 300)
        spread = 3.2 * sd / np.sqrt(n_lo) if np.isfinite(sd) else 0.0
        y = t["mean_cost"].to_numpy(dtype=float)
        ax.set_ylim(max(0.0, min(y.min(), mu - spread) * 0.95), max(y.max(), mu + spread) * 1.05)
        ax.axhline(mu, color="black", lw=1, label="group mean")
        if np.isfinite(sd):
            for z, style, lab in ((1.959964, "--", "95 %"), (3.090232, ":", "99.8 %")):
                ax.plot(n, mu + z * sd / np.sqrt(n), "k" + style, lw=0.9, label=lab)
                ax.plot(n, mu - z * sd / np.sqrt(n), "k" + style, lw=0.9)
        for status, part in t.groupby("status"):
            ax.scatter(part["n"], part["mean_cost"], s=18, color=COLOURS.get(str(status), "#555555"),
                       label=str(status), zorder=3)
        for r in t.itertuples(index=False):
            shown = names.get(r.hospital_code) if names is not None else r.hospital_code
            if r.status == "alarm" and shown:
                ax.annotate(shown, (r.n, r.mean_cost), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if highlight is not None and r.hospital_code == highlight:
                ax.scatter([r.n], [r.mean_cost], s=110, facecolors="none", edgecolors="#1e8449", lw=1.6, zorder=4)
                ax.annotate(shown or r.hospital_code, (r.n, r.mean_cost), fontsize=8, color="#1e8449",
                            xytext=(4, -10), textcoords="offset points")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title or f"Cost per case, DRG {group}", fontsize=10)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
