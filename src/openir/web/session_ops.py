"""Log in and out (shared by the page form and the JSON API), rate-limited per user and address."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select

from openir.registry import session_scope

from .access import audit
from .context import Ctx
from .models import User
from .security import Principal, close_session, open_session, session_principal, verify_password


def login_user(ctx: Ctx, username: str, password: str, address: str) -> tuple[Principal, str]:
    """Check the password (rate-limited per user and address), open a session and audit the login."""
    keys = (f"user:{username.lower()}", f"ip:{address}")
    if ctx.limiter.blocked(*keys):
        raise HTTPException(429, "too many failed logins; wait a few minutes")
    with session_scope(ctx.engine, username) as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.active or not verify_password(user.password_hash, password):
            ctx.limiter.fail(*keys)
            raise HTTPException(401, "wrong user name or password")
        secret, _ = open_session(s, user)
        s.flush()
        p = session_principal(s, secret)
        audit(s, p, "login", "web_sessions", user.id)
    ctx.limiter.reset(keys[0])
    return p, secret  # type: ignore[return-value]


def logout_user(ctx: Ctx, secret: str | None) -> None:
    """Close the session of a cookie secret, if any."""
    if secret:
        with session_scope(ctx.engine) as s:
            close_session(s, secret)
