"""Server-rendered pages (Jinja2); each shows what the matching ``/api`` route serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from openir.core import InputError
from openir.registry import (
    CaseFilter,
    list_hospitals,
    list_operators,
    load_catalogue,
    session_scope,
)

from . import cases, consult, dose_view, messages, quality_view
from .access import audit
from .context import Ctx
from .deps import ctx_of, page_user, page_writer, who
from .i18n import pick, translator
from .models import User
from .procedures import case_filter, list_procedures
from .schemas import ConsultIn
from .security import SESSION_COOKIE, Principal
from .session_ops import login_user, logout_user

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def render(request: Request, name: str, p: Principal | None, status: int = 200, **kw) -> HTMLResponse:
    """Render a template with the caller, the translator and the language chosen for this request."""
    lang = p.lang if p else pick(request.cookies.get("openir_lang"), request.headers.get("accept-language"))
    t = translator(lang)
    helpers = {"note": lambda text: messages.note_text(t, text), "reason": lambda r: messages.reason_text(t, r),
               "alert_text": lambda a: messages.alert_text(t, a.metric, a.scope, a.value, a.threshold, a.unit),
               "ind_title": lambda code: messages.indicator_title(t, code, code)}
    return templates.TemplateResponse(request, name, {"p": p, "t": t, "tech": technique_namer(lang), "lang": lang,
                                                      **helpers, **kw}, status_code=status)


def technique_namer(lang: str):
    """``tech(code)``: a technique's name from the catalogue in ``lang`` (the code when unknown)."""
    names = {c: (t.name_zh if lang == "zh-CN" and t.name_zh else t.name) for c, t in load_catalogue().techniques.items()}
    return lambda code: names.get(code, code)


@router.get("/", response_class=HTMLResponse)
def home(p: Principal = Depends(page_user)) -> RedirectResponse:
    """Start page by role: the centre goes to quality, hospitals to their procedures."""
    return RedirectResponse("/quality" if p.sees_all else "/procedures", 303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The login form."""
    return render(request, "login.html", None)


@router.post("/login", response_class=HTMLResponse)
def login_post(request: Request, username: str = Form(..., max_length=64), password: str = Form(..., max_length=256),
               ctx: Ctx = Depends(ctx_of)):
    """Log in from the form; failures re-render the form with the reason (401, or 429 when rate-limited)."""
    try:
        _, secret = login_user(ctx, username, password, request.client.host if request.client else "?")
    except HTTPException as exc:
        key = "too_many" if exc.status_code == 429 else "login_failed"
        return render(request, "login.html", None, status=exc.status_code, error=key)
    r = RedirectResponse("/", 303)
    r.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return r


@router.post("/logout")
def logout_post(request: Request, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Log out and return to the login page."""
    logout_user(ctx, request.cookies.get(SESSION_COOKIE))
    r = RedirectResponse("/login", 303)
    r.delete_cookie(SESSION_COOKIE)
    return r


@router.post("/lang")
async def set_lang(request: Request, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Switch the interface language and come back to the page the user was on."""
    lang = pick(str((await request.form()).get("lang")))
    with session_scope(ctx.engine, p.username) as s:
        s.get(User, p.user_id).lang = lang
    return RedirectResponse(request.headers.get("referer") or "/", 303)


@router.get("/procedures", response_class=HTMLResponse)
def procedures_page(request: Request, offset: int = 0, f: CaseFilter = Depends(case_filter),
                    p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """The procedure list (50 per page), filtered; the target of every dashboard drill-down."""
    total, items = list_procedures(ctx, p, limit=50, offset=max(0, offset), filters=f)
    query = {k: v for k, v in request.query_params.items() if k != "offset"}
    return render(request, "procedures.html", p, total=total, items=items, offset=max(0, offset), f=f,
                  query=query, techniques=load_catalogue().techniques)


@router.get("/procedures/new", response_class=HTMLResponse)
def entry_page(request: Request, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """The entry form: techniques grouped by category and the operators of the caller's hospital."""
    cat = load_catalogue()
    with session_scope(ctx.engine, p.username) as s:
        ops = [(o.code, o.credential) for o in list_operators(s, p.hospital_code or "")]
    groups: dict[str, list] = {}
    for t in cat.techniques.values():
        groups.setdefault(t.category, []).append(t)
    return render(request, "entry.html", p, groups=groups, operators=ops)


@router.get("/cases/{pid}", response_class=HTMLResponse)
def case_page(pid: int, request: Request, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """The case page with viewer, plan tables and the consultation form (hospitals to ask)."""
    view = cases.case_view(ctx, p, pid)
    with session_scope(ctx.engine, p.username) as s:
        others = [h.code for h in list_hospitals(s) if h.code != p.hospital_code]
    from .procedures import is_locked

    own = p.is_hospital and view.procedure.hospital_code == p.hospital_code
    return render(request, "case.html", p, v=view, pid=pid, others=others, plan_view=plan_summary(view.plan),
                  plan_json=json.dumps(view.plan, indent=1, default=str) if view.plan else None,
                  own=own, locked=is_locked(ctx, pid))


@router.post("/cases/{pid}/edit")
async def case_edit(pid: int, request: Request, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)):
    """Correct the record from the case page's form (blank fields are left as they are)."""
    from pydantic import ValidationError

    from openir.registry import ProcedureEdit

    from .procedures import edit_record

    form = await request.form()
    raw = {k: str(v).strip() for k in ProcedureEdit.model_fields if (v := form.get(k)) is not None and str(v).strip()}
    try:
        changes = ProcedureEdit.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise HTTPException(422, f"{err['loc'][0]}: {err['msg']}") from None
    edit_record(ctx, p, pid, changes)
    return RedirectResponse(f"/cases/{pid}", 303)


@router.post("/cases/{pid}/lock")
def case_lock(pid: int, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Sign the record off (quality officer of its hospital)."""
    from .procedures import lock_record

    lock_record(ctx, p, pid)
    return RedirectResponse(f"/cases/{pid}", 303)


def plan_summary(plan: dict | None) -> dict | None:
    """The plan as a reader wants it: per tumour coverage/margin and per probe device/setting/path.

    A stored plan that is an OpenIR ``Plan`` is summarised; anything else (an older or external
    plan record) gets no summary and the page shows its raw JSON only.
    """
    if not plan:
        return None
    from pydantic import ValidationError

    from openir.plan import Plan

    try:
        pl = Plan.model_validate(plan)
    except ValidationError:
        return None
    targets = [{"tumour": t.tumour, "modality": t.modality, "probes": t.n_probes,
                "tumour_cov": f"{t.tumour_coverage_pct:.1f}", "target_cov": f"{t.target_coverage_pct:.1f}",
                "margin": f"{t.min_margin_mm:.1f}", "healthy": f"{t.ablated_healthy_ml:.1f}",
                "full": t.full_coverage, "heat_sink": ", ".join(v.label for h in t.heat_sink for v in h.vessels)}
               for t in pl.targets]
    probes = [{"order": pr.order, "tumour": pr.tumour, "device": pr.device, "setting": pr.setting,
               "path": f"{pr.path_length_mm:.0f}", "group": pr.group, "track": pr.track,
               "sources": "; ".join(pr.sources)} for pr in pl.probes]
    return {"targets": targets, "probes": probes, "warnings": pl.warnings,
            "catalogue": pl.provenance.catalogue_version, "zone_model": pl.zone_model}


@router.get("/dose", response_class=HTMLResponse)
def dose_page(request: Request, patient: str | None = None, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """The dose dashboard: alerts, reference levels and, on request, a patient's cumulative dose."""
    alerts = dose_view.list_alerts(ctx, p)
    cum = None
    if patient:
        try:
            cum = dose_view.cumulative(ctx, p, patient)
        except HTTPException:
            cum = None
    return render(request, "dose.html", p, alerts=alerts, drl=dose_view.drl(ctx, p), cum=cum, patient=patient)


@router.post("/dose/alerts/{aid}/ack")
def ack_page(aid: int, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Acknowledge a dose alert from the dashboard."""
    dose_view.acknowledge(ctx, p, aid, None)
    return RedirectResponse("/dose", 303)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, indicator: str | None = None, p: Principal = Depends(page_user),
                 ctx: Ctx = Depends(ctx_of)):
    """The quality dashboard: one indicator's table and funnel, ratings and learning curves."""
    rows = quality_view.indicators(ctx, p, "hospital")
    codes = sorted({r.indicator for r in rows})
    chosen = indicator if indicator in codes else (codes[0] if codes else None)
    return render(request, "quality.html", p, rows=[r for r in rows if r.indicator == chosen], codes=codes,
                  chosen=chosen, ratings=quality_view.ratings(ctx, p), curves=quality_view.curves(ctx, p))


@router.get("/consultations", response_class=HTMLResponse)
def consults_page(request: Request, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """Consultations and notifications of the caller's hospital."""
    return render(request, "consults.html", p, items=consult.list_for(ctx, p), notes=consult.notifications(ctx, p))


@router.post("/consultations")
def consult_post(procedure_id: int = Form(..., ge=1), to_hospital: str = Form(..., max_length=32),
                 question: str = Form(..., min_length=1, max_length=4000), p: Principal = Depends(page_writer),
                 ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Ask for a consultation from the case page."""
    c = consult.create(ctx, p, ConsultIn(procedure_id=procedure_id, to_hospital=to_hospital, question=question))
    return RedirectResponse(f"/consultations/{c.id}", 303)


@router.get("/consultations/{cid}", response_class=HTMLResponse)
def consult_page(cid: int, request: Request, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """One consultation with its messages and the case."""
    return render(request, "consult.html", p, c=consult.detail(ctx, p, cid))


@router.post("/consultations/{cid}/messages")
def consult_msg(cid: int, body: str = Form(..., min_length=1, max_length=4000), plan: str = Form("", max_length=100_000),
                p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Post a comment or a plan proposal (JSON object) from the consultation page."""
    try:
        plan_obj = json.loads(plan) if plan.strip() else None
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"proposed plan is not JSON: {exc}") from exc
    if plan_obj is not None and not isinstance(plan_obj, dict):
        raise HTTPException(422, "proposed plan must be a JSON object")
    consult.comment(ctx, p, cid, body, plan_obj)
    return RedirectResponse(f"/consultations/{cid}", 303)


@router.post("/consultations/{cid}/transition")
def consult_move(cid: int, state: str = Form(..., max_length=16), p: Principal = Depends(page_writer),
                 ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Change a consultation's state from its page."""
    consult.transition(ctx, p, cid, state)
    return RedirectResponse(f"/consultations/{cid}", 303)


@router.get("/healthz")
def healthz(_: Principal | None = Depends(who)) -> dict:
    """Liveness probe for load balancers (no login needed)."""
    return {"ok": True}


# ---- accounts: own API tokens for everyone, user management for administrators -----------------
@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, token: str | None = None, p: Principal = Depends(page_user),
                 ctx: Ctx = Depends(ctx_of)):
    """The caller's API tokens (create, revoke); a new token is shown once."""
    from .accounts import list_tokens

    return render(request, "account.html", p, tokens=list_tokens(ctx.engine, p.user_id), new_token=None)


@router.post("/account/tokens", response_class=HTMLResponse)
async def account_new_token(request: Request, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)):
    """Create an API token from the form; the page shows it once."""
    from .accounts import list_tokens
    from .security import new_token

    name = str((await request.form()).get("name") or "").strip()[:100] or "token"
    with session_scope(ctx.engine, p.username) as s:
        token = new_token(s, s.get(User, p.user_id), name)
        audit(s, p, "insert", "web_api_tokens", p.user_id, {"name": name})
    return render(request, "account.html", p, tokens=list_tokens(ctx.engine, p.user_id), new_token=token)


@router.post("/account/tokens/{tid}/revoke")
def account_revoke(tid: int, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Revoke one of the caller's tokens (another user's is a 404)."""
    from .accounts import revoke_token

    if not revoke_token(ctx.engine, p.user_id, tid, actor=p.username):
        raise HTTPException(404, "not found")
    return RedirectResponse("/account", 303)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, p: Principal = Depends(page_user), ctx: Ctx = Depends(ctx_of)):
    """Accounts, for administrators: list, add, disable and enable."""
    from .accounts import list_accounts

    if p.role != "admin":
        raise HTTPException(403, "administrators only")
    with session_scope(ctx.engine, p.username) as s:
        hospitals = [h.code for h in list_hospitals(s)]
    return render(request, "users.html", p, users=list_accounts(ctx.engine), hospitals=hospitals, error=None)


@router.post("/admin/users", response_class=HTMLResponse)
async def users_add(request: Request, p: Principal = Depends(page_writer), ctx: Ctx = Depends(ctx_of)):
    """Add an account from the form; a refused one re-renders the page with the reason."""
    from .accounts import add_account, list_accounts

    if p.role != "admin":
        raise HTTPException(403, "administrators only")
    form = await request.form()
    spec = {k: str(v).strip() or None for k in ("username", "password", "role", "hospital_code", "operator_code", "lang")
            if (v := form.get(k)) is not None}
    error = None
    try:
        add_account(ctx.engine, {k: v for k, v in spec.items() if v is not None}, actor=p.username)
    except InputError as exc:
        error = str(exc)
    with session_scope(ctx.engine, p.username) as s:
        hospitals = [h.code for h in list_hospitals(s)]
    return render(request, "users.html", p, status=422 if error else 200, users=list_accounts(ctx.engine),
                  hospitals=hospitals, error=error)


@router.post("/admin/users/{username}/active")
async def users_active(username: str, request: Request, p: Principal = Depends(page_writer),
                       ctx: Ctx = Depends(ctx_of)) -> RedirectResponse:
    """Disable or enable an account (not one's own)."""
    from .accounts import set_active

    if p.role != "admin":
        raise HTTPException(403, "administrators only")
    if username == p.username:
        raise HTTPException(409, "you cannot disable your own account")
    set_active(ctx.engine, username, str((await request.form()).get("active")) == "1", actor=p.username)
    return RedirectResponse("/admin/users", 303)
