"""Accounts for administrators at the command line: add, list, disable/enable, the first administrator.

The same rules as the API's ``POST /api/users`` (the ``UserIn`` schema: name pattern, 10-character
passwords, hospital roles name their hospital); every change is written to the registry's audit log.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import Engine, select

from openir.core.errors import InputError
from openir.registry import audit_event, list_hospitals, session_scope

from .models import User
from .schemas import UserIn
from .security import hash_password

HOSPITAL_ROLES = ("operator", "quality_officer")


def add_account(engine: Engine, spec: dict, *, actor: str = "cli") -> UserIn:
    """Create an account from ``spec`` (the fields of ``UserIn``); clear errors for every bad field."""
    try:
        body = UserIn.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], field=".".join(str(x) for x in err["loc"])) from None
    if (body.role in HOSPITAL_ROLES) != (body.hospital_code is not None):
        raise InputError("hospital roles (operator, quality_officer) need --hospital; centre and admin have none",
                         field="hospital_code")
    with session_scope(engine, actor) as s:
        if body.hospital_code is not None and body.hospital_code not in {h.code for h in list_hospitals(s)}:
            raise InputError(f"no hospital {body.hospital_code!r} in the registry", field="hospital_code")
        if s.scalar(select(User.id).where(User.username == body.username)) is not None:
            raise InputError(f"user {body.username!r} exists", field="username")
        s.add(User(username=body.username, password_hash=hash_password(body.password), role=body.role,
                   hospital_code=body.hospital_code, operator_code=body.operator_code, lang=body.lang))
        audit_event(s, actor=actor, action="insert", table="web_users", key=body.username,
                    after={"role": body.role, "hospital": body.hospital_code})
    return body


def add_first_admin(engine: Engine, username: str, password: str) -> UserIn:
    """The first administrator of an installation; refused once any administrator exists."""
    with session_scope(engine) as s:
        if s.scalar(select(User.id).where(User.role == "admin", User.active.is_(True))) is not None:
            raise InputError("an administrator exists already: use `openir users add --role admin` as them")
    return add_account(engine, {"username": username, "password": password, "role": "admin"})


def list_accounts(engine: Engine) -> list[dict]:
    """Every account without its password hash."""
    with session_scope(engine) as s:
        return [{"username": u.username, "role": u.role, "hospital": u.hospital_code or "",
                 "operator": u.operator_code or "", "lang": u.lang, "active": u.active,
                 "created": u.created_at.isoformat(timespec="seconds")}
                for u in s.scalars(select(User).order_by(User.username))]


def set_active(engine: Engine, username: str, active: bool, *, actor: str = "cli") -> None:
    """Disable (or enable again) an account; its open sessions and tokens stop working at once."""
    with session_scope(engine, actor) as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            known = s.scalars(select(User.username)).all()
            import difflib

            near = difflib.get_close_matches(username, known, n=1)
            raise InputError(f"no user {username!r}" + (f" (did you mean {near[0]!r}?)" if near else ""),
                             field="username")
        user.active = active
        audit_event(s, actor=actor, action="update", table="web_users", key=username, after={"active": active})


def list_tokens(engine: Engine, user_id: int) -> list[dict]:
    """A user's API tokens (name, created, revoked), never the token itself (only its hash is stored)."""
    from .models import ApiToken

    with session_scope(engine) as s:
        return [{"id": t.id, "name": t.name, "created": t.created_at.isoformat(timespec="seconds"), "revoked": t.revoked}
                for t in s.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id))]


def revoke_token(engine: Engine, user_id: int, token_id: int, *, actor: str) -> bool:
    """Revoke one of the user's own tokens; False when it is not theirs (no probing of others')."""
    from .models import ApiToken

    with session_scope(engine, actor) as s:
        t = s.get(ApiToken, token_id)
        if t is None or t.user_id != user_id:
            return False
        t.revoked = True
        audit_event(s, actor=actor, action="update", table="web_api_tokens", key=token_id, after={"revoked": True})
        return True
