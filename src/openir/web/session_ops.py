"""Log in and out (shared by the page form and the JSON API), throttled per account (with backoff) and,
far more loosely, per address; an unknown user name takes as long to refuse as a wrong password."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select

from openir.registry import session_scope

from .access import audit
from .context import Ctx
from .models import User
from .security import (
    Principal,
    close_session,
    hash_password,
    needs_rehash,
    open_session,
    session_principal,
    spend_password_time,
    verify_password,
)


def login_user(ctx: Ctx, username: str, password: str, address: str) -> tuple[Principal, str]:
    """Check the password (throttled in the database, so across workers), open a session, audit it."""
    keys = (f"user:{username.lower()}", f"ip:{address}")
    wait = ctx.limiter.retry_after(*keys)
    if wait > 0:
        raise HTTPException(429, f"too many failed logins for this account; try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    with session_scope(ctx.engine, username) as s:
        user = s.scalar(select(User).where(User.username == username))
        ok = verify_password(user.password_hash, password) if user is not None else spend_password_time(password)
        if user is None or not user.active or not ok:
            ctx.limiter.fail(*keys)
            raise HTTPException(401, "wrong user name or password")
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
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
