"""FHIR R4 export of the de-identified registry: Patient (pseudonym), Procedure, Observation, AdverseEvent.

Standard code systems where they exist: diagnoses as ICD-10 (``reasonCode``), techniques as ICD-9-CM
Vol. 3 next to the registry's own code, UCUM units, and for AdverseEvent the R4 value sets:
``severity`` (required binding: mild | moderate | severe, from the SIR 2017 grade: 1 mild, 2 moderate,
3-5 severe), ``outcome`` (required: fatal, resolvedWithSequelae for permanent sequelae, else
resolved), ``seriousness`` (the R4 code system's spellings: Non-serious, SeriousResultsInDeath ...).
The CIRSE 2017, SIR 2003 and SIR 2017 grades travel as extensions. :func:`binding_problems` checks a
bundle against the R4 required bindings offline; :func:`export_fhir` refuses to write a bundle
that fails it.

No identifying value leaves: patient and procedure identifiers are keyed hashes, dates are
year-month, adverse-event free text is exported only when at least ``K_TEXT`` procedures share the
same wording (a term, not a note about one person); otherwise it says "free text withheld".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from .catalogue import load_catalogue
from .codes import ICD9CM_SYSTEM, ICD10_SYSTEM, resolve_diagnosis
from .models import AdverseEvent, Procedure

SYSTEM = "urn:openir:registry"
EXT = "urn:openir:fhir:StructureDefinition"
TERM = "http://terminology.hl7.org/CodeSystem"
K_TEXT = 5
WITHHELD = "other adverse event (free text withheld)"

# R4 value sets of required bindings used here (hl7.org/fhir/R4/valueset-*.html)
R4_REQUIRED: dict[str, set[str]] = {
    "bundle-type": {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                    "history", "searchset", "collection"},
    "event-status": {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                     "entered-in-error", "unknown"},
    "observation-status": {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                           "entered-in-error", "unknown"},
    "administrative-gender": {"male", "female", "other", "unknown"},
    "adverse-event-actuality": {"actual", "potential"},
    "adverse-event-severity": {"mild", "moderate", "severe"},
    "adverse-event-outcome": {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"},
}
# R4 CodeSystem adverse-event-seriousness (example binding, but the codes must exist in the system)
R4_SERIOUSNESS = {"Non-serious", "Serious", "SeriousResultsInDeath", "SeriousIsLifeThreatening",
                  "SeriousResultsInHospitalization", "SeriousResultsInPersistentOrSignificantDisability",
                  "SeriousResultsInCongenitalAnomalyBirthDefect", "SeriousRequiresPreventImpairment"}
GENDER = {"M": "male", "F": "female", "O": "other"}


def _uuid(kind: str, ident: str) -> str:
    h = hashlib.sha256(f"{kind}:{ident}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{_uuid(kind, ident)}"}


def severity(sir_2017: int) -> str:
    """R4 AdverseEvent.severity from the SIR 2017 grade (1 mild, 2 moderate, 3-5 severe)."""
    return "mild" if sir_2017 <= 1 else "moderate" if sir_2017 == 2 else "severe"


def seriousness(a: dict[str, Any]) -> str:
    """The most specific R4 seriousness code the facts support."""
    if a["death"]:
        return "SeriousResultsInDeath"
    if a["life_threatening"]:
        return "SeriousIsLifeThreatening"
    if a["sequelae"] == "severe":
        return "SeriousResultsInPersistentOrSignificantDisability"
    if a["major"]:
        return "SeriousResultsInHospitalization"
    return "Non-serious"


def outcome(a: dict[str, Any]) -> str:
    if a["death"]:
        return "fatal"
    if a["sequelae"] in ("mild", "severe"):
        return "resolvedWithSequelae"
    return "resolved"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def _procedure(rec: dict[str, Any], subj: str, performed: str) -> dict[str, Any]:
    cat = load_catalogue()
    rid = rec["research_id"]
    t = cat.techniques.get(rec["technique"])
    codings = [_coding(f"{SYSTEM}:technique", rec["technique"], t.name if t else None)]
    codings += [_coding(ICD9CM_SYSTEM, c) for c in (t.procedure_codes if t else [])]
    proc: dict[str, Any] = {
        "resourceType": "Procedure", "id": _uuid("Procedure", rid), "status": "completed",
        "identifier": [{"system": f"{SYSTEM}:procedure", "value": rid}],
        "code": {"coding": codings, "text": " / ".join(x for x in (t.name_zh, t.name) if x) if t else rec["technique"]},
        "subject": _ref("Patient", subj), "performedDateTime": performed,
    }
    code = rec.get("diagnosis_code")
    if isinstance(code, str) and code:
        res = resolve_diagnosis(code)
        names = [x for x in ((res.zh, res.en) if res else ()) if x]
        concept: dict[str, Any] = {"coding": [_coding(ICD10_SYSTEM, code, res.en if res else None)]}
        if names:
            concept["text"] = " / ".join(names)
        proc["reasonCode"] = [concept]
    if rec.get("target_organ"):
        proc["bodySite"] = [{"text": rec["target_organ"]}]
    return proc


_OBS = {  # field -> (display, value kind, UCUM unit)
    "technical_success": ("Technical success", "bool", None),
    "complete_ablation": ("Complete ablation at first follow-up imaging", "bool", None),
    "min_margin_mm": ("Minimal ablative margin", "quantity", "mm"),
    "necrosis_pct": ("Tumour necrosis after TACE", "quantity", "%"),
    "mrecist": ("mRECIST response", "code", None),
    "easl": ("EASL response", "code", None),
    "ltp": ("Local tumour progression", "bool", None),
}


def _observations(rec: dict[str, Any], subj: str, performed: str) -> list[dict[str, Any]]:
    rid = rec["research_id"]
    out = []
    for name, (display, kind, unit) in _OBS.items():
        v = rec.get(name)
        if v is None or (isinstance(v, float) and v != v):
            continue
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": _uuid("Observation", f"{rid}:{name}"), "status": "final",
            "code": {"coding": [_coding(f"{SYSTEM}:observation", name, display)], "text": display},
            "subject": _ref("Patient", subj), "partOf": [_ref("Procedure", rid)], "effectiveDateTime": performed,
        }
        if kind == "bool":
            obs["valueBoolean"] = bool(v)
        elif kind == "quantity":
            obs["valueQuantity"] = {"value": float(v), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        else:
            obs["valueCodeableConcept"] = {"coding": [_coding(f"{SYSTEM}:{name}", str(v))]}
        out.append(obs)
    return out


def _adverse_event(a: dict[str, Any], rec: dict[str, Any], j: int, text: str, performed: str) -> dict[str, Any]:
    grades = [("cirse-2017-grade", {"valueInteger": int(a["cirse_grade"])}),
              ("sir-2003-class", {"valueCode": str(a["sir_2003"])}),
              ("sir-2017-grade", {"valueInteger": int(a["sir_2017"])})]
    return {
        "resourceType": "AdverseEvent", "id": _uuid("AdverseEvent", f"{rec['research_id']}:{j}"),
        "extension": [{"url": f"{EXT}:{name}", **val} for name, val in grades],
        "actuality": "actual", "subject": _ref("Patient", rec["subject"]), "date": performed,
        "event": {"text": text},
        "seriousness": {"coding": [_coding(f"{TERM}/adverse-event-seriousness", seriousness(a))]},
        "severity": {"coding": [_coding(f"{TERM}/adverse-event-severity", severity(int(a["sir_2017"])))]},
        "outcome": {"coding": [_coding(f"{TERM}/adverse-event-outcome", outcome(a))]},
        "suspectEntity": [{"instance": _ref("Procedure", rec["research_id"])}],
    }


def build_bundle(df: pd.DataFrame, aes: pd.DataFrame) -> dict[str, Any]:
    """The Bundle from the research table (with ``_uid``) and the raw adverse-event facts (``uid`` keyed)."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in df.to_dict("records"):
        subj = rec["subject"]
        performed = f"{int(rec['year']):04d}-{int(rec['month']):02d}"
        if subj not in seen:
            seen.add(subj)
            patient: dict[str, Any] = {"resourceType": "Patient", "id": _uuid("Patient", subj),
                                       "identifier": [{"system": f"{SYSTEM}:pseudonym", "value": subj}]}
            if rec.get("sex") in GENDER:
                patient["gender"] = GENDER[rec["sex"]]
            entries.append({"fullUrl": f"urn:uuid:{patient['id']}", "resource": patient})
        proc = _procedure(rec, subj, performed)
        entries.append({"fullUrl": f"urn:uuid:{proc['id']}", "resource": proc})
        entries += [{"fullUrl": f"urn:uuid:{o['id']}", "resource": o} for o in _observations(rec, subj, performed)]
    if not aes.empty:
        shared = aes.groupby("what")["uid"].nunique()
        terms = set(shared.index[shared >= K_TEXT])
        by_uid = {u: g.to_dict("records") for u, g in aes.groupby("uid", sort=False)}
        for rec in df.to_dict("records"):
            performed = f"{int(rec['year']):04d}-{int(rec['month']):02d}"
            for j, a in enumerate(by_uid.get(rec["_uid"], [])):
                ev = _adverse_event(a, rec, j, a["what"] if a["what"] in terms else WITHHELD, performed)
                entries.append({"fullUrl": f"urn:uuid:{ev['id']}", "resource": ev})
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "entry": entries}


def adverse_event_facts(engine: Engine) -> pd.DataFrame:
    A = AdverseEvent
    q = (select(Procedure.uid, A.id, A.what, A.cirse_grade, A.sir_2003, A.sir_2017, A.major, A.death,
                A.life_threatening, A.sequelae)
         .join(Procedure, Procedure.id == A.procedure_id).order_by(A.id))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame(rows, columns=["uid", "id", "what", "cirse_grade", "sir_2003", "sir_2017", "major", "death",
                                       "life_threatening", "sequelae"])


def binding_problems(bundle: dict[str, Any]) -> list[str]:
    """Violations of the R4 required bindings (and seriousness codes) used by this export; [] = valid."""
    probs: list[str] = []

    def need(value: Any, vs: str, where: str) -> None:
        if value not in R4_REQUIRED[vs]:
            probs.append(f"{where}: {value!r} not in R4 value set {vs}")

    def coded(concept: dict[str, Any] | None, system: str, vs: str, where: str) -> None:
        codes = [c.get("code") for c in (concept or {}).get("coding", []) if c.get("system") == system]
        if not codes:
            probs.append(f"{where}: no coding from {system}")
        for c in codes:
            need(c, vs, where)

    need(bundle.get("type"), "bundle-type", "Bundle.type")
    for i, e in enumerate(bundle.get("entry", [])):
        r = e["resource"]
        kind = r["resourceType"]
        where = f"entry[{i}] {kind}"
        if kind == "Patient" and "gender" in r:
            need(r["gender"], "administrative-gender", f"{where}.gender")
        elif kind == "Procedure":
            need(r.get("status"), "event-status", f"{where}.status")
        elif kind == "Observation":
            need(r.get("status"), "observation-status", f"{where}.status")
        elif kind == "AdverseEvent":
            need(r.get("actuality"), "adverse-event-actuality", f"{where}.actuality")
            if "severity" in r:
                coded(r["severity"], f"{TERM}/adverse-event-severity", "adverse-event-severity", f"{where}.severity")
            if "outcome" in r:
                coded(r["outcome"], f"{TERM}/adverse-event-outcome", "adverse-event-outcome", f"{where}.outcome")
            for c in r.get("seriousness", {}).get("coding", []):
                if c.get("system") == f"{TERM}/adverse-event-seriousness" and c.get("code") not in R4_SERIOUSNESS:
                    probs.append(f"{where}.seriousness: {c.get('code')!r} is not an R4 seriousness code")
    return probs
