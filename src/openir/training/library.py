"""The teaching case library: one folder per de-identified case (``entry.json``, ``image.nii.gz``,
``labels.nii.gz``, ``expert_plan.json``) under a library root, searchable by organ, technique and
difficulty.

De-identification: an entry is named by a random id; it keeps the year of the procedure, never the
date; no patient key, case uid, hospital, operator, name or birth date is written; images are
re-written as NIfTI from the pixel array and the geometry only (no DICOM header travels); the expert
plan loses its case reference, file paths and creation time.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
from pydantic import ValidationError

from openir.core import LabelMap, Volume
from openir.core.errors import InputError
from openir.plan import Plan
from openir.plan.models import CaseRef
from openir.seeds import SeedPlan

from .difficulty import case_difficulty
from .models import CaseOutcome, LibraryEntry

ENTRY_FILE = "entry.json"


@dataclass
class TeachingCase:
    """A library entry with its image, labels and expert plan, ready to score plans on."""

    entry: LibraryEntry
    labels: LabelMap
    expert: Plan | SeedPlan
    ct: Volume | None = None
    folder: Path | None = None
    _body: np.ndarray | None = field(default=None, repr=False)

    @property
    def body(self) -> np.ndarray | None:
        """The body mask the planner uses (`body_from_ct`), None without a CT."""
        if self._body is None and self.ct is not None:
            from openir.plan import body_from_ct

            self._body = body_from_ct(self.ct.array, self.labels.array)
        return self._body


def deidentified_plan(plan: Plan | SeedPlan) -> Plan | SeedPlan:
    """The plan without its case reference, file paths or creation time (geometry kept); a seed plan
    holds none of these and only loses its timing."""
    if isinstance(plan, SeedPlan):
        return plan.model_copy(update={"seconds": 0.0}, deep=True)
    out = plan.model_copy(deep=True)
    out.case = CaseRef(case_id="", grid=plan.case.grid)
    out.provenance.created = ""
    out.provenance.parameters = {k: v for k, v in out.provenance.parameters.items()
                                 if not isinstance(v, str) or ("/" not in v and "\\" not in v)}
    return out


def read_plan(path: str | Path) -> Plan | SeedPlan:
    """A `Plan` JSON (as ``openir plan`` writes it) or a `SeedPlan` JSON (``openir seeds plan``, told by
    its ``seeds`` key); a bad file names the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=p) from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", source=p) from None
    model: type[Plan] | type[SeedPlan] = SeedPlan if isinstance(obj, dict) and "seeds" in obj else Plan
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(file)"
        raise InputError(f"not a plan JSON: {loc}: {err['msg']}", source=p, field=loc) from None


def _new_id() -> str:
    return "tc-" + secrets.token_hex(5)


class CaseFacts(TypedDict, total=False):
    """What is said about a case beside its images and expert plan (every key optional).

    ``tumour`` defaults to the expert plan's first target, ``technique`` to its modality, ``organ`` to
    the plan's organ; ``outcome`` (margin, complications), ``expert_time_min`` and ``year`` come from
    the registry when the case does; ``origin`` is ``files`` or ``registry``."""

    tumour: str | None
    technique: str | None
    title: str
    outcome: CaseOutcome | None
    expert_time_min: float | None
    year: int | None
    origin: str
    organ: str | None


def teaching_case(ct: Volume | None, labels: LabelMap, expert: Plan | SeedPlan, **facts: Unpack[CaseFacts]) -> TeachingCase:
    """An in-memory teaching case (entry with its computed difficulty; nothing written), e.g. for a
    phantom and the planner's plan in the demo: ``score_plan(teaching_case(ct, labels, plan), mine)``."""
    return TeachingCase(_entry(ct, labels, expert, facts), labels, expert, ct)


def add_case(root: str | Path, ct: Volume | None, labels: LabelMap, expert: Plan | SeedPlan,
             **facts: Unpack[CaseFacts]) -> LibraryEntry:
    """Add a case to the library at ``root``; the folder appears complete or not at all."""
    entry = _entry(ct, labels, expert, facts)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        write_case_files(tmp, entry, ct, labels, deidentified_plan(expert))
        tmp.rename(root / entry.entry_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entry


def _entry(ct: Volume | None, labels: LabelMap, expert: Plan | SeedPlan, facts: CaseFacts) -> LibraryEntry:
    """The entry of a case: checks, technique, organ, size and the computed difficulty."""
    unknown = sorted(set(facts) - set(CaseFacts.__annotations__))
    if unknown:
        raise InputError(f"unknown case fact(s) {', '.join(unknown)}; known: {', '.join(CaseFacts.__annotations__)}",
                         field=unknown[0])
    if isinstance(expert, SeedPlan):
        return _seed_entry(ct, labels, expert, facts)
    tumour = facts.get("tumour") or (expert.targets[0].tumour if expert.targets else None)
    if not tumour:
        raise InputError("the expert plan has no target: name the tumour", field="tumour")
    labels.value_of(tumour)
    tp = next((t for t in expert.targets if t.tumour == tumour), None)
    if tp is None and not any(p.tumour == tumour for p in expert.probes):
        raise InputError(f"the expert plan has no probe for tumour {tumour!r}", field="tumour")
    if ct is not None and ct.shape != labels.shape:
        raise InputError(f"image grid {ct.shape} differs from the labels grid {labels.shape}", field="image")
    technique = facts.get("technique") or (tp.modality if tp else next(p.modality for p in expert.probes
                                                                         if p.tumour == tumour))
    entry_id = _new_id()
    case = TeachingCase(LibraryEntry.model_construct(), labels, expert, ct)  # body mask only
    diff = case_difficulty(labels, tumour, case.body)
    organ = facts.get("organ") or (tp.recommendation.features.organ if tp else "unknown")
    tm = labels.mask(tumour)
    eq_d = 2 * (3 * float(tm.sum()) * labels.grid.voxel_volume_mm3 / (4 * np.pi)) ** (1 / 3)
    return LibraryEntry(entry_id=entry_id, title=facts.get("title", ""), organ=str(organ), technique=technique,
                        tumour=tumour, tumour_diameter_mm=round(eq_d, 1), difficulty=diff,
                        outcome=facts.get("outcome") or CaseOutcome(),
                        label_names={int(k): v for k, v in labels.labels.items()},
                        expert_time_min=facts.get("expert_time_min"), year=facts.get("year"),
                        origin=facts.get("origin", "files"))


def _seed_entry(ct: Volume | None, labels: LabelMap, expert: SeedPlan, facts: CaseFacts) -> LibraryEntry:
    """The entry of a seed-implant case (technique ``seed_implantation`` of the registry catalogue)."""
    tumour = facts.get("tumour") or expert.tumour
    labels.value_of(tumour)
    if tumour != expert.tumour:
        raise InputError(f"the expert seed plan targets {expert.tumour!r}, not {tumour!r}", field="tumour")
    if ct is not None and ct.shape != labels.shape:
        raise InputError(f"image grid {ct.shape} differs from the labels grid {labels.shape}", field="image")
    case = TeachingCase(LibraryEntry.model_construct(), labels, expert, ct)  # body mask only
    diff = case_difficulty(labels, tumour, case.body)
    tm = labels.mask(tumour)
    eq_d = 2 * (3 * float(tm.sum()) * labels.grid.voxel_volume_mm3 / (4 * np.pi)) ** (1 / 3)
    return LibraryEntry(entry_id=_new_id(), title=facts.get("title", ""), organ=str(facts.get("organ") or expert.site),
                        technique=facts.get("technique") or "seed_implantation", tumour=tumour,
                        tumour_diameter_mm=round(eq_d, 1), difficulty=diff,
                        outcome=facts.get("outcome") or CaseOutcome(),
                        label_names={int(k): v for k, v in labels.labels.items()},
                        expert_time_min=facts.get("expert_time_min"), year=facts.get("year"),
                        origin=facts.get("origin", "files"))


def write_case_files(folder: Path, entry: LibraryEntry, ct: Volume | None, labels: LabelMap,
                     plan: Plan | SeedPlan) -> None:
    """The entry's files, images re-written from pixels and geometry only (no source header)."""
    from openir.io import write_nifti

    folder.mkdir(parents=True, exist_ok=True)
    files = dict(entry.files)
    if ct is not None:
        write_nifti(Volume(ct.array, ct.affine), folder / files["image"])
    else:
        files.pop("image", None)
    write_nifti(Volume(labels.array, labels.affine), folder / files["labels"])
    (folder / files["plan"]).write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    (folder / (files["labels"].split(".")[0] + ".labels.json")).write_text(
        json.dumps({str(k): v for k, v in entry.label_names.items()}, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / ENTRY_FILE).write_text(entry.model_copy(update={"files": files}).model_dump_json(indent=1),
                                     encoding="utf-8")


def _entry_folder(root: str | Path, entry_id: str) -> Path:
    folder = Path(root) / entry_id
    if not entry_id or "/" in entry_id or "\\" in entry_id or entry_id.startswith(".") or not (folder / ENTRY_FILE).is_file():
        raise InputError(f"no teaching case {entry_id!r} in {root}", field="entry_id")
    return folder


def read_entry(root: str | Path, entry_id: str) -> LibraryEntry:
    p = _entry_folder(root, entry_id) / ENTRY_FILE
    try:
        return LibraryEntry.model_validate_json(p.read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}", source=p) from None


def load_case(root: str | Path, entry_id: str) -> TeachingCase:
    """A library entry with its images and expert plan."""
    from openir.io import read_nifti, read_nifti_labels

    folder = _entry_folder(root, entry_id)
    entry = read_entry(root, entry_id)
    labels = read_nifti_labels(folder / entry.files["labels"], {str(k): v for k, v in entry.label_names.items()})
    ct = read_nifti(folder / entry.files["image"]) if "image" in entry.files else None
    return TeachingCase(entry, labels, read_plan(folder / entry.files["plan"]), ct, folder)


def list_entries(root: str | Path, *, organ: str | None = None, technique: str | None = None,
                 difficulty: str | None = None) -> list[LibraryEntry]:
    """Entries of the library, filtered (case-insensitive) by organ, technique and difficulty level."""
    out = []
    r = Path(root)
    if not r.is_dir():
        return out
    for d in sorted(r.iterdir()):
        if d.name.startswith(".") or not (d / ENTRY_FILE).is_file():
            continue
        e = read_entry(r, d.name)
        if organ and e.organ.lower() != organ.lower():
            continue
        if technique and e.technique.lower() != technique.lower():
            continue
        if difficulty and e.difficulty.level.lower() != difficulty.lower():
            continue
        out.append(e)
    return out


def export_case(root: str | Path, entry_id: str, dest: str | Path, *, include_expert: bool = False) -> Path:
    """A folder for a trainee: image, labels (with names), the case sheet; the expert plan only when
    ``include_expert`` (for review after the exercise)."""
    folder = _entry_folder(root, entry_id)
    entry = read_entry(root, entry_id)
    out = Path(dest) / entry_id
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(p.name for p in folder.iterdir()):
        if name == entry.files["plan"] and not include_expert:
            continue
        shutil.copy2(folder / name, out / name)
    return out


def entries_json(entries: Sequence[LibraryEntry]) -> list[dict]:
    return [json.loads(e.model_dump_json()) for e in entries]
