"""Exports for multi-centre research: de-identified tables (CSV / Parquet) and a FHIR R4 Bundle.

De-identification: the registry already holds only pseudonymous patient keys; an export replaces
them by a keyed hash (``salt`` per export, so two exports cannot be linked unless the same salt
is given), drops free text, UIDs of other systems and exact dates (kept as year and month), and
reports age in 5-year bands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from openir.core.errors import InputError

from .models import AdverseEvent, Hospital, Operator, Outcome, Patient, Procedure

RESEARCH_COLUMNS = [
    "research_id", "subject", "hospital", "region", "hospital_level", "operator", "credential", "year", "month",
    "technique", "category", "disease", "target_organ", "n_lesions", "max_lesion_mm", "imaging_guidance",
    "anaesthesia", "duration_min", "cost_cny", "drg_group", "age_band", "sex", "asa_class", "child_pugh",
    "emergency", "dose_alert", "n_flags", "technical_success", "complete_ablation", "min_margin_mm", "mrecist", "easl",
    "necrosis_pct", "ltp", "followup_months", "puncture_bleeding", "died", "death_days", "n_adverse_events",
    "max_cirse_grade", "major_ae",
]


def _hash(value: str, salt: bytes) -> str:
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:16]


def research_table(engine: Engine, *, salt: bytes | None = None, keep_uid: bool = False) -> pd.DataFrame:
    """One de-identified row per procedure."""
    salt = salt or secrets.token_bytes(16)
    P, Oc, H, Op, Pa, A = Procedure, Outcome, Hospital, Operator, Patient, AdverseEvent
    ae = (select(A.procedure_id, func.count().label("n_adverse_events"), func.max(A.cirse_grade).label("max_cirse_grade"),
                 func.max(A.sir_2017).label("_s")).group_by(A.procedure_id).subquery())
    major = select(A.procedure_id).where(A.major.is_(True)).distinct().subquery()
    q = (select(P.uid, Pa.pseudo_key, Pa.sex, H.code.label("hospital"), H.region, H.level.label("hospital_level"),
                Op.code.label("operator"), Op.credential, P.date, P.technique, P.category, P.disease, P.target_organ,
                P.n_lesions, P.max_lesion_mm, P.imaging_guidance, P.anaesthesia, P.duration_min, P.cost_cny,
                P.drg_group, P.age_years, P.asa_class, P.child_pugh, P.emergency, P.dose_alert, P.n_flags,
                Oc.technical_success, Oc.complete_ablation, Oc.min_margin_mm, Oc.mrecist, Oc.easl, Oc.necrosis_pct, Oc.ltp,
                Oc.followup_months, Oc.puncture_bleeding, Oc.died, Oc.death_days, ae.c.n_adverse_events,
                ae.c.max_cirse_grade, major.c.procedure_id.label("_major"))
         .join(Pa, Pa.id == P.patient_id).join(H, H.id == P.hospital_id).join(Op, Op.id == P.primary_operator_id)
         .outerjoin(Oc, Oc.procedure_id == P.id).outerjoin(ae, ae.c.procedure_id == P.id)
         .outerjoin(major, major.c.procedure_id == P.id).order_by(P.id))
    with engine.connect() as conn:
        res = conn.execute(q)
        df = pd.DataFrame(res.all(), columns=list(res.keys()))
    uid = df.pop("uid")
    df["research_id"] = [_hash(u, salt) for u in uid]
    df["subject"] = [_hash(k, salt) for k in df.pop("pseudo_key")]
    d = pd.to_datetime(df.pop("date"))
    df["year"], df["month"] = d.dt.year, d.dt.month
    age = pd.to_numeric(df.pop("age_years"))
    df["age_band"] = [None if pd.isna(a) else f"{int(a) // 5 * 5}-{int(a) // 5 * 5 + 4}" for a in age]
    df["major_ae"] = df.pop("_major").notna()
    df["n_adverse_events"] = df["n_adverse_events"].fillna(0).astype(int)
    return df.assign(_uid=uid)[RESEARCH_COLUMNS + ["_uid"]] if keep_uid else df[RESEARCH_COLUMNS]


def export_research(engine: Engine, path: str | Path, *, salt: bytes | None = None) -> Path:
    """Write the de-identified table as CSV or Parquet (by the file suffix)."""
    path = Path(path)
    df = research_table(engine, salt=salt)
    if path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        raise InputError("export format must be .csv or .parquet", source=path)
    return path


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{_uuid(kind, ident)}"}


def _uuid(kind: str, ident: str) -> str:
    h = hashlib.sha256(f"{kind}:{ident}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def fhir_bundle(engine: Engine, *, salt: bytes | None = None, limit: int | None = None) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: Patient (pseudonym), Procedure, Observation, AdverseEvent."""
    df = research_table(engine, salt=salt, keep_uid=True)
    if limit:
        df = df.head(limit)
    with engine.connect() as conn:
        aes = pd.DataFrame(conn.execute(select(Procedure.uid, AdverseEvent.what, AdverseEvent.cirse_grade,
                                               AdverseEvent.sir_2003, AdverseEvent.major, AdverseEvent.death,
                                               AdverseEvent.onset_days)
                                        .join(Procedure, Procedure.id == AdverseEvent.procedure_id)).all(),
                           columns=["uid", "what", "cirse_grade", "sir_2003", "major", "death", "onset_days"])
    entries: list[dict[str, Any]] = []
    seen_subjects: set[str] = set()
    system = "urn:openir:registry"
    for rec in df.to_dict("records"):
        subj = rec["subject"]
        if subj not in seen_subjects:
            seen_subjects.add(subj)
            patient: dict[str, Any] = {"resourceType": "Patient", "id": _uuid("Patient", subj),
                                       "identifier": [{"system": f"{system}:pseudonym", "value": subj}]}
            entries.append({"fullUrl": f"urn:uuid:{patient['id']}", "resource": patient})
        rid = rec["research_id"]
        performed = f"{int(rec['year']):04d}-{int(rec['month']):02d}"
        proc: dict[str, Any] = {
            "resourceType": "Procedure", "id": _uuid("Procedure", rid), "status": "completed",
            "identifier": [{"system": f"{system}:procedure", "value": rid}],
            "code": {"coding": [{"system": f"{system}:technique", "code": rec["technique"]}], "text": rec["technique"]},
            "subject": _ref("Patient", subj), "performedDateTime": performed,
        }
        if rec.get("target_organ"):
            proc["bodySite"] = [{"text": rec["target_organ"]}]
        entries.append({"fullUrl": f"urn:uuid:{proc['id']}", "resource": proc})
        for name in ("technical_success", "complete_ablation", "min_margin_mm", "mrecist", "ltp"):
            v = rec.get(name)
            if v is None or (isinstance(v, float) and v != v):
                continue
            obs: dict[str, Any] = {
                "resourceType": "Observation", "id": _uuid("Observation", f"{rid}:{name}"), "status": "final",
                "code": {"coding": [{"system": f"{system}:observation", "code": name}], "text": name},
                "subject": _ref("Patient", subj), "partOf": [_ref("Procedure", rid)], "effectiveDateTime": performed,
            }
            if isinstance(v, bool):
                obs["valueBoolean"] = v
            elif isinstance(v, (int, float)):
                obs["valueQuantity"] = {"value": float(v), "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"}
            else:
                obs["valueCodeableConcept"] = {"coding": [{"system": f"{system}:mrecist", "code": str(v)}]}
            entries.append({"fullUrl": f"urn:uuid:{obs['id']}", "resource": obs})
    ae_by_uid = {u: g for u, g in aes.groupby("uid")} if not aes.empty else {}
    for rec in df.to_dict("records"):
        uid = rec["_uid"]
        if uid not in ae_by_uid:
            continue
        for j, a in enumerate(ae_by_uid[uid].to_dict("records")):
            ev = {
                "resourceType": "AdverseEvent", "id": _uuid("AdverseEvent", f"{rec['research_id']}:{j}"),
                "actuality": "actual", "subject": _ref("Patient", rec["subject"]),
                "event": {"text": a["what"]},
                "seriousness": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                                            "code": "serious" if a["major"] else "non-serious"}]},
                "severity": {"coding": [{"system": f"{system}:cirse-2017", "code": str(int(a["cirse_grade"]))}],
                             "text": f"CIRSE {int(a['cirse_grade'])}, SIR {a['sir_2003']}"},
                "outcome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                                        "code": "fatal" if a["death"] else "resolved"}]},
                "suspectEntity": [{"instance": _ref("Procedure", rec["research_id"])}],
            }
            entries.append({"fullUrl": f"urn:uuid:{ev['id']}", "resource": ev})
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "entry": entries}


def export_fhir(engine: Engine, path: str | Path, *, salt: bytes | None = None, limit: int | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(fhir_bundle(engine, salt=salt, limit=limit), indent=1), encoding="utf-8")
    return path
