"""Pre-procedure SOP check in the web entry form: the patient's values against the technique's SOP.

The form asks ``POST /api/sop/check`` while the values are typed and shows every deviation with its
source; on save, the server checks the values again itself (a client's deviation list is never
trusted) and the registry stores the check, refusing block-level deviations without a reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from openir.core import InputError
from openir.sop import SOPCheck, check_patient

from .context import Ctx
from .deps import api_user, ctx_of
from .security import Principal

router = APIRouter(prefix="/api")


class SOPCheckIn(BaseModel):
    """A technique and the patient's values as typed (units and NaN checked by openir.sop)."""

    model_config = ConfigDict(extra="forbid")
    technique: str = Field(max_length=48)
    values: dict[str, Any] = Field(default_factory=dict)


class SOPLine(BaseModel):
    severity: str
    item: str
    value: str | float | None
    threshold: str
    message: str
    source: str


class SOPCheckOut(BaseModel):
    """The check, and its deviations worded in the caller's language."""

    check: SOPCheck
    blocked: bool
    lines: list[SOPLine]


def _unprocessable(exc: InputError) -> HTTPException:
    field = (exc.field or "").split(".")[0]  # the form field (antithrombotics, not antithrombotics.0.kind)
    loc = ["body", "technique"] if field == "technique" else ["body", "values", field]
    return HTTPException(422, [{"loc": loc, "msg": exc.problem, "type": "value_error"}])


def run_check(technique: str, values: dict[str, Any] | Any) -> SOPCheck:
    """``check_patient`` with bad values as a 422 naming the field."""
    try:
        return check_patient(technique, values)
    except InputError as exc:
        raise _unprocessable(exc) from exc


@router.post("/sop/check", response_model=SOPCheckOut, tags=["procedures"])
def sop_check(body: SOPCheckIn, p: Principal = Depends(api_user), ctx: Ctx = Depends(ctx_of)) -> SOPCheckOut:
    """Check a patient's pre-procedure values against the technique's SOP (nothing is stored)."""
    check = run_check(body.technique, body.values)
    lines = [SOPLine(severity=d.severity, item=d.item, value=d.value, threshold=d.threshold,
                     message=d.message(p.lang or "en"), source=d.source) for d in check.deviations]
    return SOPCheckOut(check=check, blocked=check.blocked, lines=lines)


def rechecked(body: Any) -> Any:
    """A ProcedureIn whose SOP check is recomputed on the server from the values it carries."""
    if getattr(body, "sop_check", None) is None:
        return body
    return body.model_copy(update={"sop_check": run_check(body.technique, body.sop_check.values)})
