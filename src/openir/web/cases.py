"""The case view: a procedure with its plan, verification, thermometry, dose, adverse events and
follow-up (stage results are optional JSON in the procedure's links), and its images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException

from openir.registry import find_case, session_scope

from .access import audit, deidentify, hospitals_of, may_identify, pseudonym
from .context import Ctx
from .imaging import load_case_volume
from .procedures import get_procedure
from .schemas import CaseOut
from .security import Principal


def _dose_rows(ctx: Ctx, patient_key: str | None, identify: bool) -> list[dict[str, Any]]:
    if not patient_key:
        return []
    out = [e.model_dump(exclude={"facility"}) for e in ctx.dose.report_entries(patient_id=patient_key)]
    if not identify:
        for r in out:
            r["sop_instance_uid"] = pseudonym(ctx.secret, r["sop_instance_uid"], "sr")
    return out


def _image_paths(ctx: Ctx, links: dict[str, Any]) -> tuple[str, str | None] | None:
    """Image (and labels) files named by the record, only inside the application's home."""
    img = links.get("image")
    if not img:
        return None
    root = ctx.storage.resolve()
    paths = []
    for name in (img, links.get("labels")):
        if name is None:
            paths.append(None)
            continue
        p = (root / name).resolve() if not Path(name).is_absolute() else Path(name).resolve()
        if not p.is_relative_to(root) or not p.is_file():
            return None
        paths.append(str(p))
    return paths[0], paths[1]


def case_view(ctx: Ctx, p: Principal, pid: int) -> CaseOut:
    """Everything recorded about one case, identifiable only for its own hospital; the read is
    audited (through ``get_procedure``) and a missing or foreign case is a 404."""
    head = get_procedure(ctx, p, pid)  # audits the read and applies the access rule
    with session_scope(ctx.engine, p.username) as s:
        rec = find_case(s, pid, hospitals=hospitals_of(p))
    if rec is None:
        raise HTTPException(404, "not found")
    links = rec.links
    identify = may_identify(p, head.hospital_code)
    files = _image_paths(ctx, links)
    volume = None
    if files is not None:
        img, lab, sp = load_case_volume(*files)
        volume = {"shape": list(img.shape), "spacing_mm": list(sp), "labels": bool(lab is not None),
                  "window": {"centre": 40.0, "width": 400.0}}
    plan = links.get("plan")
    if isinstance(plan, dict) and not identify:
        plan = deidentify(plan, ctx.secret) if "patient_key" in plan else plan
    return CaseOut(procedure=head, outcome=rec.outcome, adverse_events=rec.adverse_events,
                   plan=plan if isinstance(plan, dict) else None,
                   verification=links.get("verification") if isinstance(links.get("verification"), dict) else None,
                   thermometry=[r for r in links.get("thermometry") or [] if isinstance(r, dict)],
                   dose=_dose_rows(ctx, rec.procedure.patient_key, identify),
                   follow_up=links.get("follow_up") if isinstance(links.get("follow_up"), dict) else None,
                   has_images=files is not None, volume=volume)


def read_images(ctx: Ctx, p: Principal, pid: int) -> tuple[str, str | None]:
    """The image (and labels) files of a case ``p`` may see, 404 otherwise; like every other read
    of patient data, the read is written to the audit log (table ``case_images``)."""
    with session_scope(ctx.engine, p.username) as s:
        rec = find_case(s, pid, hospitals=hospitals_of(p))
        if rec is None:
            raise HTTPException(404, "not found")
        files = _image_paths(ctx, rec.links)
        if files is None:
            raise HTTPException(404, "this case has no images")
        audit(s, p, "read", "case_images", pid)
    return files
