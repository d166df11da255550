"""The quality dashboard from the registry's QC (indicators, funnel plots, ratings, CUSUM
learning curves). Computed once per cache period for everyone; hospital users see operator-level
rows of their own hospital only (other hospitals appear by hospital code, never by operator)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import HTTPException

from openir import report
from openir.registry import build_qc, list_operators, session_scope

from .context import Ctx
from .i18n import translator
from .messages import indicator_title
from .schemas import CurveOut, IndicatorRow, RatingOut
from .security import Principal


def qc(ctx: Ctx) -> Any:
    """The registry's QC, computed once per cache period for all users."""
    return ctx.cached("qc", lambda: build_qc(ctx.engine))


def _own_operators(ctx: Ctx, p: Principal) -> set[str]:
    with session_scope(ctx.engine, p.username) as s:
        return {o.code for o in list_operators(s, p.hospital_code or "")}


def indicators(ctx: Ctx, p: Principal, level: str = "hospital") -> list[IndicatorRow]:
    """Indicator rows at one level; operator rows only of the caller's hospital unless centre."""
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
    """Hospital ratings with reasons (public across hospitals: hospital level only)."""
    return ctx.cached("ratings", lambda: [RatingOut(**r.model_dump(include={"hospital", "level", "region", "grade", "reasons"})) for r in qc(ctx).ratings])


def curves(ctx: Ctx, p: Principal) -> list[CurveOut]:
    """Learning curves; hospital users see their own operators only."""
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
    """The dashboard's funnel plot of one indicator (SVG), the caller's hospital circled."""
    t = translator(p.lang)

    def make() -> str:
        table, d = _table(ctx, code)
        words = {"title": indicator_title(t, d.code, d.title), "x": t("funnel_x"), "empty": t("none")}
        return report.funnel_svg(table, d, p.hospital_code, words)

    return ctx.cached(f"funnel_svg:{code}:{p.hospital_code}:{p.lang}", make)


def funnel_png(ctx: Ctx, p: Principal, code: str) -> bytes:
    """The report's funnel plot of one indicator (PNG, same for every caller); 404 without data."""
    t, d = _table(ctx, code)
    if t.empty:
        raise HTTPException(404, "no data")
    return ctx.cached(f"funnel_png:{code}", lambda: report.funnel_png(t, d))


def cusum_svg(ctx: Ctx, p: Principal) -> str:
    """Learning curves (first 12 the caller may see) as SVG."""
    return report.cusum_svg(curves(ctx, p)[:12], translator(p.lang)("cusum_empty"))
