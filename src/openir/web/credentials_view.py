"""Operator credentials page and API: who is due for what (refresher training, tier volumes, CUSUM
alarms). Quality officers see their own hospital's operators only; the centre and the
administrator see every hospital (and may pick one). Operators themselves have no access."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from openir.core import InputError
from openir.registry import OperatorCredentials, credentials_report, import_training

from . import quality_view
from .context import Ctx
from .deps import api_user, ctx_of, page_user, page_writer
from .security import Principal

router = APIRouter()
ROLES = ("quality_officer", "centre", "admin")


def _scope(p: Principal, hospital: str | None) -> str | None:
    """The hospital whose operators ``p`` may see (None = all); 403 for other roles or hospitals."""
    if p.role not in ROLES:
        raise HTTPException(403, "quality officers, the centre and administrators only")
    if p.sees_all:
        return hospital or None
    if not p.hospital_code or (hospital and hospital != p.hospital_code):
        raise HTTPException(403, "own hospital only")
    return p.hospital_code


def report(ctx: Ctx, p: Principal, hospital: str | None, due: bool) -> list[OperatorCredentials]:
    """The credentials report in the caller's scope (cached per scope with the dashboard's QC)."""
    scope = _scope(p, hospital)
    rows = ctx.cached(f"cred:{scope or '*'}", lambda: credentials_report(
        ctx.engine, hospital=scope, curves=quality_view.qc(ctx).curves))
    return [r for r in rows if r.due] if due else rows


@router.get("/api/credentials", response_model=list[OperatorCredentials])
def credentials_api(hospital: str | None = None, due: bool = False, p: Principal = Depends(api_user),
                    ctx: Ctx = Depends(ctx_of)) -> list[OperatorCredentials]:
    """Operators with cases per tier, CUSUM, volume progress, refresher training and what is due."""
    return report(ctx, p, hospital, due)


@router.get("/credentials", response_class=HTMLResponse, include_in_schema=False)
def credentials_page(request: Request, hospital: str | None = None, due: bool = False,
                     p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)) -> HTMLResponse:
    """The QC centre's "who is due for what" table."""
    from .pages import render

    return render(request, "credentials.html", p, rows=report(ctx, p, hospital, due), due=due,
                  hospital=hospital or "", error=None, result=None)


@router.post("/credentials/training", response_class=HTMLResponse, include_in_schema=False)
async def training_upload(request: Request, p: Principal = Depends(page_writer),
                          ctx: Ctx = Depends(ctx_of)) -> HTMLResponse:
    """Upload refresher-training records (CSV/Excel); a quality officer only for their own hospital's
    operators. All or nothing; a refused file re-renders the page with the reason (row and field)."""
    from .pages import render

    scope = _scope(p, None)
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise HTTPException(422, "no file")
    name = Path(upload.filename).name
    error, result = None, None
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / ("upload" + Path(name).suffix.lower())
        f.write_bytes(await upload.read())
        try:
            result = import_training(ctx.engine, f, hospital=scope, source=name, actor=p.username)
        except InputError as exc:
            error = str(exc)
    if result:
        ctx.bump()
    return render(request, "credentials.html", p, status=422 if error else 200, rows=report(ctx, p, None, False),
                  due=False, hospital="", error=error, result=result)
