"""Remote consultation: hospital A asks hospital B to review a de-identified case and its plan.

States: requested -> accepted | declined; accepted -> answered (the expert commented or proposed
a plan); answered -> accepted (follow-up question) | closed; the requester may close at any time
before. Every step notifies the other hospital and is audited."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException

from openir.registry import get_hospital, session_scope

from .access import audit
from .cases import case_view
from .context import Ctx
from .messages import note_payload
from .models import TRANSITIONS, Consultation, ConsultMessage, Notification, User, now
from .schemas import ConsultIn, ConsultOut
from .security import Principal


def _side(p: Principal, c: Consultation) -> str | None:
    if p.is_hospital and p.hospital_code == c.from_hospital:
        return "requester"
    if p.is_hospital and p.hospital_code == c.to_hospital:
        return "expert"
    return None


def _load(s: Any, p: Principal, cid: int) -> tuple[Consultation, str]:
    c = s.get(Consultation, cid)
    side = _side(p, c) if c is not None else None
    if c is None or side is None:
        raise HTTPException(404, "not found")
    return c, side


def _out(c: Consultation, side: str | None, **kw: Any) -> ConsultOut:
    allowed = [st for st, who in TRANSITIONS.get(c.state, {}).items() if who == side]
    return ConsultOut(id=c.id, procedure_id=c.procedure_id, from_hospital=c.from_hospital, to_hospital=c.to_hospital,
                      question=c.question, state=c.state, created_at=c.created_at, updated_at=c.updated_at,
                      allowed=allowed, **kw)


def _notify(s: Any, hospital: str, key: str, cid: int, **args: Any) -> None:
    """A notification as a catalogue key with arguments, shown in each reader's language."""
    s.add(Notification(hospital_code=hospital, text=note_payload(key, cid=cid, **args), link=f"/consultations/{cid}"))


def create(ctx: Ctx, p: Principal, body: ConsultIn) -> ConsultOut:
    """Open a consultation on one of the caller's own cases with another known hospital; notifies it."""
    from .procedures import procedure_row

    if not p.is_hospital:
        raise HTTPException(403, "only a hospital may ask for a consultation")
    with session_scope(ctx.engine, p.username) as s:
        proc = procedure_row(s, p, body.procedure_id)  # 404 unless the case is the caller's own
        if get_hospital(s, body.to_hospital) is None or body.to_hospital == p.hospital_code:
            raise HTTPException(422, [{"loc": ["body", "to_hospital"], "msg": "choose another known hospital", "type": "value_error"}])
        c = Consultation(procedure_id=proc.id, from_hospital=p.hospital_code or "", to_hospital=body.to_hospital,
                         question=body.question, created_by=p.user_id)
        s.add(c)
        s.flush()
        _notify(s, body.to_hospital, "notify_requested", c.id, by=p.hospital_code)
        audit(s, p, "insert", "web_consultations", c.id, {"to": body.to_hospital})
        return _out(c, "requester")


def list_for(ctx: Ctx, p: Principal) -> list[ConsultOut]:
    """Consultations where the caller's hospital is requester or expert (none for centre users)."""
    if not p.is_hospital:
        return []
    with session_scope(ctx.engine, p.username) as s:
        rows = s.scalars(sa.select(Consultation).where(sa.or_(Consultation.from_hospital == p.hospital_code,
                                                             Consultation.to_hospital == p.hospital_code))
                         .order_by(Consultation.updated_at.desc())).all()
        return [_out(c, _side(p, c)) for c in rows]


def detail(ctx: Ctx, p: Principal, cid: int) -> ConsultOut:
    """The request, its messages and the case: identifiable for the requester, de-identified for the expert."""
    with session_scope(ctx.engine, p.username) as s:
        c, side = _load(s, p, cid)
        msgs = [{"id": m.id, "author": u, "kind": m.kind, "body": m.body, "plan": m.plan, "at": m.at}
                for m, u in s.execute(sa.select(ConsultMessage, User.username).join(User, User.id == ConsultMessage.author_id)
                                      .where(ConsultMessage.consultation_id == cid).order_by(ConsultMessage.id)).all()]
        audit(s, p, "read", "web_consultations", cid)
    case = case_view(ctx, _as_reader(p, c, side), c.procedure_id).model_dump(mode="json")
    return _out(c, side, case=case, messages=msgs)


def _as_reader(p: Principal, c: Consultation, side: str) -> Principal:
    """The expert reads the case as the centre does: all hospitals, de-identified."""
    if side == "requester":
        return p
    from dataclasses import replace

    return replace(p, role="centre", hospital_code=None)


def comment(ctx: Ctx, p: Principal, cid: int, body: str, plan: dict[str, Any] | None) -> ConsultOut:
    """Add a comment or plan proposal while the consultation is open; an expert's first answer moves it to
    answered."""
    with session_scope(ctx.engine, p.username) as s:
        c, side = _load(s, p, cid)
        if c.state in ("declined", "closed") or (side == "expert" and c.state == "requested"):
            raise HTTPException(409, f"cannot comment while the consultation is {c.state}")
        if plan is not None and side != "expert":
            raise HTTPException(403, "only the consulted expert proposes a plan")
        s.add(ConsultMessage(consultation_id=cid, author_id=p.user_id, kind="plan" if plan else "comment", body=body, plan=plan))
        if side == "expert" and c.state == "accepted":
            c.state = "answered"
        c.updated_at = now()
        other = c.to_hospital if side == "requester" else c.from_hospital
        _notify(s, other, "notify_message", cid, what="@plan_proposal" if plan else "@comment", by=p.hospital_code)
        audit(s, p, "insert", "web_consult_messages", cid, {"kind": "plan" if plan else "comment"})
        return _out(c, side)


def transition(ctx: Ctx, p: Principal, cid: int, state: str) -> ConsultOut:
    """Apply a state change that ``TRANSITIONS`` allows the caller's side; logged as a message and audited."""
    with session_scope(ctx.engine, p.username) as s:
        c, side = _load(s, p, cid)
        who = TRANSITIONS.get(c.state, {}).get(state)
        if who != side:
            raise HTTPException(409, f"{side} cannot move a {c.state} consultation to {state}")
        before, c.state, c.updated_at = c.state, state, now()
        s.add(ConsultMessage(consultation_id=cid, author_id=p.user_id, kind="state", body=f"{before} -> {state}"))
        _notify(s, c.to_hospital if side == "requester" else c.from_hospital, "notify_state", cid, state=f"@{state}")
        audit(s, p, "update", "web_consultations", cid, {"state": state, "was": before})
        return _out(c, side)


def notifications(ctx: Ctx, p: Principal) -> list[Notification]:
    """The 50 newest notifications of the caller's hospital."""
    if not p.is_hospital:
        return []
    with session_scope(ctx.engine, p.username) as s:
        return list(s.scalars(sa.select(Notification).where(Notification.hospital_code == p.hospital_code)
                              .order_by(Notification.id.desc()).limit(50)))


def mark_read(ctx: Ctx, p: Principal, nid: int) -> None:
    """Mark a notification read; another hospital's is a 404."""
    with session_scope(ctx.engine, p.username) as s:
        n = s.get(Notification, nid)
        if n is None or not p.is_hospital or n.hospital_code != p.hospital_code:
            raise HTTPException(404, "not found")
        n.read = True
