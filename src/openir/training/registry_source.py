"""A registry case as teaching material: its stored images (``cases/<hospital>/<uid>.*`` under the
storage root, as the web case view reads them), its expert plan and its outcome, with nothing that
identifies the patient, the hospital or the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from openir.core import LabelMap, Volume, make_affine
from openir.core.errors import InputError
from openir.plan import Plan

from .library import read_plan
from .models import CaseOutcome


def _stored(storage: Path, name: object, hospital: str, uid: str, what: str) -> Path:
    """A file named in a record's links, only inside ``cases/<its hospital>/`` and named after its uid."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise InputError(f"the case has no stored {what}", field=f"links.{what}")
    p = (storage / name).resolve()
    if p.parent != (storage / "cases" / hospital).resolve() or not p.name.startswith(uid + ".") or not p.is_file():
        raise InputError(f"the case's {what} file is not among its stored files", field=f"links.{what}")
    return p


def _read(path: Path, labels_path: Path | None, names: dict[int, str] | None) -> tuple[Volume, LabelMap]:
    if path.suffix == ".npz":
        with np.load(path) as z:
            img = np.asarray(z["image"], np.float32)
            lab = np.asarray(z["labels"], np.int16) if "labels" in z else None
            sp = [float(v) for v in z["spacing"]] if "spacing" in z else [1.0, 1.0, 1.0]
        aff = make_affine((sp[2], sp[1], sp[0]))
        if lab is None:
            raise InputError("the stored case holds no label map", source=path, field="labels")
        return Volume(img, aff), LabelMap(lab, aff, {}, dict(names or {}))
    from openir.io import read_image, read_labels

    ct = read_image(path)
    if labels_path is None:
        raise InputError("the case has no stored label map", field="links.labels")
    lm = read_labels(labels_path, names, reference=ct) if names else read_labels(labels_path, reference=ct)
    return ct, lm


def case_from_registry(session: Any, procedure_id: int, storage: str | Path, *, plan: Plan | str | Path | None = None,
                       names: dict[int, str] | None = None) -> dict[str, Any]:
    """The arguments of `add_case` for a registry procedure: image, labels, expert plan, technique,
    outcome (margin, complications), expert time and the year; no identifier of any kind.

    The expert plan is the record's ``links.plan`` when it is a full `Plan`, else ``plan`` (a file);
    label names come from ``links.label_names`` or ``names``.
    """
    from openir.registry import find_case
    from openir.registry.models import Procedure

    rec = find_case(session, procedure_id)
    if rec is None:
        raise InputError(f"no procedure with id {procedure_id}", field="procedure_id")
    head, links = rec.procedure, rec.links
    st = Path(storage)
    img = _stored(st, links.get("image"), head.hospital_code, head.uid, "image")
    lab = _stored(st, links["labels"], head.hospital_code, head.uid, "labels") if links.get("labels") else None
    stored_names = links.get("label_names")
    if isinstance(stored_names, dict):
        try:
            names = {int(k): str(v) for k, v in stored_names.items()}
        except (TypeError, ValueError):
            raise InputError("label names must map integer values to names", field="links.label_names") from None
    if not names:
        raise InputError("the case has no label names: give them (value: name JSON)", field="names")
    ct, lm = _read(img, lab, names)
    if isinstance(plan, (str, Path)):
        expert = read_plan(plan)
    elif isinstance(plan, Plan):
        expert = plan
    else:
        try:
            expert = Plan.model_validate(links.get("plan"))
        except Exception:  # noqa: BLE001 - a summary dict, not a full plan
            raise InputError("the record holds no full expert plan (plan JSON as `openir plan` writes it): "
                             "give one", field="links.plan") from None
    oc = rec.outcome or {}
    ver = links.get("verification") if isinstance(links.get("verification"), dict) else {}
    margin = oc.get("min_margin_mm")
    if margin is None and isinstance(ver.get("min_margin_mm"), (int, float)):
        margin = float(ver["min_margin_mm"])
    outcome = CaseOutcome(min_margin_mm=margin, technical_success=oc.get("technical_success"),
                          complete_ablation=oc.get("complete_ablation"), local_progression=oc.get("ltp"),
                          complications=[str(a.get("what")) for a in rec.adverse_events if a.get("what")],
                          complication_grades=[str(a.get("cirse_grade")) for a in rec.adverse_events
                                               if a.get("cirse_grade") is not None])
    proc = session.get(Procedure, procedure_id)
    return {"ct": ct, "labels": lm, "expert": expert, "technique": head.technique, "outcome": outcome,
            "expert_time_min": getattr(proc, "duration_min", None), "year": head.date.year, "origin": "registry",
            "organ": head.target_organ}
