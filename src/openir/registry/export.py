"""Exports for multi-centre research: de-identified tables (CSV / Parquet) and a FHIR R4 Bundle.

De-identification: the registry already holds only pseudonymous patient keys; an export replaces
them by a keyed hash (``salt`` per export, so two exports cannot be linked unless the same salt
is given), drops free text (the diagnosis as typed is replaced by its ICD-10 code and standard names), UIDs of other systems and exact dates (kept as year and month), and
reports age in 5-year bands.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from openir.core.errors import InputError

from .codes import resolve_diagnosis
from .models import AdverseEvent, Hospital, Operator, Outcome, Patient, Procedure

RESEARCH_COLUMNS = [
    "research_id", "subject", "hospital", "region", "hospital_level", "operator", "credential", "year", "month",
    "technique", "category", "diagnosis_code", "diagnosis_en", "diagnosis_zh", "target_organ", "n_lesions", "max_lesion_mm", "imaging_guidance",
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
                Op.code.label("operator"), Op.credential, P.date, P.technique, P.category, P.diagnosis_code, P.target_organ,
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
    names = {c: resolve_diagnosis(c) for c in df["diagnosis_code"].dropna().unique()}
    df["diagnosis_en"] = df["diagnosis_code"].map(lambda c: names[c].en if c in names and names[c] else None)
    df["diagnosis_zh"] = df["diagnosis_code"].map(lambda c: names[c].zh if c in names and names[c] else None)
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


def fhir_bundle(engine: Engine, *, salt: bytes | None = None, limit: int | None = None) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle (see :mod:`.fhir`): Patient (pseudonym), Procedure, Observation, AdverseEvent."""
    from .fhir import adverse_event_facts, build_bundle

    df = research_table(engine, salt=salt, keep_uid=True)
    if limit:
        df = df.head(limit)
    return build_bundle(df, adverse_event_facts(engine))


def export_fhir(engine: Engine, path: str | Path, *, salt: bytes | None = None, limit: int | None = None) -> Path:
    """Write the Bundle as JSON after checking the R4 required bindings (nothing written if one fails)."""
    from .fhir import binding_problems

    path = Path(path)
    bundle = fhir_bundle(engine, salt=salt, limit=limit)
    probs = binding_problems(bundle)
    if probs:
        raise InputError(f"FHIR bundle fails R4 bindings ({len(probs)}); first: {probs[0]}", source=path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(bundle, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path
