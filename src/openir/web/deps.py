"""Request dependencies: who is asking (session cookie or bearer token), CSRF on writes."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openir.registry import session_scope

from .context import Ctx
from .security import SESSION_COOKIE, Principal, csrf_ok, session_principal, token_principal

bearer = HTTPBearer(auto_error=False, description="API token (POST /api/tokens)")


class LoginRequired(Exception):
    """A page needs a logged-in user: answered with a redirect to /login."""


def ctx_of(request: Request) -> Ctx:
    """The application's shared context, for route dependencies."""
    return request.app.state.ctx


def who(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal | None:
    """The caller from a bearer token or the session cookie (None if neither is valid), resolved once per
    request."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    ctx = ctx_of(request)
    p = None
    with session_scope(ctx.engine) as s:
        s.info["audit"] = False
        if creds is not None and creds.scheme.lower() == "bearer":
            p = token_principal(s, creds.credentials)
        elif request.cookies.get(SESSION_COOKIE):
            p = session_principal(s, request.cookies[SESSION_COOKIE])
    request.state.principal = p
    return p


def api_user(p: Principal | None = Depends(who)) -> Principal:
    """API routes need a caller: 401 with a Bearer challenge otherwise."""
    if p is None:
        raise HTTPException(401, "log in or send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    return p


def api_writer(request: Request, p: Principal = Depends(api_user)) -> Principal:
    """A user allowed to change something: session requests must carry the CSRF token header."""
    if not csrf_ok(p, request.headers.get("x-csrf-token")):
        raise HTTPException(403, "missing or wrong CSRF token (header X-CSRF-Token)")
    return p


def page_user(p: Principal | None = Depends(who)) -> Principal:
    """Pages need a caller: otherwise redirect to the login page."""
    if p is None:
        raise LoginRequired()
    return p


async def page_writer(request: Request, p: Principal = Depends(page_user)) -> Principal:
    """Form posts must carry the session's CSRF token (form field or header)."""
    form = await request.form()
    if not csrf_ok(p, str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")):
        raise HTTPException(403, "missing or wrong CSRF token")
    return p


def admin(p: Principal = Depends(api_writer)) -> Principal:
    """Administrator-only routes (user management); implies a CSRF-checked writer."""
    if p.role != "admin":
        raise HTTPException(403, "administrators only")
    return p
