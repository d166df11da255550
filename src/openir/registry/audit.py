"""Audit trail: every insert, update and delete of a registry row, with who, when, before, after.

Hooked on the session's ``after_flush`` event, so it covers every change made through the ORM in
the same transaction as the change itself (a rolled-back change leaves no audit row either).
Bulk imports that bypass the ORM write one ``bulk_import`` row describing the batch.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from .models import AUDITED, AuditLog, _now

_INSTALLED = False


def _json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _key(obj: Any) -> str:
    ident = inspect(obj).mapper.primary_key_from_instance(obj)
    return ",".join(str(v) for v in ident if v is not None)


def _state(obj: Any, *, before: bool) -> dict[str, Any]:
    """Column values of ``obj``; with ``before`` the values as loaded, before this flush."""
    ins = inspect(obj)
    out = {}
    for attr in ins.mapper.column_attrs:
        value = getattr(obj, attr.key)
        if before:
            hist = ins.attrs[attr.key].history
            if hist.has_changes() and hist.deleted:
                value = hist.deleted[0]
        out[attr.key] = _json(value)
    return out


def _after_flush(session: Session, _ctx: Any) -> None:
    if not session.info.get("audit", True):
        return
    actor = str(session.info.get("actor", "system"))
    now = _now()
    rows = []
    for obj in session.new:
        if isinstance(obj, AUDITED):
            rows.append(dict(at=now, actor=actor, action="insert", table_name=obj.__tablename__,
                             row_key=_key(obj), before=None, after=_state(obj, before=False)))
    for obj in session.dirty:
        if isinstance(obj, AUDITED) and session.is_modified(obj, include_collections=False):
            before, after = _state(obj, before=True), _state(obj, before=False)
            if before != after:
                changed = [k for k in after if before[k] != after[k]]
                rows.append(dict(at=now, actor=actor, action="update", table_name=obj.__tablename__,
                                 row_key=_key(obj), before={k: before[k] for k in changed},
                                 after={k: after[k] for k in changed}))
    for obj in session.deleted:
        if isinstance(obj, AUDITED):
            rows.append(dict(at=now, actor=actor, action="delete", table_name=obj.__tablename__,
                             row_key=_key(obj), before=_state(obj, before=True), after=None))
    if rows:
        session.connection().execute(insert(AuditLog), rows)


def install_audit() -> None:
    """Attach the audit hook to every ORM session (idempotent)."""
    global _INSTALLED
    if not _INSTALLED:
        event.listen(Session, "after_flush", _after_flush)
        _INSTALLED = True


def audit_bulk(conn: Any, *, actor: str, table_name: str, summary: dict[str, Any]) -> None:
    """One audit row for a batch written with Core inserts (imports, synthetic seeding)."""
    conn.execute(insert(AuditLog), [dict(at=_now(), actor=actor, action="bulk_import", table_name=table_name,
                                         row_key=None, before=None, after=summary)])


def audit_event(session: Session, *, actor: str, action: str, table: str, key: Any = None,
                after: dict[str, Any] | None = None) -> None:
    """Append one audit row for what the flush hook cannot see: a read of patient data, or a
    change to a table outside the registry (web accounts, consultations)."""
    session.execute(insert(AuditLog), [dict(at=_now(), actor=actor, action=action, table_name=table,
                                            row_key=None if key is None else str(key), before=None, after=after)])
