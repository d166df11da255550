"""Who may see what: hospital roles see their own hospital's identifiable records; the centre
(and the administrator) see every hospital, de-identified; reads of patient records and every
change made through the web are written to the registry's audit log."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.orm import Session

from openir.registry import audit_event

from .security import Principal


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


def hospitals_of(p: Principal) -> tuple[str, ...] | None:
    """The hospitals whose records ``p`` may list (None: all); a hospital role without a hospital
    code gets none rather than all."""
    if p.sees_all:
        return None
    return (p.hospital_code,) if p.hospital_code else ()


def may_identify(p: Principal, hospital_code: str | None) -> bool:
    """Only the hospital that owns a record sees it with its identifiers."""
    return p.is_hospital and hospital_code == p.hospital_code


def audit(s: Session, p: Principal, action: str, table: str, key: Any, after: dict[str, Any] | None = None) -> None:
    """Record in the registry's audit log that ``p`` read or changed ``table``/``key``."""
    audit_event(s, actor=p.username, action=action, table=table, key=key, after=after)
