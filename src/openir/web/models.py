"""The web application's own tables (users, sessions, API tokens, dose acknowledgements,
consultations, notifications, shared login state), in their own metadata and their own Alembic
history (``web/migrations``, version table ``alembic_version_web``) beside the registry's;
``create_web_tables`` brings a database to the newest web revision. A change here needs a new
revision: tests compare the migrated schema with these models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Engine, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# allowed transitions: state -> {new state: which side may move it}
TRANSITIONS: dict[str, dict[str, str]] = {
    "requested": {"accepted": "expert", "declined": "expert", "closed": "requester"},
    "accepted": {"answered": "expert", "closed": "requester"},
    "answered": {"accepted": "requester", "closed": "requester"},
    "declined": {},
    "closed": {},
}


def now() -> dt.datetime:
    """Naive UTC now, as the web tables store times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class WebBase(DeclarativeBase):
    """Metadata of the web's own tables, kept apart from the registry's migrated schema."""

    type_annotation_map = {dict[str, Any]: JSON}


class User(WebBase):
    """A web account: role, hospital (hospital roles only), operator, language; password Argon2-hashed."""

    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(24))  # operator | quality_officer (hospital roles) | centre | admin
    hospital_code: Mapped[str | None] = mapped_column(String(32))  # hospital roles only
    operator_code: Mapped[str | None] = mapped_column(String(32))  # the operator an operator-user is
    lang: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class WebSession(WebBase):
    """A browser session: only the SHA-256 of the cookie secret is stored, with its CSRF token."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ApiToken(WebBase):
    """A machine's bearer token for a user, stored hashed, revocable."""

    __tablename__ = "web_api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DoseAck(WebBase):
    """Who acknowledged which dose alert, when, with what note."""

    __tablename__ = "web_dose_acks"
    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # dose_alerts.id
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Consultation(WebBase):
    """A request from one hospital to another to review a case."""

    __tablename__ = "web_consultations"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(Integer, index=True)
    from_hospital: Mapped[str] = mapped_column(String(32), index=True)
    to_hospital: Mapped[str] = mapped_column(String(32), index=True)
    question: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="requested")
    created_by: Mapped[int] = mapped_column(ForeignKey("web_users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class ConsultMessage(WebBase):
    """A comment, plan proposal or state change within a consultation."""

    __tablename__ = "web_consult_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("web_consultations.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # comment | plan | state
    body: Mapped[str] = mapped_column(Text)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Notification(WebBase):
    """A message to a hospital about a consultation, read or not."""

    __tablename__ = "web_notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(200))
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    __table_args__ = (Index("ix_web_notifications_hospital", "hospital_code", "read"),)


class LoginFailure(WebBase):
    """One failed login, per key ('user:NAME' or 'ip:ADDRESS'): shared by every web worker."""

    __tablename__ = "web_login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True, default=now)


class RecordLock(WebBase):
    """A procedure record signed off by its hospital's quality officer: no more edits."""

    __tablename__ = "web_record_locks"
    procedure_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locked_by: Mapped[int] = mapped_column(ForeignKey("web_users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class SharedState(WebBase):
    """Counters every worker reads: 'data' is bumped on each write, so dashboard caches of all
    workers see new data without waiting for their time-to-live."""

    __tablename__ = "web_state"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


def create_web_tables(engine: Engine) -> None:
    """Create or upgrade the web's own tables to the newest revision (idempotent, safe when several
    workers start together). A database made by ``create_all`` before migrations existed (web tables,
    no web version table) is stamped at the first revision, then upgraded, keeping its data."""
    from openir.registry import upgrade_component

    upgrade_component(engine, Path(__file__).parent / "migrations", "alembic_version_web",
                      baseline=("web_0001", "web_users"))
