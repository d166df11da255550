"""The exercise pages: list the teaching library, download a case, upload a plan JSON and see its
score and figure.

Library entries are de-identified (no patient, hospital or operator), so every signed-in user may
read them, like a textbook; the library lives in ``<storage root>/training`` (``openir training
library add`` fills it). Uploading a plan only computes a score: nothing is stored, nothing audited
about a patient. Posts carry the session's CSRF token like every other form.
"""

from __future__ import annotations

import base64
import io
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from openir.core import InputError
from openir.plan import Plan

from .context import Ctx
from .deps import api_user, api_writer, ctx_of, page_user, page_writer
from .security import Principal

router = APIRouter()
MAX_PLAN_BYTES = 5_000_000


def library_root(ctx: Ctx) -> Path:
    return ctx.storage / "training"


def _case(ctx: Ctx, entry_id: str):
    from openir.training import load_case

    try:
        return load_case(library_root(ctx), entry_id)
    except InputError:
        raise HTTPException(404, "not found") from None


def _plan_from_bytes(data: bytes, name: str) -> Plan:
    """A plan JSON or needles as entry/tip points (``openir.training.trainee_plan``)."""
    from openir.training import parse_trainee_plan

    if len(data) > MAX_PLAN_BYTES:
        raise InputError(f"{name}: a plan JSON over {MAX_PLAN_BYTES // 1_000_000} MB", field="plan")
    return parse_trainee_plan(data, name)


def _score(case, plan: Plan, time_min: float | None):
    from openir.training import score_plan

    return score_plan(case, plan, procedure_time_min=time_min)


def _figure_b64(case, plan: Plan, score) -> str:
    from openir.report import exercise_figure

    with tempfile.TemporaryDirectory() as d:
        path = exercise_figure(Path(d) / "score.png", case, plan, score)
        return base64.b64encode(path.read_bytes()).decode()


def _score_and_figure(case, plan: Plan, time_min: float | None):
    score = _score(case, plan, time_min)
    return score, _figure_b64(case, plan, score)


# ---- API ------------------------------------------------------------------------------------------

@router.get("/api/training/cases")
def api_cases(organ: str | None = None, technique: str | None = None, difficulty: str | None = None,
              p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[dict]:
    """Teaching cases (de-identified), filtered by organ, technique and difficulty level."""
    from openir.training import entries_json, list_entries

    return entries_json(list_entries(library_root(ctx), organ=organ, technique=technique, difficulty=difficulty))


@router.post("/api/training/cases/{entry_id}/score")
def api_score(entry_id: str, plan: dict = Body(...), time_min: float | None = None,
              p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> dict:
    """Score a plan (the JSON body) on a teaching case; every point lost explained (en, zh-CN)."""
    import json

    case = _case(ctx, entry_id)
    s = _score(case, _plan_from_bytes(json.dumps(plan).encode(), "plan"), time_min)
    return json.loads(s.model_dump_json())


@router.get("/training/{entry_id}/download")
def download(entry_id: str, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    """The case folder for the trainee (image, labels with names, case sheet; no expert plan), zipped."""
    from openir.training import export_case

    _case(ctx, entry_id)
    with tempfile.TemporaryDirectory() as d:
        folder = export_case(library_root(ctx), entry_id, d)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(folder.iterdir()):
                z.write(f, f"{entry_id}/{f.name}")
    return Response(buf.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{entry_id}.zip"'})


# ---- pages ----------------------------------------------------------------------------------------

@router.get("/training", response_class=HTMLResponse)
def training_page(request: Request, organ: str | None = None, technique: str | None = None,
                  difficulty: str | None = None, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """The library: every case with organ, technique, tumour size and difficulty; filters."""
    from openir.training import list_entries

    from .pages import render

    rows = list_entries(library_root(ctx), organ=organ or None, technique=technique or None,
                        difficulty=difficulty or None)
    return render(request, "training.html", p, entries=rows, organ=organ or "", technique=technique or "",
                  difficulty=difficulty or "")


@router.get("/training/{entry_id}", response_class=HTMLResponse)
def training_case_page(entry_id: str, request: Request, p: Principal = Depends(page_user),
                       ctx: Ctx = Depends(ctx_of)):
    """One case: difficulty criteria with their sources, outcome, download, plan upload."""
    from .pages import render

    case = _case(ctx, entry_id)
    return render(request, "training_case.html", p, entry=case.entry, score=None, figure=None, error=None)


@router.post("/training/{entry_id}/score", response_class=HTMLResponse)
async def training_score_page(entry_id: str, request: Request, p: Principal = Depends(page_writer),
                              ctx: Ctx = Depends(ctx_of)):
    """Score an uploaded plan JSON; the page shows every criterion, the points lost and the figure."""
    from .pages import render

    case = _case(ctx, entry_id)
    form = await request.form()
    upload = form.get("plan")
    needles = str(form.get("needles") or "").strip()
    raw_time = str(form.get("time_min") or "").strip()
    error = score = figure = None
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            plan = _plan_from_bytes(await upload.read(), upload.filename)
        elif needles:  # needles typed as entry/tip points (JSON)
            plan = _plan_from_bytes(needles.encode(), "needles")
        else:
            raise InputError("choose a plan JSON file or give the needles", field="plan")
        try:
            time_min = float(raw_time) if raw_time else None
        except ValueError:
            raise InputError(f"procedure time {raw_time!r} is not a number of minutes", field="time_min") from None
        score, figure = await run_in_threadpool(_score_and_figure, case, plan, time_min)  # CPU seconds: off the loop
    except InputError as exc:
        error = str(exc)
    return render(request, "training_case.html", p, status=422 if error else 200, entry=case.entry, score=score,
                  figure=figure, error=error)
