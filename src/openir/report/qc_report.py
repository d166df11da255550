"""The registry's QC report: indicators with exact CIs, funnel plots, ratings with reasons,
learning curves, in one self-contained HTML file (figures are PNG embedded as base64; no CDN, no
scripts), so that it opens offline on any hospital workstation."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from openir.registry import QCResult

from .registry_figures import cusum_figure, funnel_figure

__all__ = ["qc_page_html", "render_qc_html"]


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(rows: list[list[Any]], head: list[str]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_qc_html(qc: QCResult, *, title: str = "OpenIR registry: quality control", highlight: str | None = None,
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
    competent = sum(1 for c in qc.curves if getattr(c, "cases_to_competence", None))
    parts.append(f"<h2>Operator learning curves (risk-adjusted Steiner CUSUM)</h2><p>{len(qc.curves)} operator-technique "
                 f"series with ≥ 20 cases; {len(signalling)} signal; {competent} have shown competence.</p>")
    if show:
        parts.append(cusum_figure(show))
    rows = [[_e(c.operator), _e(c.technique), c.n, c.failures, f"{getattr(c, 'expected_failures', float('nan')):.1f}",
             f"{c.h:g}", c.signal_at, getattr(c, "cases_to_competence", None)] for c in signalling]
    parts.append(_table(rows, ["operator", "technique", "cases", "failures", "expected", "h", "signal at case",
                               "cases to competence"]))
    body = "\n".join(parts)
    return body if fragment else qc_page_html(body, title)


def qc_page_html(body: str, title: str = "OpenIR registry: quality control") -> str:
    """Wrap a report body into a standalone page."""
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}.figs{display:flex;"
             "flex-wrap:wrap}.fig{margin:4px}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{style}</style></head>" \
           f"<body><h1>{_e(title)}</h1>{body}</body></html>"
