"""The QC report: indicators with exact CIs, funnel plots, ratings with reasons, learning curves.

One self-contained HTML file (figures are PNG embedded as base64; no CDN, no scripts).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from .catalogue import load_catalogue
from .cusum import cusum_signal
from .funnel import funnel_limits
from .indicators import IndicatorDef, compute_indicators, load_indicators
from .models import Operator, Outcome, Procedure
from .ratings import HospitalRating, rate_hospitals


@dataclass
class LearningCurve:
    operator: str
    technique: str
    n: int
    failures: int
    h: float
    signal_at: int | None
    path: np.ndarray = field(repr=False)


@dataclass
class QCResult:
    indicators: pd.DataFrame
    ratings: list[HospitalRating]
    curves: list[LearningCurve]
    defs: tuple[IndicatorDef, ...]


def learning_curves(engine: Engine, *, min_cases: int = 20) -> list[LearningCurve]:
    """Bernoulli CUSUM of technical failure per operator and technique (date order)."""
    cat = load_catalogue()
    q = (select(Operator.code, Procedure.technique, Procedure.date, Procedure.id, Outcome.technical_success)
         .join(Operator, Operator.id == Procedure.primary_operator_id)
         .join(Outcome, Outcome.procedure_id == Procedure.id)
         .where(Outcome.technical_success.is_not(None)))
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=["operator", "technique", "date", "id", "ok"])
    out = []
    if df.empty:
        return out
    df = df.sort_values(["operator", "technique", "date", "id"])
    for (op, tech), g in df.groupby(["operator", "technique"], sort=False):
        if len(g) < min_cases:
            continue
        c = cat.technique(str(tech)).cusum
        res = cusum_signal(~g["ok"].astype(bool).to_numpy(), c.p0, c.p1)
        out.append(LearningCurve(str(op), str(tech), res["n"], res["failures"], res["h"], res["signal_at"], res["path"]))
    return out


def build_qc(engine: Engine, *, method: str = "additive") -> QCResult:
    defs = load_indicators()
    ind = compute_indicators(engine, by=("hospital", "operator", "region"), defs=defs, method=method)
    return QCResult(ind, rate_hospitals(engine, ind), learning_curves(engine), defs)


# ---- figures ------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def funnel_figure(t: pd.DataFrame, d: IndicatorDef, highlight: str | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    theta = float(t["benchmark"].iloc[0])
    nmax = max(float(t["n"].max()), 10.0)
    grid = np.unique(np.round(np.geomspace(max(d.min_cases, 5), nmax * 1.1, 200)).astype(int))
    from .funnel import Overdispersion

    od = Overdispersion(float(t["phi"].iloc[0]), float(t["tau2"].iloc[0]), bool(t["overdispersed"].iloc[0]), len(t))
    lim = funnel_limits(grid, theta, od=od)
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
    return _png(fig)


def cusum_figure(curves: list[LearningCurve]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    for c in curves:
        ax.plot(np.arange(1, c.n + 1), c.path, lw=1, label=f"{c.operator} {c.technique}")
        if c.signal_at:
            ax.scatter([c.signal_at], [c.path[c.signal_at - 1]], color="red", zorder=3, s=20)
    if curves:
        ax.axhline(curves[0].h, color="red", ls="--", lw=0.8, label=f"h = {curves[0].h:g}")
    ax.set_xlabel("procedure number")
    ax.set_ylabel("CUSUM of technical failure")
    ax.legend(fontsize=7)
    return _png(fig)


# ---- HTML ---------------------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(rows: list[list[Any]], head: list[str]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_html(qc: QCResult, *, title: str = "OpenIR registry: quality control", highlight: str | None = None,
                fragment: bool = False) -> str:
    """The QC report page (or only its body with ``fragment``, for the demo summary)."""
    ind = qc.indicators
    parts = []
    # ratings
    rows = [[f"<b>{_e(r.hospital)}</b>", _e(r.level), _e(r.region), f"<b>{r.grade}</b>", f"{r.yearly_volume:g}",
             "—" if r.completeness is None else f"{r.completeness:.1%}", "<br>".join(_e(x) for x in r.reasons)]
            for r in qc.ratings]
    counts = pd.Series([r.grade for r in qc.ratings]).value_counts().to_dict() if qc.ratings else {}
    parts.append(f"<h2>Hospital ratings</h2><p>{' · '.join(f'{g}: {counts.get(g, 0)}' for g in 'ABC')} "
                 "(rules: registry/data/ratings.yaml)</p>" + _table(rows, ["hospital", "level", "region", "grade",
                                                                           "procedures/year", "completeness", "reasons"]))
    # indicators: pooled summary and funnels
    parts.append("<h2>Indicators (hospital level, funnel against the registry rate)</h2>")
    summ = []
    for d in qc.defs:
        t = ind[(ind["level_by"] == "hospital") & (ind["indicator"] == d.code)]
        if t.empty or t["n"].sum() == 0:
            continue
        flagged = t[t["status"].isin(["alarm", "alert"])]
        summ.append([_e(d.title), int(t["n"].sum()), f"{t['benchmark'].iloc[0] * d.scale:.3g}",
                     f"{d.target.value * d.scale:g} <small>({_e(d.target.source)})</small>",
                     "yes" if d.risk_factors else "no",
                     f"{t['phi'].iloc[0]:.2f}{' (corrected)' if t['overdispersed'].iloc[0] else ''}",
                     ", ".join(f"{_e(u)} ({s})" for u, s in zip(flagged["unit"], flagged["status"], strict=True)) or "none"])
    parts.append(_table(summ, ["indicator", "cases", "registry rate", "target", "risk-adjusted", "phi", "flagged hospitals"]))
    figs = []
    for d in qc.defs:
        t = ind[(ind["level_by"] == "hospital") & (ind["indicator"] == d.code)]
        if t.empty or t["n"].sum() == 0:
            continue
        figs.append(f"<div class='fig'>{funnel_figure(t, d, highlight)}</div>")
    parts.append("<div class='figs'>" + "".join(figs) + "</div>")
    # hospital detail with exact CIs
    det = ind[(ind["level_by"] == "hospital") & ind["status"].isin(["alarm", "alert"])]
    rows = [[_e(r.unit), _e(r.indicator), int(r.n), int(r.x), f"{r.rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]",
             f"{r.adjusted_rate:.3f}", f"{r.benchmark:.3f}", _e(r.status)] for r in det.itertuples()]
    parts.append("<h3>Flagged hospitals (exact 95% Clopper-Pearson intervals)</h3>" +
                 _table(rows, ["hospital", "indicator", "n", "events", "rate [95% CI]", "adjusted", "registry", "status"]))
    # regions
    reg = ind[ind["level_by"] == "region"]
    rows = [[_e(r.unit), _e(r.indicator), int(r.n), f"{r.rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", _e(r.status)]
            for r in reg.itertuples() if r.indicator in ("technical_success", "major_ae", "mortality_30d")]
    parts.append("<h3>Regions</h3>" + _table(rows, ["region", "indicator", "n", "rate [95% CI]", "status"]))
    # operators
    signalling = [c for c in qc.curves if c.signal_at]
    show = sorted(signalling, key=lambda c: c.signal_at or 0)[:6] or sorted(qc.curves, key=lambda c: -c.n)[:3]
    parts.append(f"<h2>Operator learning curves (Bernoulli CUSUM)</h2><p>{len(qc.curves)} operator-technique series "
                 f"with ≥ 20 cases; {len(signalling)} signal.</p>")
    if show:
        parts.append(cusum_figure(show))
    rows = [[_e(c.operator), _e(c.technique), c.n, c.failures, f"{c.h:g}", c.signal_at] for c in signalling]
    parts.append(_table(rows, ["operator", "technique", "cases", "failures", "h", "signal at case"]))
    body = "\n".join(parts)
    return body if fragment else page_html(body, title)


def page_html(body: str, title: str = "OpenIR registry: quality control") -> str:
    """Wrap a report body into a standalone page."""
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}.figs{display:flex;"
             "flex-wrap:wrap}.fig{margin:4px}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{style}</style></head>" \
           f"<body><h1>{_e(title)}</h1>{body}</body></html>"


def write_report(engine: Engine, path: str | Path, **kw: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    qc = build_qc(engine)
    path.write_text(render_html(qc, **kw), encoding="utf-8")
    return path
