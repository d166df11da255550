"""Figures of the registry's quality control: funnel plots and CUSUM learning curves.

Two renderings of each: matplotlib PNG for the self-contained QC report and the API, and light
SVG drawn directly for the dashboard (no matplotlib on the request path, the caller's hospital
circled). The registry computes the numbers (:func:`openir.registry.build_qc`); this module only draws.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from openir.registry import IndicatorDef, LearningCurve, Overdispersion, funnel_limits

__all__ = ["cusum_figure", "cusum_svg", "funnel_figure", "funnel_png", "funnel_svg"]


class Curve(Protocol):
    """What a CUSUM drawing needs of a learning curve (registry ``LearningCurve`` or an API row)."""

    operator: str
    technique: str
    n: int
    h: float
    path: Any


def _png_bytes(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _img(png: bytes) -> str:
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def funnel_png(t: pd.DataFrame, d: IndicatorDef, highlight: str | None = None) -> bytes:
    """Funnel plot (PNG) of one indicator: hospitals' risk-adjusted rates against the registry rate
    with 95 % and 99.8 % limits widened for over-dispersion; alarms labelled, ``highlight`` circled.

    ``t`` holds the hospital-level rows of ``build_qc(...).indicators`` for indicator ``d``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    theta = float(t["benchmark"].iloc[0])
    nmax = max(float(t["n"].max()), 10.0)
    grid = np.unique(np.round(np.geomspace(max(d.min_cases, 5), nmax * 1.1, 200)).astype(int))
    lim = funnel_limits(grid, theta, od=_od(t))
    s = d.scale
    ax.plot(grid, lim["lo95"] * s, "--", color="tab:orange", lw=1, label="95%")
    ax.plot(grid, lim["hi95"] * s, "--", color="tab:orange", lw=1)
    ax.plot(grid, lim["lo998"] * s, "-", color="tab:red", lw=1, label="99.8%")
    ax.plot(grid, lim["hi998"] * s, "-", color="tab:red", lw=1)
    ax.axhline(theta * s, color="k", lw=0.8, label="registry rate")
    colours = {"alarm": "tab:red", "alert": "tab:orange", "better": "tab:green", "ok": "tab:blue", "too few": "lightgrey"}
    for status, g in t.groupby("status"):
        ax.scatter(g["n"], g["adjusted_rate"] * s, s=18, color=colours.get(str(status), "k"), label=str(status), zorder=3)
    for _, r in t[t["status"].isin(["alarm"])].iterrows():
        ax.annotate(str(r["unit"]), (r["n"], r["adjusted_rate"] * s), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if highlight is not None and highlight in set(t["unit"]):
        r = t[t["unit"] == highlight].iloc[0]
        ax.scatter([r["n"]], [r["adjusted_rate"] * s], s=80, facecolors="none", edgecolors="k", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("cases (n)")
    ax.set_ylabel(("risk-adjusted " if d.risk_factors else "") + ("per 100" if s == 100 else "rate"))
    ax.set_title(d.title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return _png_bytes(fig)


def funnel_figure(t: pd.DataFrame, d: IndicatorDef, highlight: str | None = None) -> str:
    """:func:`funnel_png` as an ``<img>`` tag for self-contained HTML."""
    return _img(funnel_png(t, d, highlight))


def cusum_figure(curves: Sequence[LearningCurve]) -> str:
    """Operators' CUSUM paths with the decision threshold and signals, as an ``<img>`` tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    for c in curves:
        ax.plot(np.arange(1, c.n + 1), c.path, lw=1, label=f"{c.operator} {c.technique}")
        if c.signal_at:
            ax.scatter([c.signal_at], [c.path[c.signal_at - 1]], color="red", zorder=3, s=20)
    for h in sorted({c.h for c in curves}):  # thresholds are per technique (case mix)
        ax.axhline(h, color="red", ls="--", lw=0.8, label=f"h = {h:g}")
    ax.set_xlabel("procedure number")
    ax.set_ylabel("RA-CUSUM of technical failure")
    ax.legend(fontsize=7)
    return _img(_png_bytes(fig))


def _od(t: pd.DataFrame) -> Overdispersion:
    return Overdispersion(float(t["phi"].iloc[0]), float(t["tau2"].iloc[0]), bool(t["overdispersed"].iloc[0]), len(t))


def funnel_svg(t: pd.DataFrame, d: IndicatorDef, highlight: str | None = None,
               labels: dict[str, str] | None = None) -> str:
    """A funnel plot as SVG drawn directly (limits, registry rate, hospitals; ``highlight`` circled).
    ``labels`` (``title``, ``x``, ``empty``) give the words in the reader's language."""
    words = {"title": d.title, "x": "cases (n, log scale)", "empty": "no data", **(labels or {})}
    W, H, m = 640, 380, 50  # noqa: N806
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="funnel plot {html.escape(d.code)}" class="funnel">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W/2}" y="18" text-anchor="middle" font-size="13">{html.escape(words["title"])}</text>']
    if t.empty:
        parts.append(f'<text x="{W/2}" y="{H/2}" text-anchor="middle">{html.escape(words["empty"])}</text></svg>')
        return "".join(parts)
    s = d.scale
    theta = float(t["benchmark"].iloc[0])
    nmax = max(float(t["n"].max()), 10.0)
    grid = np.unique(np.round(np.geomspace(max(d.min_cases, 5), nmax * 1.1, 80)).astype(int))
    lim = funnel_limits(grid, theta, od=_od(t))
    ys = np.concatenate([lim["lo998"], lim["hi998"], t["adjusted_rate"].to_numpy(float)]) * s
    ys = ys[np.isfinite(ys)]
    y0, y1 = float(ys.min()), float(ys.max())
    y0, y1 = y0 - 0.05 * (y1 - y0 + 1e-9), y1 + 0.05 * (y1 - y0 + 1e-9)
    # every hospital on the canvas, including those with fewer cases than the limits start at
    nmin = min(float(max(t["n"].min(), 1)), float(max(d.min_cases, 5)))
    lx0, lx1 = np.log(nmin * 0.8), np.log(nmax * 1.15)

    def X(n: Any) -> Any:  # noqa: N802
        return m + (np.log(np.maximum(n, 1)) - lx0) / (lx1 - lx0) * (W - 2 * m)

    def Y(v: Any) -> Any:  # noqa: N802
        return H - m - (v - y0) / (y1 - y0) * (H - 2 * m)

    for key, colour, dash in (("lo95", "#e69500", "4 3"), ("hi95", "#e69500", "4 3"),
                              ("lo998", "#c0392b", ""), ("hi998", "#c0392b", "")):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(X(grid), Y(lim[key] * s), strict=True) if np.isfinite(y))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-dasharray="{dash}"/>')
    parts.append(f'<line x1="{m}" x2="{W-m}" y1="{Y(theta*s):.1f}" y2="{Y(theta*s):.1f}" stroke="black"/>')
    colours = {"alarm": "#c0392b", "alert": "#e69500", "better": "#27ae60", "ok": "#2c6fbb", "too few": "#bbb"}
    for r in t.itertuples(index=False):
        cx, cy = float(X(r.n)), float(Y(r.adjusted_rate * s))
        mine = highlight == str(r.unit)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{7 if mine else 4}" fill="{colours.get(str(r.status), "#000")}" '
                     f'stroke="{"black" if mine else "none"}" stroke-width="2"><title>{html.escape(str(r.unit))}: '
                     f'{r.x}/{r.n} ({html.escape(str(r.status))})</title></circle>')
    parts.append(f'<line x1="{m}" x2="{W-m}" y1="{H-m}" y2="{H-m}" stroke="#333"/>'
                 f'<line x1="{m}" x2="{m}" y1="{m}" y2="{H-m}" stroke="#333"/>'
                 f'<text x="{W/2}" y="{H-12}" text-anchor="middle" font-size="11">{html.escape(words["x"])}</text>'
                 f'<text x="{m-4}" y="{Y(y1):.1f}" text-anchor="end" font-size="10">{y1:.3g}</text>'
                 f'<text x="{m-4}" y="{Y(y0):.1f}" text-anchor="end" font-size="10">{y0:.3g}</text></svg>')
    return "".join(parts)


def cusum_svg(curves: Sequence[Curve], empty: str = "no operator has enough cases for a learning curve yet") -> str:
    """CUSUM paths as SVG polylines against the first curve's threshold ``h`` (dashed red); with no
    curve, the box says why instead of staying blank."""
    cs = list(curves)
    W, H, m = 640, 300, 40  # noqa: N806
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" class="cusum"><rect width="{W}" height="{H}" fill="white"/>']
    if not cs:
        out.append(f'<text x="{W/2}" y="{H/2}" text-anchor="middle" font-size="13">{html.escape(empty)}</text>')
    if cs:
        nmax = max(c.n for c in cs)
        ymax = max(max(max(c.path) for c in cs), cs[0].h) * 1.1 or 1.0
        yh = H - m - cs[0].h / ymax * (H - 2 * m)
        out.append(f'<line x1="{m}" x2="{W-m}" y1="{yh:.1f}" y2="{yh:.1f}" stroke="red" stroke-dasharray="4 3"/>')
        for n, c in enumerate(cs):
            pts = " ".join(f"{m + (i + 1) / nmax * (W - 2 * m):.1f},{H - m - v / ymax * (H - 2 * m):.1f}" for i, v in enumerate(c.path))
            out.append(f'<polyline points="{pts}" fill="none" stroke="hsl({n * 37 % 360},60%,40%)"><title>'
                       f'{html.escape(c.operator)} {html.escape(c.technique)}</title></polyline>')
    out.append("</svg>")
    return "".join(out)
