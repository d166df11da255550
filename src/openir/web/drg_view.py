"""The DRG cost page: cost per case, stay, outcome, domestic consumables and payment minus cost per DRG
group and hospital, with the cost-outlier funnel of one group.

QC centre and administrators see every hospital by code; a hospital user sees their own hospital by
code and the others anonymised (``other 1``, ``other 2``... a stable number per hospital), in the
table and in the funnel plot. The analysis is computed once per cache period for everyone.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from openir import report
from openir.registry import DrgAnalysis, analyse_drg

from .context import Ctx
from .deps import api_user, ctx_of, page_user
from .i18n import translator
from .security import Principal

router = APIRouter()


def analysis(ctx: Ctx) -> DrgAnalysis:
    """The registry's DRG analysis (all hospitals), shared by all users for the cache period."""
    return ctx.cached("drg", lambda: analyse_drg(ctx.engine))


def shown_names(ctx: Ctx, p: Principal, other: str) -> dict[str, str]:
    """Hospital code -> the name this caller may see."""
    codes = sorted(set(analysis(ctx).summary["hospital_code"]))
    if p.sees_all:
        return {c: c for c in codes}
    if not p.hospital_code:
        raise HTTPException(403, "no hospital")
    others = [c for c in codes if c != p.hospital_code]
    return {p.hospital_code: p.hospital_code, **{c: f"{other} {i + 1}" for i, c in enumerate(others)}}


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def rows(ctx: Ctx, p: Principal, group: str | None, other: str) -> list[dict[str, Any]]:
    """Summary rows of one group (or all), hospital names as the caller may see them, own first."""
    res = analysis(ctx)
    names = shown_names(ctx, p, other)
    s = res.summary if group is None else res.summary[res.summary["drg_code"] == group]
    status = {(r.drg_code, r.hospital_code): r.status for r in res.funnel.itertuples(index=False)}
    out = []
    for r in s.to_dict("records"):
        r = {k: _clean(v) for k, v in r.items()}
        r["status"] = status.get((r["drg_code"], r["hospital_code"]), "too few")
        r["own"] = r["hospital_code"] == p.hospital_code
        r["hospital"] = names.get(r.pop("hospital_code"), other)
        out.append(r)
    return sorted(out, key=lambda r: (r["drg_code"], not r["own"], r["hospital"]))


@router.get("/drg", response_class=HTMLResponse, include_in_schema=False)
def drg_page(request: Request, group: str | None = None, p: Principal = Depends(page_user),
             ctx: Ctx = Depends(ctx_of)) -> HTMLResponse:
    from .pages import render

    t = translator(p.lang)
    res = analysis(ctx)
    groups = sorted(set(res.summary["drg_code"]))
    chosen = group if group in groups else (str(res.summary.groupby("drg_code")["cases"].sum().idxmax()) if groups else None)
    return render(request, "drg.html", p, groups=groups, chosen=chosen, payment=res.payment,
                  rows=rows(ctx, p, chosen, t("drg_other")) if chosen else [])


@router.get("/drg/funnel/{group}.png", include_in_schema=False)
def drg_funnel(group: str, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    t = translator(p.lang)
    res = analysis(ctx)
    if group not in set(res.funnel["drg_code"]):
        raise HTTPException(404, "unknown DRG group")
    names = shown_names(ctx, p, t("drg_other"))
    key = f"drg_png:{group}:{'*' if p.sees_all else p.hospital_code}:{p.lang}"
    png = ctx.cached(key, lambda: report.drg_funnel_png(
        res.funnel, group, highlight=None if p.sees_all else p.hospital_code, names=names,
        title=f"{t('drg_funnel_title')} {group}", x_label=t("cases"), y_label=t("drg_cost_mean")))
    return Response(png, media_type="image/png")


@router.get("/api/drg", tags=["quality"])
def drg_api(group: str | None = None, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> dict[str, Any]:
    """DRG summary rows (hospital names as the caller may see them) and the payment configuration used."""
    t = translator(p.lang)
    return {"payment": analysis(ctx).payment.model_dump(), "rows": rows(ctx, p, group, t("drg_other"))}
