"""Cost import: settlement-list items per procedure from CSV/Excel, validated whole, stored in one transaction.

One row per cost item, keyed by the procedure's UID; the header values (DRG code, CHS-DRG version,
length of stay, settled payment) may be repeated on every row of a procedure but must agree.
Files are read by the procedure importer's reader (:func:`openir.registry.importer.read_table`:
UTF-8 with or without BOM, GB18030, Excel, comment rows, full-width digits), headers in English or
Chinese, labels such as 耗材 / 国产 / 进口 mapped through ``data/drg.yaml``. A blank DRG code takes
the technique's default group of ``drg.yaml``. Re-importing a procedure replaces its cost data
(idempotent); any problem stores nothing.

Example::

    openir registry import-costs 费用明细.csv
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, select

from openir.core.errors import InputError

from .audit import audit_bulk
from .bulk import _lookup, write_rows
from .drg import DrgConfig, load_drg_config
from .importer import ImportReport, ImportValidationError, RowProblem, read_table
from .models import CostItem, Procedure, ProcedureCost

HEADER_FIELDS = ["drg_code", "drg_version", "length_of_stay_days", "payment_cny"]
ITEM_FIELDS = ["category", "name", "origin", "nhsa_code", "quantity", "amount_cny"]
ALIASES = {
    "uid": "procedure_uid", "procedure uid": "procedure_uid", "手术编号": "procedure_uid", "病例编号": "procedure_uid",
    "操作编号": "procedure_uid", "drg": "drg_code", "drg编码": "drg_code", "drg组": "drg_code", "分组版本": "drg_version",
    "住院天数": "length_of_stay_days", "los": "length_of_stay_days", "医保支付": "payment_cny",
    "结算金额": "payment_cny", "医保结算金额": "payment_cny", "费用类别": "category", "类别": "category",
    "项目名称": "name", "名称": "name", "产地": "origin", "国产/进口": "origin", "来源": "origin",
    "医保耗材编码": "nhsa_code", "医保编码": "nhsa_code", "数量": "quantity", "金额": "amount_cny", "amount": "amount_cny",
}
_CHUNK = 5000


def _canonical(col: str) -> str:
    return ALIASES.get(col.strip().lower(), ALIASES.get(col.strip(), col.strip()))


def _number(v: str | None, *, positive_or_zero: bool = True) -> float | None | str:
    """A number from a cell, None when blank, or an error message."""
    if v is None:
        return None
    try:
        x = float(str(v).replace(",", "").replace("¥", "").replace("元", "").strip())
    except ValueError:
        return f"not a number: {v!r}"
    if not math.isfinite(x):
        return f"not a finite number: {v!r}"
    if positive_or_zero and x < 0:
        return f"must not be negative: {v!r}"
    return x


def validate_costs(df: pd.DataFrame, techniques: dict[str, str] | None, config: DrgConfig,
                   source: str = "") -> tuple[pd.DataFrame, pd.DataFrame, ImportReport]:
    """Check every row; returns (headers, items, report). ``techniques``: uid -> technique of the
    stored procedures (None: skip the existence check)."""
    df = df.rename(columns={c: _canonical(c) for c in df.columns})
    problems: list[RowProblem] = []
    known = {"procedure_uid", *HEADER_FIELDS, *ITEM_FIELDS}
    for c in df.columns:
        if c not in known:
            problems.append(RowProblem(row=1, field=c, problem="unknown column"))
    for c in ("procedure_uid", "category", "amount_cny"):
        if c not in df.columns:
            problems.append(RowProblem(row=1, field=c, problem="required column missing"))
    if problems:
        return pd.DataFrame(), pd.DataFrame(), ImportReport(source=source, rows=len(df), problems=problems)
    df = df.reindex(columns=["procedure_uid", *HEADER_FIELDS, *ITEM_FIELDS]).astype(object)
    df = df.where(df.notna(), None)  # columns the file lacks are blank, not NaN
    labels = config.labels
    items: list[dict] = []
    heads: dict[str, dict] = {}
    first_row: dict[str, dict[str, int]] = {}
    for row, rec in zip(df.index.tolist(), df.to_dict("records"), strict=True):
        uid = rec["procedure_uid"]
        if uid is None:
            problems.append(RowProblem(row=row, field="procedure_uid", problem="required"))
            continue
        if techniques is not None and uid not in techniques:
            problems.append(RowProblem(row=row, field="procedure_uid", problem=f"unknown procedure {uid!r}"))
        item: dict = {"procedure_uid": uid}
        cat = rec["category"]
        cat = labels.get(cat, cat.lower()) if cat is not None else None
        if cat is None:
            problems.append(RowProblem(row=row, field="category", problem="required"))
        elif cat not in config.categories:
            problems.append(RowProblem(row=row, field="category",
                                       problem=f"unknown category {rec['category']!r} (one of {', '.join(config.categories)})"))
        item["category"] = cat
        origin = rec["origin"]
        origin = labels.get(origin, origin.lower()) if origin is not None else None
        if origin is not None and origin not in config.origins:
            problems.append(RowProblem(row=row, field="origin", problem=f"unknown origin {rec['origin']!r} (domestic/国产 or imported/进口)"))
        item["origin"] = origin
        for f in ("amount_cny", "quantity"):
            v = _number(rec[f])
            if isinstance(v, str):
                problems.append(RowProblem(row=row, field=f, problem=v))
                v = None
            elif v is None and f == "amount_cny":
                problems.append(RowProblem(row=row, field=f, problem="required"))
            item[f] = v
        item["name"], item["nhsa_code"] = rec["name"], rec["nhsa_code"]
        for f, limit in (("name", 200), ("nhsa_code", 40)):
            if item[f] is not None and len(item[f]) > limit:
                problems.append(RowProblem(row=row, field=f, problem=f"longer than {limit} characters"))
        items.append(item)
        head = heads.setdefault(uid, {"procedure_uid": uid})
        for f in HEADER_FIELDS:
            v = rec[f]
            if v is None:
                continue
            if f in ("length_of_stay_days", "payment_cny"):
                v = _number(v)
                if isinstance(v, str):
                    problems.append(RowProblem(row=row, field=f, problem=v))
                    continue
            elif len(v) > 24:
                problems.append(RowProblem(row=row, field=f, problem="longer than 24 characters"))
                continue
            if f in head and head[f] != v:
                problems.append(RowProblem(row=row, field=f, problem=f"{v!r} differs from {head[f]!r} given for "
                                           f"{uid} in row {first_row[uid][f]}"))
                continue
            head[f] = v
            first_row.setdefault(uid, {}).setdefault(f, row)
    report = ImportReport(source=source, rows=len(df), problems=problems)
    h = pd.DataFrame(list(heads.values())).reindex(columns=["procedure_uid", *HEADER_FIELDS]).astype(object)
    if techniques is not None and len(h):
        blank = h["drg_code"].isna()
        h.loc[blank, "drg_code"] = h.loc[blank, "procedure_uid"].map(lambda u: config.technique_drg.get(techniques.get(u, "")))
    it = pd.DataFrame(items).reindex(columns=["procedure_uid", *ITEM_FIELDS])
    if len(h):
        tot = it.groupby("procedure_uid", sort=False)["amount_cny"].sum(min_count=1)
        h["total_cost_cny"] = h["procedure_uid"].map(tot).fillna(0.0).round(2)
    return h, it, report


def store_costs(conn: Connection, headers: pd.DataFrame, items: pd.DataFrame, *, actor: str = "import",
                source: str = "") -> dict[str, int]:
    """Replace the cost data of the procedures in ``headers`` (keyed by ``procedure_uid``) inside the
    caller's transaction; unknown UIDs raise InputError. Returns counts written."""
    if headers.empty:
        return {"procedure_costs": 0, "cost_items": 0}
    uids = headers["procedure_uid"].astype(str).tolist()
    ids = _lookup(conn, Procedure.id, Procedure.uid, uids)
    missing = [u for u in uids if u not in ids]
    if missing:
        raise InputError(f"unknown procedure(s) {missing[:5]}", source=source, field="procedure_uid")
    pid = list(ids.values())
    for i in range(0, len(pid), _CHUNK):
        part = pid[i:i + _CHUNK]
        conn.execute(delete(CostItem).where(CostItem.procedure_id.in_(part)))
        conn.execute(delete(ProcedureCost).where(ProcedureCost.procedure_id.in_(part)))
    h = headers.copy()
    h["procedure_id"] = h.pop("procedure_uid").astype(str).map(ids)
    h["source"] = str(source)[:200] or None
    it = items.copy()
    it["procedure_id"] = it.pop("procedure_uid").astype(str).map(ids)
    for c in ("category", "name", "origin", "nhsa_code"):
        if c in it:
            it[c] = it[c].astype(object).where(it[c].notna(), None)
    it = it.astype({"amount_cny": float})
    n_h = write_rows(conn, ProcedureCost.__table__, h)  # type: ignore[arg-type]
    n_i = write_rows(conn, CostItem.__table__, it)  # type: ignore[arg-type]
    audit_bulk(conn, actor=actor, table_name="procedure_costs",
               summary={"source": str(source), "procedure_costs": n_h, "cost_items": n_i,
                        "first_uid": uids[0], "last_uid": uids[-1]})
    return {"procedure_costs": n_h, "cost_items": n_i}


def import_costs(engine: Engine, path: str | Path, *, actor: str = "import", encoding: str | None = None,
                 config: DrgConfig | None = None) -> ImportReport:
    """Validate ``path`` completely, then replace the listed procedures' cost data in one transaction."""
    config = config or load_drg_config()
    df = read_table(Path(path), encoding)
    uids = df[[c for c in df.columns if _canonical(c) == "procedure_uid"][0]].dropna().unique().tolist() \
        if any(_canonical(c) == "procedure_uid" for c in df.columns) else []
    tech: dict[str, str] = {}
    with engine.connect() as conn:
        for i in range(0, len(uids), _CHUNK):
            tech.update(dict(conn.execute(select(Procedure.uid, Procedure.technique)
                                          .where(Procedure.uid.in_(uids[i:i + _CHUNK]))).all()))
    heads, items, report = validate_costs(df, tech, config, source=str(path))
    if report.problems:
        raise ImportValidationError(report)
    with engine.begin() as conn:
        report.stored = store_costs(conn, heads, items, actor=actor, source=str(path))
    return report


def store_cost_dataset(engine: Engine, headers: pd.DataFrame, items: pd.DataFrame, *, actor: str = "seed",
                       source: str = "synthetic") -> dict[str, int]:
    """Store generated cost frames (e.g. :func:`openir.phantom.registry_costs.generate_costs`) in one transaction."""
    h = headers.reindex(columns=["procedure_uid", "drg_code", "drg_version", "length_of_stay_days",
                                 "total_cost_cny", "payment_cny"])
    it = items.reindex(columns=["procedure_uid", *ITEM_FIELDS])
    it = it.assign(quantity=pd.to_numeric(it["quantity"], errors="coerce"),
                   amount_cny=pd.to_numeric(it["amount_cny"], errors="coerce").fillna(0.0))
    h = h.assign(payment_cny=pd.to_numeric(h["payment_cny"], errors="coerce"))
    with engine.begin() as conn:
        return store_costs(conn, h, it, actor=actor, source=source)


def write_costs_csv(headers: pd.DataFrame, items: pd.DataFrame, path: str | Path, encoding: str = "utf-8") -> Path:
    """Cost frames as the import file (one row per item, header values repeated)."""
    df = items.merge(headers.drop(columns=["total_cost_cny"], errors="ignore"), on="procedure_uid", how="left")
    df = df.reindex(columns=["procedure_uid", *HEADER_FIELDS, *ITEM_FIELDS]).astype(object)
    df = df.where(df.notna(), None)  # columns the file lacks are blank, not NaN
    df["payment_cny"] = df["payment_cny"].astype(float).where(np.isfinite(df["payment_cny"].astype(float)))
    path = Path(path)
    df.to_csv(path, index=False, encoding=encoding)
    return path
