"""Passwords (Argon2id), server-side sessions with a CSRF token, API tokens, login rate limit.

Sessions live in ``web_sessions``: the cookie holds a random secret, the table only its SHA-256,
so a leaked database does not hand out live sessions. Machines use ``Authorization: Bearer``
tokens (also stored hashed); token requests carry no cookie, so they need no CSRF token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from .models import ApiToken, LoginFailure, User, WebSession, now

SESSION_COOKIE = "openir_session"
SESSION_HOURS = 12
# argon2id with the OWASP Password Storage Cheat Sheet's first recommended setting (m = 19 MiB,
# t = 2, p = 1): ~4x cheaper than the library default (RFC 9106 low-memory profile, 64 MiB, t = 3), so
# 50 users logging in together on 2 cores wait well under a second; hashes made with other settings
# still verify and are re-hashed at the next successful login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """Argon2id hash of a password, for storage."""
    return _hasher.hash(password)


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other settings than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False


def spend_password_time(password: str) -> None:
    """Verify against a throw-away hash, so an unknown user name costs what a known one does."""
    verify_password(_DUMMY_HASH, password)


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


@dataclass(frozen=True)
class ThrottlePolicy:
    """Failed-login limits. Per account: after ``account_limit`` failures in ``window_s`` the account
    waits ``backoff_s`` x 2^(failures beyond the limit), at most ``max_backoff_s`` (OWASP
    Authentication Cheat Sheet: lock the account, not the address, with increasing delays).
    Per address: a much higher limit, because one hospital is often one NAT address
    (NIST SP 800-63B 5.2.2 caps failed attempts at 100). Security settings, not clinical numbers."""

    account_limit: int = 5
    address_limit: int = 100
    window_s: float = 900.0
    backoff_s: float = 60.0
    max_backoff_s: float = 3600.0


class LoginThrottle:
    """Failed logins counted in the database, so every web worker and every restart sees them."""

    def __init__(self, engine: Engine, policy: ThrottlePolicy | None = None):
        self.engine, self.policy = engine, policy or ThrottlePolicy()

    def _times(self, s: Session, key: str, since: dt.datetime) -> list[dt.datetime]:
        return list(s.scalars(select(LoginFailure.at).where(LoginFailure.key == key, LoginFailure.at >= since)
                              .order_by(LoginFailure.at)))

    def retry_after(self, user_key: str, address_key: str | None = None) -> float:
        """Seconds until ``user_key`` (and ``address_key``) may try again; 0 when allowed now."""
        pol, t = self.policy, now()
        since = t - dt.timedelta(seconds=pol.window_s + pol.max_backoff_s)
        with Session(self.engine) as s:
            times = self._times(s, user_key, since)
            wait = 0.0
            recent = [x for x in times if x >= t - dt.timedelta(seconds=pol.window_s)]
            if len(recent) >= pol.account_limit:
                backoff = min(pol.max_backoff_s, pol.backoff_s * 2 ** (len(recent) - pol.account_limit))
                wait = max(0.0, (times[-1] - t).total_seconds() + backoff)
            if address_key:
                addr = self._times(s, address_key, t - dt.timedelta(seconds=pol.window_s))
                if len(addr) >= pol.address_limit:
                    wait = max(wait, (addr[0] - t).total_seconds() + pol.window_s)
        return wait

    def fail(self, *keys: str) -> None:
        """Count one failed attempt against each key (and forget failures older than any rule needs)."""
        pol = self.policy
        with Session(self.engine) as s, s.begin():
            s.add_all(LoginFailure(key=k) for k in keys)
            old = now() - dt.timedelta(seconds=pol.window_s + pol.max_backoff_s)
            s.execute(delete(LoginFailure).where(LoginFailure.at < old))

    def reset(self, *keys: str) -> None:
        """Forget the failures of ``keys`` (after a successful login)."""
        with Session(self.engine) as s, s.begin():
            s.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))
