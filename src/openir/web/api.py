"""The JSON API (``/api``): everything the pages show, for browsers and machines alike."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import select

from openir.registry import CaseFilter, ProcedureEdit, ProcedureIn, load_catalogue, session_scope

from . import cases, consult, dose_view, quality_view
from .access import audit
from .context import Ctx
from .deps import admin, api_user, api_writer, ctx_of
from .i18n import translator
from .imaging import load_case_margin, load_case_volume, render_slice, surface_points
from .messages import note_text
from .models import User
from .procedures import (
    case_filter,
    check_draft,
    create_procedure,
    edit_record,
    get_procedure,
    list_procedures,
    lock_record,
)
from .schemas import (
    AckIn,
    CaseOut,
    CheckIn,
    CheckOut,
    CommentIn,
    ConsultIn,
    ConsultOut,
    CumulativeOut,
    CurveOut,
    DoseAlertOut,
    DrlOut,
    IndicatorRow,
    LangIn,
    LoginIn,
    Me,
    NotificationOut,
    ProcedureOut,
    ProcedurePage,
    RatingOut,
    RecordOut,
    TokenIn,
    TokenOut,
    TransitionIn,
    UserIn,
)
from .security import SESSION_COOKIE, Principal, hash_password, new_token
from .session_ops import login_user, logout_user

router = APIRouter(prefix="/api")
PNG = {200: {"content": {"image/png": {}}}}
SVG = {200: {"content": {"image/svg+xml": {}}}}


# ---- accounts -----------------------------------------------------------------------------------
@router.post("/login", response_model=Me, tags=["accounts"], responses={401: {}, 429: {}})
def login(body: LoginIn, request: Request, response: Response, ctx: Ctx = Depends(ctx_of)) -> Me:
    """Log in with user name and password: sets the session cookie and returns the CSRF token that writes
    must echo."""
    p, secret = login_user(ctx, body.username, body.password, request.client.host if request.client else "?")
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return Me(username=p.username, role=p.role, hospital_code=p.hospital_code, operator_code=p.operator_code,
              lang=p.lang, csrf_token=p.csrf)


@router.post("/logout", status_code=204, tags=["accounts"])
def logout(request: Request, response: Response, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> None:
    """End the browser session (the cookie's server-side row is deleted, so a copied cookie dies too)."""
    logout_user(ctx, request.cookies.get(SESSION_COOKIE))
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=Me, tags=["accounts"])
def me(p: Principal = Depends(api_user)) -> Me:
    """Who the caller is: role, hospital, language and CSRF token, so a client can shape its UI."""
    return Me(username=p.username, role=p.role, hospital_code=p.hospital_code, operator_code=p.operator_code,
              lang=p.lang, csrf_token=p.csrf)


@router.put("/me/lang", response_model=Me, tags=["accounts"])
def set_lang(body: LangIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> Me:
    """Change the caller's interface language (zh-CN or en); audited like every account change."""
    with session_scope(ctx.engine, p.username) as s:
        u = s.get(User, p.user_id)
        u.lang = body.lang
        audit(s, p, "update", "web_users", p.user_id, {"lang": body.lang})
    return Me(username=p.username, role=p.role, hospital_code=p.hospital_code, operator_code=p.operator_code,
              lang=body.lang, csrf_token=p.csrf)


@router.post("/tokens", response_model=TokenOut, tags=["accounts"])
def make_token(body: TokenIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> TokenOut:
    """An API token for a machine acting as this user (shown once; stored hashed)."""
    with session_scope(ctx.engine, p.username) as s:
        token = new_token(s, s.get(User, p.user_id), body.name)
        audit(s, p, "insert", "web_api_tokens", p.user_id, {"name": body.name})
    return TokenOut(token=token, name=body.name)


@router.post("/users", response_model=Me, tags=["accounts"])
def add_user(body: UserIn, p: Principal = Depends(admin), ctx: Ctx = Depends(ctx_of)) -> Me:
    """Create an account (administrators only); hospital roles must name their hospital, others must not."""
    if (body.role in ("operator", "quality_officer")) != (body.hospital_code is not None):
        raise HTTPException(422, "hospital roles need a hospital_code; centre and admin have none")
    with session_scope(ctx.engine, p.username) as s:
        if s.scalar(select(User.id).where(User.username == body.username)) is not None:
            raise HTTPException(409, "user exists")
        s.add(User(username=body.username, password_hash=hash_password(body.password), role=body.role,
                   hospital_code=body.hospital_code, operator_code=body.operator_code, lang=body.lang))
        audit(s, p, "insert", "web_users", body.username, {"role": body.role, "hospital": body.hospital_code})
    return Me(username=body.username, role=body.role, hospital_code=body.hospital_code,
              operator_code=body.operator_code, lang=body.lang)


# ---- procedures ---------------------------------------------------------------------------------
@router.get("/catalogue", tags=["procedures"])
def catalogue(p: Principal = Depends(api_user)) -> list[dict]:
    """Coded techniques with tier, category, organ, indications (for the technique picker)."""
    cat = load_catalogue()
    return [{"code": t.code, "name": t.name, "name_zh": t.name_zh, "category": t.category, "tier": t.tier,
             "organ": t.organ, "indications": t.indications} for t in cat.techniques.values()]


@router.post("/procedures/check", response_model=CheckOut, tags=["procedures"])
def check(body: CheckIn, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> CheckOut:
    """Live check of a draft against the tier catalogue, the operator's credential, indications."""
    return check_draft(ctx, p, body)


@router.get("/procedures", response_model=ProcedurePage, tags=["procedures"])
def procedures(limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
               flagged: bool = False, f: CaseFilter = Depends(case_filter), p: Principal = Depends(api_user),
               ctx: Ctx = Depends(ctx_of)) -> ProcedurePage:
    """A page of the procedures the caller may see, newest first; other hospitals' rows de-identified.
    Filters: hospital, operator, technique, date_from, date_to, q (own hospital's uid/patient key),
    indicator (its denominator; with events=true its numerator), flagged."""
    total, items = list_procedures(ctx, p, limit=limit, offset=offset, flagged=flagged, filters=f)
    return ProcedurePage(total=total, items=items)


@router.post("/procedures", response_model=RecordOut, status_code=201, tags=["procedures"])
def record(body: ProcedureIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> RecordOut:
    """Record a procedure of the caller's own hospital; returns the rule flags and derived AE grades."""
    return RecordOut(**create_procedure(ctx, p, body))


@router.put("/procedures/{pid}", tags=["procedures"])
def edit(pid: int, body: ProcedureEdit, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> dict:
    """Correct a saved record of the caller's hospital (409 once locked); returns the changed fields."""
    return {"changed": edit_record(ctx, p, pid, body)}


@router.post("/procedures/{pid}/lock", tags=["procedures"])
def lock(pid: int, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> dict:
    """Lock (sign off) a record: the hospital's quality officer only; no edits afterwards."""
    lock_record(ctx, p, pid)
    return {"locked": True}


@router.get("/procedures/{pid}", response_model=ProcedureOut, tags=["procedures"])
def procedure(pid: int, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> ProcedureOut:
    """One procedure (404 if another hospital's and not the centre); the read is audited."""
    return get_procedure(ctx, p, pid)


# ---- cases and images ---------------------------------------------------------------------------
@router.get("/cases/{pid}", response_model=CaseOut, tags=["cases"])
def case(pid: int, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> CaseOut:
    """The whole case: procedure, outcome, AEs, stage results, dose history and image metadata (audited
    read)."""
    return cases.case_view(ctx, p, pid)


@router.get("/cases/{pid}/slice.png", response_class=Response, responses=PNG, tags=["cases"])
def slice_png(pid: int, axis: Literal["axial", "coronal", "sagittal"] = "axial", index: int = Query(0, ge=0, le=100_000),
              centre: float = Query(40.0, ge=-1e5, le=1e5), width: float = Query(400.0, gt=0, le=1e5),
              overlay: bool = True, margin: bool = False, p: Principal = Depends(api_user),
              ctx: Ctx = Depends(ctx_of)) -> Response:
    """One image slice with window/level, label overlay and the planned needles, for the case viewer;
    each read is audited. Patient pixels are never cached (no-store)."""
    files = cases.read_images(ctx, p, pid)
    img, lab, sp = load_case_volume(*files)
    png = render_slice(img, lab, sp, axis=axis, index=index, centre=centre, width=width, overlay=overlay,
                       needles=cases.needle_lines(ctx, p, pid) if overlay else None,
                       margin=load_case_margin(files[0]) if margin else None)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/cases/{pid}/points3d", tags=["cases"])
def points3d(pid: int, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> dict:
    """Surface points of each label (zones, tumour) and plan trajectories, in mm, for the 3D view."""
    img, lab, sp = load_case_volume(*cases.read_images(ctx, p, pid))
    view = cases.case_view(ctx, p, pid)
    lines = []
    for t in (view.plan or {}).get("trajectories", []) or []:
        if isinstance(t, dict) and isinstance(t.get("entry_mm"), list) and isinstance(t.get("target_mm"), list):
            lines.append({"from": t["entry_mm"], "to": t["target_mm"]})
    return {"labels": surface_points(lab, sp), "lines": lines,
            "extent_mm": [img.shape[2] * sp[2], img.shape[1] * sp[1], img.shape[0] * sp[0]]}


# ---- dose ---------------------------------------------------------------------------------------
@router.get("/dose/alerts", response_model=list[DoseAlertOut], tags=["dose"])
def alerts(only_open: bool = False, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[DoseAlertOut]:
    """Dose alerts of the caller's hospital (all, pseudonymised, for the centre), newest first."""
    return dose_view.list_alerts(ctx, p, only_open=only_open)


@router.post("/dose/alerts/{aid}/ack", response_model=DoseAlertOut, tags=["dose"])
def ack(aid: int, body: AckIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> DoseAlertOut:
    """Acknowledge one of the caller's hospital's dose alerts (once; audited)."""
    return dose_view.acknowledge(ctx, p, aid, body.note)


@router.get("/dose/patients/{patient_id}/cumulative", response_model=CumulativeOut, tags=["dose"])
def patient_dose(patient_id: str, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> CumulativeOut:
    """A patient's cumulative dose over current reports from the caller's hospital (audited read)."""
    return dose_view.cumulative(ctx, p, patient_id)


@router.get("/dose/drl", response_model=DrlOut, tags=["dose"])
def drl(metric: Literal["kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_time_s", "dlp_total_mgy_cm"] = "kap_total_gy_cm2",
        p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> DrlOut:
    """Diagnostic reference levels by procedure type and the caller's rooms compared with them."""
    return dose_view.drl(ctx, p, metric)


@router.get("/dose/drl.png", response_class=Response, responses=PNG, tags=["dose"])
def drl_chart(metric: Literal["kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_time_s", "dlp_total_mgy_cm"] = "kap_total_gy_cm2",
              p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    """Box plot of a dose metric per procedure type against its DRL (no patient data)."""
    return Response(dose_view.drl_png(ctx, p, metric), media_type="image/png")


# ---- quality ------------------------------------------------------------------------------------
@router.get("/quality/indicators", response_model=list[IndicatorRow], tags=["quality"])
def indicator_table(level: Literal["hospital", "operator", "region"] = "hospital", p: Principal = Depends(api_user),
                    ctx: Ctx = Depends(ctx_of)) -> list[IndicatorRow]:
    """Quality indicators by hospital, operator (own hospital only) or region, with exact CIs."""
    return quality_view.indicators(ctx, p, level)


@router.get("/quality/ratings", response_model=list[RatingOut], tags=["quality"])
def rating_table(p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[RatingOut]:
    """Hospital ratings (A/B/C) with the reasons behind each grade."""
    return quality_view.ratings(ctx, p)


@router.get("/quality/curves", response_model=list[CurveOut], tags=["quality"])
def learning(p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[CurveOut]:
    """Operators' CUSUM learning curves (own hospital's operators for hospital users)."""
    return quality_view.curves(ctx, p)


@router.get("/quality/funnel/{code}.svg", response_class=Response, responses=SVG, tags=["quality"])
def funnel_svg(code: str, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    """Funnel plot of one indicator as SVG for the dashboard, the caller's hospital circled."""
    return Response(quality_view.funnel_svg(ctx, p, code), media_type="image/svg+xml")


@router.get("/quality/funnel/{code}.png", response_class=Response, responses=PNG, tags=["quality"])
def funnel_png(code: str, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    """Funnel plot of one indicator as PNG, as in the printed QC report."""
    return Response(quality_view.funnel_png(ctx, p, code), media_type="image/png")


@router.get("/quality/cusum.svg", response_class=Response, responses=SVG, tags=["quality"])
def cusum_svg(p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> Response:
    """The first learning curves the caller may see, as one SVG chart."""
    return Response(quality_view.cusum_svg(ctx, p), media_type="image/svg+xml")


# ---- consultations ------------------------------------------------------------------------------
@router.get("/consultations", response_model=list[ConsultOut], tags=["consultations"])
def consultations(p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[ConsultOut]:
    """Consultations the caller's hospital asked for or was asked in, most recently active first."""
    return consult.list_for(ctx, p)


@router.post("/consultations", response_model=ConsultOut, status_code=201, tags=["consultations"])
def ask(body: ConsultIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> ConsultOut:
    """Ask another hospital to review one of the caller's cases (it is shown to them de-identified)."""
    return consult.create(ctx, p, body)


@router.get("/consultations/{cid}", response_model=ConsultOut, tags=["consultations"])
def consultation(cid: int, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> ConsultOut:
    """One consultation with its messages and the case (audited read)."""
    return consult.detail(ctx, p, cid)


@router.post("/consultations/{cid}/messages", response_model=ConsultOut, tags=["consultations"])
def message(cid: int, body: CommentIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> ConsultOut:
    """Comment on a consultation, or (the expert only) propose a plan; notifies the other side."""
    return consult.comment(ctx, p, cid, body.body, body.plan)


@router.post("/consultations/{cid}/transition", response_model=ConsultOut, tags=["consultations"])
def move(cid: int, body: TransitionIn, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> ConsultOut:
    """Move a consultation to another state, if the caller's side may make that step."""
    return consult.transition(ctx, p, cid, body.state)


@router.get("/notifications", response_model=list[NotificationOut], tags=["consultations"])
def notes(p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> list[NotificationOut]:
    """The latest notifications of the caller's hospital (consultation requests and replies)."""
    t = translator(p.lang)
    return [NotificationOut(id=n.id, text=note_text(t, n.text), link=n.link, read=n.read, at=n.at)
            for n in consult.notifications(ctx, p)]


@router.post("/notifications/{nid}/read", status_code=204, tags=["consultations"])
def read_note(nid: int, p: Principal = Depends(api_writer), ctx: Ctx = Depends(ctx_of)) -> None:
    """Mark one of the caller's hospital's notifications as read."""
    consult.mark_read(ctx, p, nid)
