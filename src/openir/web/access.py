"""Who may see what: hospital roles see their own hospital's identifiable records; the centre
(and the administrator) see every hospital, de-identified; reads of patient records and every
change made through the web are written to the registry's audit log."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import HTTPException
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from openir.registry.models import AuditLog, Hospital, Procedure, _now

from .security import Principal

IDENTIFYING = ("patient_key", "uid", "birth_year", "plan_uid", "verify_uid", "dose_uid")


def pseudonym(secret: bytes, value: str | None, prefix: str = "anon") -> str | None:
    """A stable keyed hash: the same patient links across hospitals, but cannot be reversed."""
    if value is None:
        return None
    return f"{prefix}-" + hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:12]


def deidentify(record: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """A copy without identifying fields (keys replaced by keyed pseudonyms, birth year dropped)."""
    out = dict(record)
    out["patient_key"] = pseudonym(secret, record.get("patient_key"))
    out["uid"] = pseudonym(secret, record.get("uid"), "case")
    for k in ("birth_year", "plan_uid", "verify_uid", "dose_uid"):
        out[k] = None
    out["deidentified"] = True
    return out


def hospital_id(s: Session, code: str | None) -> int | None:
    if code is None:
        return None
    return s.scalar(select(Hospital.id).where(Hospital.code == code))


def scope_procedures(stmt: Any, s: Session, p: Principal) -> Any:
    """Restrict a select over ``Procedure`` to what ``p`` may list."""
    if p.sees_all:
        return stmt
    return stmt.where(Procedure.hospital_id == (hospital_id(s, p.hospital_code) or -1))


def require_own(p: Principal, hospital_code: str | None) -> None:
    """Changes are made only by the hospital that owns the record (404: do not reveal existence)."""
    if not p.is_hospital or hospital_code != p.hospital_code:
        raise HTTPException(404, "not found")


def may_identify(p: Principal, hospital_code: str | None) -> bool:
    return p.is_hospital and hospital_code == p.hospital_code


def audit(s: Session, p: Principal, action: str, table: str, key: Any, after: dict[str, Any] | None = None) -> None:
    s.execute(insert(AuditLog), [dict(at=_now(), actor=p.username, action=action, table_name=table,
                                      row_key=None if key is None else str(key), before=None, after=after)])
