"""The quality dashboard from the registry's QC (indicators, funnel plots, ratings, CUSUM
learning curves). Computed once per cache period for everyone; hospital users see operator-level
rows of their own hospital only (other hospitals appear by hospital code, never by operator)."""

from __future__ import annotations

import html
import io
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import HTTPException

from openir.registry import build_qc
from openir.registry.models import Hospital, Operator

from .context import Ctx
from .schemas import CurveOut, IndicatorRow, RatingOut
from .security import Principal


def qc(ctx: Ctx) -> Any:
    return ctx.cached("qc", lambda: build_qc(ctx.engine))


def _own_operators(ctx: Ctx, p: Principal) -> set[str]:
    with ctx.engine.connect() as c:
        return set(c.scalars(sa.select(Operator.code).join(Hospital, Hospital.id == Operator.hospital_id)
                             .where(Hospital.code == p.hospital_code)))


def indicators(ctx: Ctx, p: Principal, level: str = "hospital") -> list[IndicatorRow]:
    key = p.hospital_code if (level == "operator" and not p.sees_all) else "*"
    return ctx.cached(f"ind:{level}:{key}", lambda: _indicators(ctx, p, level))


def _indicators(ctx: Ctx, p: Principal, level: str) -> list[IndicatorRow]:
    q = qc(ctx)
    t = q.indicators
    if t.empty:
        return []
    t = t[t["level_by"] == level]
    if level == "operator" and not p.sees_all:
        t = t[t["unit"].isin(_own_operators(ctx, p))]
    titles = {d.code: d.title for d in q.defs}
    cols = ["indicator", "level_by", "unit", "n", "x", "rate", "ci_low", "ci_high", "adjusted_rate", "benchmark", "status"]
    out = []
    for r in t[cols].itertuples(index=False):
        d = r._asdict()
        for k in ("rate", "ci_low", "ci_high", "adjusted_rate", "benchmark"):
            d[k] = float(d[k]) if d[k] == d[k] else 0.0
        out.append(IndicatorRow(title=titles.get(d["indicator"], d["indicator"]), **{**d, "unit": str(d["unit"])}))
    return out


def ratings(ctx: Ctx, p: Principal) -> list[RatingOut]:
    return ctx.cached("ratings", lambda: [RatingOut(**r.model_dump(include={"hospital", "level", "region", "grade", "reasons"})) for r in qc(ctx).ratings])


def curves(ctx: Ctx, p: Principal) -> list[CurveOut]:
    mine = None if p.sees_all else _own_operators(ctx, p)
    return [CurveOut(operator=c.operator, technique=c.technique, n=c.n, failures=c.failures, h=c.h,
                     signal_at=c.signal_at, path=[round(float(v), 3) for v in c.path])
            for c in qc(ctx).curves if mine is None or c.operator in mine]


def _table(ctx: Ctx, code: str) -> tuple[pd.DataFrame, Any]:
    q = qc(ctx)
    d = next((d for d in q.defs if d.code == code), None)
    if d is None:
        raise HTTPException(404, "unknown indicator")
    t = q.indicators
    t = t[(t["indicator"] == code) & (t["level_by"] == "hospital")] if not t.empty else t
    return t, d


def funnel_svg(ctx: Ctx, p: Principal, code: str) -> str:
    return ctx.cached(f"funnel_svg:{code}:{p.hospital_code}", lambda: _funnel_svg(ctx, p, code))


def _funnel_svg(ctx: Ctx, p: Principal, code: str) -> str:
    """A funnel plot as SVG drawn directly (limits, registry rate, hospitals; the caller's circled)."""
    from openir.registry.funnel import Overdispersion, funnel_limits

    t, d = _table(ctx, code)
    W, H, m = 640, 380, 50  # noqa: N806
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="funnel plot {html.escape(code)}" class="funnel">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W/2}" y="18" text-anchor="middle" font-size="13">{html.escape(d.title)}</text>']
    if t.empty:
        parts.append(f'<text x="{W/2}" y="{H/2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    s = d.scale
    theta = float(t["benchmark"].iloc[0])
    od = Overdispersion(float(t["phi"].iloc[0]), float(t["tau2"].iloc[0]), bool(t["overdispersed"].iloc[0]), len(t))
    nmax = max(float(t["n"].max()), 10.0)
    grid = np.unique(np.round(np.geomspace(max(d.min_cases, 5), nmax * 1.1, 80)).astype(int))
    lim = funnel_limits(grid, theta, od=od)
    ys = np.concatenate([lim["lo998"], lim["hi998"], t["adjusted_rate"].to_numpy(float)]) * s
    ys = ys[np.isfinite(ys)]
    y0, y1 = float(ys.min()), float(ys.max())
    y0, y1 = y0 - 0.05 * (y1 - y0 + 1e-9), y1 + 0.05 * (y1 - y0 + 1e-9)
    lx0, lx1 = np.log(max(d.min_cases, 5) * 0.8), np.log(nmax * 1.15)

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
        mine = p.hospital_code == str(r.unit)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{7 if mine else 4}" fill="{colours.get(str(r.status), "#000")}" '
                     f'stroke="{"black" if mine else "none"}" stroke-width="2"><title>{html.escape(str(r.unit))}: '
                     f'{r.x}/{r.n} ({html.escape(str(r.status))})</title></circle>')
    parts.append(f'<line x1="{m}" x2="{W-m}" y1="{H-m}" y2="{H-m}" stroke="#333"/>'
                 f'<line x1="{m}" x2="{m}" y1="{m}" y2="{H-m}" stroke="#333"/>'
                 f'<text x="{W/2}" y="{H-12}" text-anchor="middle" font-size="11">cases (n, log scale)</text>'
                 f'<text x="{m-4}" y="{Y(y1):.1f}" text-anchor="end" font-size="10">{y1:.3g}</text>'
                 f'<text x="{m-4}" y="{Y(y0):.1f}" text-anchor="end" font-size="10">{y0:.3g}</text></svg>')
    return "".join(parts)


def funnel_png(ctx: Ctx, p: Principal, code: str) -> bytes:
    from openir.registry.report import funnel_figure

    t, d = _table(ctx, code)
    if t.empty:
        raise HTTPException(404, "no data")

    def make() -> bytes:
        import base64

        tag = funnel_figure(t, d)
        return base64.b64decode(tag.split("base64,", 1)[1].split('"', 1)[0])

    return ctx.cached(f"funnel_png:{code}", make)


def cusum_svg(ctx: Ctx, p: Principal) -> str:
    cs = curves(ctx, p)[:12]
    W, H, m = 640, 300, 40  # noqa: N806
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" class="cusum"><rect width="{W}" height="{H}" fill="white"/>']
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
    _ = io
    return "".join(out)
