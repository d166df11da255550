"""Passwords (Argon2id), server-side sessions with a CSRF token, API tokens, login rate limit.

Sessions live in ``web_sessions``: the cookie holds a random secret, the table only its SHA-256,
so a leaked database does not hand out live sessions. Machines use ``Authorization: Bearer``
tokens (also stored hashed); token requests carry no cookie, so they need no CSRF token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiToken, User, WebSession, now

SESSION_COOKIE = "openir_session"
SESSION_HOURS = 12
_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)


def hash_password(password: str) -> str:
    """Argon2id hash of a password, for storage."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash (False for a malformed hash, never an error)."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user, their role and hospital, and how they authenticated."""

    user_id: int
    username: str
    role: str
    hospital_code: str | None
    operator_code: str | None
    lang: str
    via: str  # session | token
    csrf: str | None = None

    @property
    def is_hospital(self) -> bool:
        """A hospital role: sees and changes its own hospital's identifiable records."""
        return self.role in ("operator", "quality_officer")

    @property
    def sees_all(self) -> bool:
        """Centre or administrator: sees every hospital, de-identified."""
        return self.role in ("centre", "admin")


def _principal(user: User, via: str, csrf: str | None = None) -> Principal:
    return Principal(user.id, user.username, user.role, user.hospital_code, user.operator_code, user.lang, via, csrf)


def open_session(s: Session, user: User) -> tuple[str, str]:
    """A new session for ``user``: (cookie value, csrf token)."""
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    s.add(WebSession(id=_sha(secret), user_id=user.id, csrf=csrf,
                     expires_at=now() + dt.timedelta(hours=SESSION_HOURS)))
    return secret, csrf


def close_session(s: Session, secret: str) -> None:
    """Delete the session of a cookie secret (logout); unknown secrets are ignored."""
    row = s.get(WebSession, _sha(secret))
    if row is not None:
        s.delete(row)


def session_principal(s: Session, secret: str) -> Principal | None:
    """The caller of a live session cookie, or None (unknown, expired or inactive user)."""
    row = s.get(WebSession, _sha(secret))
    if row is None or row.expires_at < now():
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return _principal(user, "session", row.csrf)


def new_token(s: Session, user: User, name: str) -> str:
    """Issue an API token for ``user``; only its hash is stored, so it is returned once."""
    token = "oir_" + secrets.token_urlsafe(32)
    s.add(ApiToken(token_sha256=_sha(token), user_id=user.id, name=name))
    return token


def token_principal(s: Session, token: str) -> Principal | None:
    """The caller of a bearer token, or None (unknown, revoked or inactive user)."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == _sha(token), ApiToken.revoked.is_(False)))
    if row is None:
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return _principal(user, "token")


def csrf_ok(principal: Principal, supplied: str | None) -> bool:
    """Token requests need none; session requests must echo the session's token."""
    if principal.via == "token":
        return True
    return bool(supplied) and principal.csrf is not None and secrets.compare_digest(principal.csrf, supplied or "")


class RateLimiter:
    """At most ``limit`` failed logins per key in ``window_s`` seconds (in memory, per process)."""

    def __init__(self, limit: int = 5, window_s: float = 300.0):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, t: float) -> deque[float]:
        q = self._hits.setdefault(key, deque())
        while q and q[0] < t - self.window_s:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        """Whether any of ``keys`` has used up its failed attempts in the window."""
        t = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, t)) >= self.limit for k in keys)

    def fail(self, *keys: str) -> None:
        """Count one failed attempt against each key."""
        t = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, t).append(t)

    def reset(self, *keys: str) -> None:
        """Forget the failures of ``keys`` (after a successful login)."""
        with self._lock:
            for k in keys:
                self._hits.pop(k, None)
