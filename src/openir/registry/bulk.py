"""Bulk writes: many procedures in one transaction with Core inserts (SQLite) or COPY (PostgreSQL).

Used by the CSV/Excel importer, the synthetic seeding and the benchmark. The rows written are the
same as :func:`openir.registry.store.record_procedure` writes one by one: rule flags and AE
grades come from the same functions, evaluated once per distinct combination of their inputs.
The batch is audited with one ``bulk_import`` row (counts, source, first and last UID).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Integer,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import JSON

from openir.core.errors import InputError
from openir.sop.models import SOPCheck

from .audit import audit_bulk
from .catalogue import load_catalogue
from .grading import AEFacts, grade_all
from .models import (
    AdverseEvent,
    Equipment,
    Hospital,
    Operator,
    Outcome,
    Patient,
    Procedure,
    ProcedureOperator,
    Room,
    SOPCheckRow,
    SOPDeviationRow,
)
from .store import sop_check_fields, sop_check_flags, sop_deviation_fields

PROCEDURE_FIELDS = [
    "uid", "date", "technique", "disease", "diagnosis_code", "target_organ", "imaging_guidance", "anaesthesia", "duration_min",
    "cost_cny", "drg_group", "age_years", "asa_class", "child_pugh", "emergency", "max_lesion_mm", "n_lesions",
    "plan_uid", "verify_uid", "dose_uid", "dose_alert", "lesions", "devices", "consumables", "links",
]
OUTCOME_FIELDS = [
    "technical_success", "complete_ablation", "min_margin_mm", "mrecist", "easl", "necrosis_pct", "ltp",
    "followup_months", "puncture_bleeding", "died", "death_days",
]
_CHUNK = 5000


# ---- low-level writing ------------------------------------------------------------------------
def _column(s: pd.Series, kind: str) -> list[Any]:
    """A frame column as Python values the DB driver binds (None for missing)."""
    na = s.isna().to_numpy()
    if kind == "int":
        vals = pd.to_numeric(s.where(~na, 0), errors="coerce").fillna(0).astype("int64").tolist()
    elif kind == "bool":
        vals = s.where(~na, False).astype(bool).tolist()
    elif kind == "json":
        vals = [v if isinstance(v, str) else json.dumps(v) if not (isinstance(v, float)) else None for v in s.tolist()]
    elif s.dtype.kind == "M":
        vals = list(s.dt.to_pydatetime())
    else:
        vals = [v.item() if isinstance(v, np.generic) else v for v in s.tolist()] if s.dtype == object else s.tolist()
    if na.any():
        vals = [None if m else v for v, m in zip(vals, na.tolist(), strict=True)]
    return vals


def write_rows(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Append ``frame`` (columns named as in ``table``) with the fastest path of the backend."""
    if frame.empty:
        return 0
    cols = [c for c in frame.columns if c in table.c]
    kinds = []
    for c in cols:
        t = table.c[c].type
        kinds.append("bool" if isinstance(t, Boolean) else "int" if isinstance(t, Integer)
                     else "json" if isinstance(t, JSON) else "other")
    columns = [_column(frame[c], k) for c, k in zip(cols, kinds, strict=True)]
    rows = list(zip(*columns, strict=True))
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in cols)
        with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as cp:  # type: ignore[union-attr]
            for row in rows:
                cp.write_row(row)
    else:
        placeholders = ", ".join("?" for _ in cols)
        names = ", ".join(f'"{c}"' for c in cols)
        cur = dbapi.cursor()  # type: ignore[union-attr]
        cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})", rows)
        cur.close()
    return len(rows)


def _next_id(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _fix_sequences(conn: Connection, tables: Sequence[Table]) -> None:
    if conn.dialect.name != "postgresql":
        return
    for t in tables:
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                          f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {t.name}), false)"))


def _lock(conn: Connection, tables: Sequence[Table]) -> None:
    if conn.dialect.name == "postgresql":  # explicit ids: keep concurrent writers out
        conn.execute(text(f"LOCK TABLE {', '.join(t.name for t in tables)} IN EXCLUSIVE MODE"))


def _lookup(conn: Connection, column: Any, key: Any, values: Sequence[Any]) -> dict[Any, Any]:
    """``{key: column}`` for the stored rows whose key is in ``values``."""
    out: dict[Any, Any] = {}
    vals = list(dict.fromkeys(values))
    if conn.dialect.name == "postgresql":  # one array parameter instead of thousands of placeholders
        param = bindparam("vals", vals, type_=ARRAY(key.type))
        return {k: v for k, v in conn.execute(select(key, column).where(key == any_(param)))}
    for i in range(0, len(vals), _CHUNK):
        for k, v in conn.execute(select(key, column).where(key.in_(vals[i:i + _CHUNK]))):
            out[k] = v
    return out


# ---- derived columns, computed once per distinct input ---------------------------------------
def stay_bucket(hours: pd.Series) -> pd.Series:
    """Grades only depend on 0 / (0, 24] / (24, 48] / > 48 h; map to a representative value."""
    h = hours.fillna(0.0).astype(float)
    return pd.Series(np.select([h <= 0, h <= 24, h <= 48], [0.0, 12.0, 36.0], 72.0), index=hours.index)


def grade_frame(ae: pd.DataFrame) -> pd.DataFrame:
    """CIRSE / SIR grades for every row of an adverse-event frame of raw facts."""
    keys = pd.DataFrame({
        "resolved_in_session": ae["resolved_in_session"].fillna(False).astype(bool),
        "therapy": ae["therapy"].fillna("none"), "extra_stay_h": stay_bucket(ae["extra_stay_h"]),
        "icu": ae["icu"].fillna(False).astype(bool), "life_threatening": ae["life_threatening"].fillna(False).astype(bool),
        "sequelae": ae["sequelae"].fillna("none"), "death": ae["death"].fillna(False).astype(bool),
    })
    uniq = keys.drop_duplicates()
    graded = pd.DataFrame([grade_all(AEFacts(**row)) for row in uniq.to_dict("records")], index=uniq.index)
    merged = keys.merge(pd.concat([uniq, graded], axis=1), how="left", on=list(keys.columns))
    merged.index = ae.index
    return merged[["cirse_grade", "sir_2003", "sir_2017", "major"]]


def _cell(v: Any) -> Any:
    """None for pandas' missing values (NaN, NA, NaT), the value otherwise."""
    return None if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)) else v


def diagnosis_codes(df: pd.DataFrame) -> pd.Series:
    """ICD-10 code per row: the given ``diagnosis_code``, else resolved from ``disease`` (once per distinct text)."""
    from .codes import resolve_diagnosis

    given = df["diagnosis_code"] if "diagnosis_code" in df else pd.Series(None, index=df.index, dtype=object)
    disease = df["disease"] if "disease" in df else pd.Series(None, index=df.index, dtype=object)
    lookup: dict[Any, Any] = {}
    for written in pd.unique(disease.astype(object)):
        t = _cell(written)
        res = resolve_diagnosis(str(t)) if t is not None else None
        lookup[written] = res.code if res else None
    resolved = disease.astype(object).map(lambda v: lookup.get(v) if _cell(v) is not None else None)
    given = given.astype(object).map(_cell)
    return given.where(given.notna(), resolved).astype(object)


def flag_frame(df: pd.DataFrame, level: pd.Series, credential: pd.Series) -> pd.Series:
    """Rule flags of every procedure (list or None), via catalogue.check_procedure per distinct case."""
    cat = load_catalogue()
    fields = sorted({c.field for t in cat.techniques.values() for c in t.contraindications if c.field})
    keys = pd.DataFrame({"technique": df["technique"], "level": level.to_numpy(), "credential": credential.to_numpy(),
                         "disease": df.get("disease", pd.Series(None, index=df.index)),
                         "diagnosis_code": df.get("diagnosis_code", pd.Series(None, index=df.index))})
    for f in fields:
        keys[f] = df.get(f, None)
    keys = keys.astype(object)
    for c in keys.columns:  # pandas 3 keeps NaN in object columns where None was meant
        keys[c] = pd.Series([_cell(v) for v in keys[c].tolist()], index=keys.index, dtype=object)
    codes = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup()
    first = keys.groupby(codes.to_numpy(), sort=False).head(1)
    result: dict[int, Any] = {}
    for idx, row in first.iterrows():
        rec = {k: _cell(v) for k, v in row.items()}
        flags = cat.check_procedure(technique=rec.pop("technique"), hospital_level=rec.pop("level"),
                                    credential=rec.pop("credential"), record=rec)
        result[int(codes.loc[idx])] = flags or None
    return pd.Series([result[c] for c in codes.to_numpy()], index=df.index, dtype=object)


# ---- sites ------------------------------------------------------------------------------------
def load_sites(conn: Connection, hospitals: pd.DataFrame, rooms: pd.DataFrame, equipment: pd.DataFrame,
               operators: pd.DataFrame) -> None:
    """Hospitals, rooms, equipment and operators from frames keyed by code (new codes only)."""
    H, R, E, OP_ = Hospital.__table__, Room.__table__, Equipment.__table__, Operator.__table__
    _lock(conn, [H, R, E, OP_])
    have = _lookup(conn, H.c.id, H.c.code, hospitals["code"].tolist())
    new_h = hospitals[~hospitals["code"].isin(list(have))].copy()
    new_h["id"] = np.arange(len(new_h)) + _next_id(conn, H)
    new_h["created_at"] = pd.Timestamp.now("UTC").tz_localize(None).to_pydatetime()
    write_rows(conn, H, new_h)
    hid = {**have, **dict(zip(new_h["code"], new_h["id"], strict=True))}
    rr = rooms[rooms["hospital_code"].isin(new_h["code"])].copy()
    rr["hospital_id"] = rr["hospital_code"].map(hid)
    rr["id"] = np.arange(len(rr)) + _next_id(conn, R)
    write_rows(conn, R, rr)
    room_id = {(c, n): i for c, n, i in zip(rr["hospital_code"], rr["name"], rr["id"], strict=True)}
    ee = equipment[equipment["hospital_code"].isin(new_h["code"])].copy()
    ee["room_id"] = [room_id[(c, n)] for c, n in zip(ee["hospital_code"], ee["room_name"], strict=True)]
    ee["id"] = np.arange(len(ee)) + _next_id(conn, E)
    write_rows(conn, E, ee)
    have_o = _lookup(conn, OP_.c.id, OP_.c.code, operators["code"].tolist())
    oo = operators[~operators["code"].isin(list(have_o))].copy()
    unknown = sorted(set(oo["hospital_code"]) - set(hid))
    if unknown:
        raise InputError(f"operators refer to unknown hospitals: {', '.join(unknown[:5])}", field="hospital_code")
    oo["hospital_id"] = oo["hospital_code"].map(hid)
    oo["id"] = np.arange(len(oo)) + _next_id(conn, OP_)
    write_rows(conn, OP_, oo)
    _fix_sequences(conn, [H, R, E, OP_])


# ---- procedures -------------------------------------------------------------------------------
def insert_procedures(conn: Connection, frame: pd.DataFrame, adverse_events: pd.DataFrame | None = None,
                      *, actor: str = "system", source: str = "bulk") -> dict[str, int]:
    """Write a flat procedure frame (procedure + outcome columns, codes for hospital/operator).

    Rows whose UID is already stored are skipped (imports are idempotent). Unknown hospital or
    operator codes raise InputError before anything is written. Returns counts.
    """
    P, Pa, Oc, PO, AE = (Procedure.__table__, Patient.__table__, Outcome.__table__,
                         ProcedureOperator.__table__, AdverseEvent.__table__)
    H, OP_ = Hospital.__table__, Operator.__table__
    _lock(conn, [P, Pa, AE])
    cat = load_catalogue()
    df = frame.reset_index(drop=True)
    existing = _lookup(conn, P.c.id, P.c.uid, df["uid"].tolist())
    skipped = int(df["uid"].isin(list(existing)).sum())
    df = df[~df["uid"].isin(list(existing))].reset_index(drop=True)
    if df.empty:
        return {"procedures": 0, "skipped": skipped, "adverse_events": 0, "patients": 0}
    hosp = {r.code: r for r in conn.execute(select(H.c.code, H.c.id, H.c.level).where(
        H.c.code.in_(df["hospital_code"].unique().tolist())))}
    ops = {r.code: r for r in conn.execute(select(OP_.c.code, OP_.c.id, OP_.c.hospital_id, OP_.c.credential).where(
        OP_.c.code.in_(df["operator_code"].unique().tolist())))}
    for col, known in (("hospital_code", hosp), ("operator_code", ops)):
        missing = sorted(set(df[col]) - set(known))
        if missing:
            raise InputError(f"unknown {col.split('_')[0]} code(s): {', '.join(missing[:5])}", field=col)
    unknown_t = sorted(set(df["technique"]) - set(cat.techniques))
    if unknown_t:
        raise InputError(f"unknown technique(s): {', '.join(unknown_t[:5])}", field="technique")
    # patients
    keys = df["patient_key"].unique().tolist()
    pat = _lookup(conn, Pa.c.id, Pa.c.pseudo_key, keys)
    new_keys = [k for k in keys if k not in pat]
    first = df.drop_duplicates("patient_key").set_index("patient_key")
    new_p = pd.DataFrame({"pseudo_key": new_keys})
    new_p["id"] = np.arange(len(new_p)) + _next_id(conn, Pa)
    for c in ("birth_year", "sex"):
        if c in first:
            new_p[c] = first[c].reindex(new_keys).to_numpy()
    write_rows(conn, Pa, new_p)
    pat.update(zip(new_p["pseudo_key"], new_p["id"], strict=True))
    # procedures
    out = pd.DataFrame({c: df[c] for c in PROCEDURE_FIELDS if c in df})
    out["id"] = np.arange(len(df)) + _next_id(conn, P)
    out["patient_id"] = df["patient_key"].map(pat)
    out["hospital_id"] = df["hospital_code"].map(lambda c: hosp[c].id)
    out["primary_operator_id"] = df["operator_code"].map(lambda c: ops[c].id)
    wrong = out["primary_operator_id"].map({o.id: o.hospital_id for o in ops.values()}) != out["hospital_id"]
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        raise InputError(f"operator {df['operator_code'][i]!r} does not belong to hospital {df['hospital_code'][i]!r}",
                         field="operator_code")
    out["diagnosis_code"] = diagnosis_codes(df)
    df = df.assign(diagnosis_code=out["diagnosis_code"])
    tech = df["technique"].map(cat.techniques)
    out["category"] = tech.map(lambda t: t.category)
    if "target_organ" not in out:
        out["target_organ"] = tech.map(lambda t: None if t.organ == "any" else t.organ)
    if "emergency" in out:
        out["emergency"] = out["emergency"].fillna(False)
    else:
        out["emergency"] = False
    flags = flag_frame(df, df["hospital_code"].map(lambda c: hosp[c].level), df["operator_code"].map(lambda c: ops[c].credential))
    checks = _sop_checks(df)
    if checks is not None:  # block-level SOP deviations are flagged (with the reason), never dropped
        extra = [sop_check_flags(c, t, r) for c, t, r in zip(checks, df["technique"], _reasons(df), strict=True)]
        flags = pd.Series([(list(f or []) + e) or None for f, e in zip(flags, extra, strict=True)], index=flags.index,
                          dtype=object)
    out["flags"] = flags
    out["n_flags"] = flags.map(lambda f: len(f) if f else 0)
    out["created_at"] = pd.Timestamp.now("UTC").tz_localize(None).to_pydatetime()
    write_rows(conn, P, out)
    oc = pd.DataFrame({c: df[c] for c in OUTCOME_FIELDS if c in df})
    oc["procedure_id"] = out["id"].to_numpy()
    write_rows(conn, Oc, oc)
    write_rows(conn, PO, pd.DataFrame({"procedure_id": out["id"], "operator_id": out["primary_operator_id"], "role": "primary"}))
    n_ae = 0
    if adverse_events is not None and not adverse_events.empty:
        pid = dict(zip(df["uid"], out["id"], strict=True))
        ae = adverse_events[adverse_events["procedure_uid"].isin(list(pid))].copy()
        for c, default in (("resolved_in_session", False), ("therapy", "none"), ("extra_stay_h", 0.0), ("icu", False),
                           ("life_threatening", False), ("sequelae", "none"), ("death", False)):
            ae[c] = ae[c].fillna(default) if c in ae else default
        ae = pd.concat([ae, grade_frame(ae)], axis=1)
        ae["procedure_id"] = ae["procedure_uid"].map(pid)
        ae["id"] = np.arange(len(ae)) + _next_id(conn, AE)
        n_ae = write_rows(conn, AE, ae)
    if checks is not None:
        _write_sop_checks(conn, checks, _reasons(df), out["id"].tolist())
    _fix_sequences(conn, [Pa, P, AE, SOPCheckRow.__table__, SOPDeviationRow.__table__])
    audit_bulk(conn, actor=actor, table_name="procedures", summary={
        "source": source, "procedures": len(out), "skipped_existing": skipped, "adverse_events": n_ae,
        "new_patients": len(new_p), "first_uid": str(df["uid"].iloc[0]), "last_uid": str(df["uid"].iloc[-1])})
    return {"procedures": len(out), "skipped": skipped, "adverse_events": n_ae, "patients": len(new_p)}


def _sop_checks(df: pd.DataFrame) -> list[SOPCheck | None] | None:
    """The SOP check of each row (a dict from ``ProcedureIn.model_dump`` or a SOPCheck), None if no row has one."""
    if "sop_check" not in df or df["sop_check"].isna().all():
        return None
    return [None if c is None or (isinstance(c, float) and c != c) else SOPCheck.model_validate(c)
            for c in df["sop_check"].tolist()]


def _reasons(df: pd.DataFrame) -> list[str | None]:
    if "sop_override_reason" not in df:
        return [None] * len(df)
    return [r if isinstance(r, str) else None for r in df["sop_override_reason"].tolist()]


def _write_sop_checks(conn: Connection, checks: list[SOPCheck | None], reasons: list[str | None], pids: list[int]) -> None:
    """The ``sop_checks`` and ``sop_deviations`` rows of the checks given (Core inserts, like the rest)."""
    C, D = SOPCheckRow.__table__, SOPDeviationRow.__table__
    rows, devs = [], []
    cid = _next_id(conn, C)
    for c, r, pid in zip(checks, reasons, pids, strict=True):
        if c is None:
            continue
        rows.append({"id": cid, "procedure_id": pid, **sop_check_fields(c, r)})
        devs += [{"sop_check_id": cid, **d} for d in sop_deviation_fields(c)]
        cid += 1
    write_rows(conn, C, pd.DataFrame(rows))
    if devs:
        dv = pd.DataFrame(devs)
        dv["id"] = np.arange(len(dv)) + _next_id(conn, D)
        write_rows(conn, D, dv)


def load_dataset(engine: Engine, dataset: Any, *, actor: str = "synthetic") -> dict[str, int]:
    """Store a ``phantom.registry_data.RegistryDataset`` (or any object with the same frames)."""
    with engine.begin() as conn:
        load_sites(conn, dataset.hospitals, dataset.rooms, dataset.equipment, dataset.operators)
        return insert_procedures(conn, dataset.procedures, dataset.adverse_events, actor=actor, source="synthetic")
