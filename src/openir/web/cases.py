"""The case view: a procedure with its plan, verification, thermometry, dose, adverse events and
follow-up (stage results are optional JSON in the procedure's links), and its images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException

from openir.registry import find_case, session_scope

from .access import audit, deidentify, hospitals_of, may_identify, pseudonym
from .context import Ctx
from .imaging import LETTERS, load_case_margin, load_case_volume
from .procedures import get_procedure
from .schemas import CaseOut
from .security import Principal

# (centre, width) in HU, display presets as tabulated by Radiopaedia, "Windowing (CT)":
# soft tissue W400 L40 (W350-400 L20-60), liver W150 L30, lungs W1500 L-600, bone W1800 L400
WINDOW_PRESETS = {
    "soft_tissue": [40.0, 400.0], "liver": [30.0, 150.0], "lung": [-600.0, 1500.0], "bone": [400.0, 1800.0],
}


def _dose_rows(ctx: Ctx, patient_key: str | None, identify: bool) -> list[dict[str, Any]]:
    if not patient_key:
        return []
    out = [e.model_dump(exclude={"facility"}) for e in ctx.dose.report_entries(patient_id=patient_key)]
    if not identify:
        for r in out:
            r["sop_instance_uid"] = pseudonym(ctx.secret, r["sop_instance_uid"], "sr")
    return out


FILE_LINKS = ("image", "labels")
"""Links that name stored files: only the server writes them (``case_file``), never a client."""
ACTIVE_CONSULTATION = ("requested", "accepted", "answered")


def case_file(hospital_code: str, uid: str, suffix: str = ".npz", kind: str = "image") -> str:
    """Where a case's stored file lives, relative to the storage root: the hospital and the case are
    in the path, so a link can be checked against the record that holds it."""
    return f"cases/{hospital_code}/{uid}{'' if kind == 'image' else '.' + kind}{suffix}"


def _image_paths(ctx: Ctx, links: dict[str, Any], hospital_code: str, uid: str) -> tuple[str, str | None] | None:
    """Image (and labels) files of this case only: inside ``cases/<its hospital>/`` of the storage
    root and named after its uid. A link to another hospital's or another case's file (however it
    got into the record) is treated as no image."""
    img = links.get("image")
    if not img or not isinstance(img, str):
        return None
    folder = (ctx.storage / "cases" / hospital_code).resolve()
    paths = []
    for name in (img, links.get("labels")):
        if name is None:
            paths.append(None)
            continue
        if not isinstance(name, str) or Path(name).is_absolute():
            return None
        p = (ctx.storage / name).resolve()
        if p.parent != folder or not p.name.startswith(uid + ".") or not p.is_file():
            return None
        paths.append(str(p))
    return paths[0], paths[1]


def consulted_on(s: Any, p: Principal, pid: int) -> int | None:
    """The open consultation in which ``p``'s hospital is the expert asked about case ``pid``."""
    import sqlalchemy as sa

    from .models import Consultation

    if not p.is_hospital or not p.hospital_code:
        return None
    return s.scalar(sa.select(Consultation.id).where(
        Consultation.procedure_id == pid, Consultation.to_hospital == p.hospital_code,
        Consultation.state.in_(ACTIVE_CONSULTATION)).limit(1))


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
    files = _image_paths(ctx, links, rec.procedure.hospital_code, rec.procedure.uid)
    volume = None
    if files is not None:
        img, lab, sp = load_case_volume(*files)
        volume = {"shape": list(img.shape), "spacing_mm": list(sp), "labels": bool(lab is not None),
                  "margin_map": load_case_margin(files[0]) is not None,
                  "window": {"centre": 40.0, "width": 400.0}, "letters": {k: list(v) for k, v in LETTERS.items()},
                  "presets": WINDOW_PRESETS}
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
    """The image (and labels) files of a case ``p`` may see, 404 otherwise: their own hospital's
    cases, every case for the centre, and the case an open consultation asks ``p``'s hospital about
    (while it is open). Like every other read of patient data, the read is audited (``case_images``,
    with the consultation it was made under)."""
    with session_scope(ctx.engine, p.username) as s:
        rec = find_case(s, pid, hospitals=hospitals_of(p))
        via = None
        if rec is None and (via := consulted_on(s, p, pid)) is not None:
            rec = find_case(s, pid)
        if rec is None:
            raise HTTPException(404, "not found")
        files = _image_paths(ctx, rec.links, rec.procedure.hospital_code, rec.procedure.uid)
        if files is None:
            raise HTTPException(404, "this case has no images")
        audit(s, p, "read", "case_images", pid, {"consultation": via} if via is not None else None)
    return files


def needle_lines(ctx: Ctx, p: Principal, pid: int) -> list[tuple[list[float], list[float]]]:
    """The planned needles of a case ``p`` may see (its image read is audited by ``read_images``)."""
    with session_scope(ctx.engine, p.username) as s:
        rec = find_case(s, pid, hospitals=hospitals_of(p))
        if rec is None and consulted_on(s, p, pid) is not None:
            rec = find_case(s, pid)
    plan = rec.links.get("plan") if rec is not None else None
    out = []
    for t in (plan or {}).get("trajectories", []) if isinstance(plan, dict) else []:
        if isinstance(t, dict) and isinstance(t.get("entry_mm"), list) and isinstance(t.get("target_mm"), list):
            out.append(([float(v) for v in t["entry_mm"]], [float(v) for v in t["target_mm"]]))
    return out
