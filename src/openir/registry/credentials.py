"""Learning curves to credentials: who is due for what.

Per operator: cases per technique and tier (as primary operator, assisted cases counted apart),
the risk-adjusted CUSUM of each technique (:func:`qc.learning_curves`) with the case number at
which competence was shown, progress towards the volumes each tier requires (``tiers.yaml``
``training_volume`` / ``annual_volume``, from the national interventional-technique norms) and the
refresher-training records (table ``operator_training``) against the interval each tier requires.
An operator is *due* when a refresher is overdue, a required volume is not reached, or a CUSUM
chart has signalled. Counts are one grouped SQL query, so a 1 M-procedure registry answers in
about the time of one scan.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine, and_, func, select

from openir.core.errors import InputError

from .audit import audit_bulk
from .catalogue import load_catalogue
from .dates import parse_date
from .models import Hospital, Operator, OperatorTraining, Procedure, ProcedureOperator
from .qc import LearningCurve, learning_curves

DueKind = Literal["refresher", "training_volume", "annual_volume", "cusum"]


class TechniqueCount(BaseModel):
    technique: str
    tier: str
    primary: int
    assisted: int


class CurveSummary(BaseModel):
    """One technique's RA-CUSUM: cases, failures, first alarm and cases to competence (None = not yet)."""

    technique: str
    n: int
    failures: int
    h: float
    signal_at: int | None
    h_competence: float
    cases_to_competence: int | None


class VolumeCheck(BaseModel):
    tier: str
    kind: Literal["training", "annual"]
    required: int
    done: int
    met: bool
    source: str
    verified: bool


class Due(BaseModel):
    kind: DueKind
    detail: str  # the tier or technique concerned ('' for refresher)
    message: str


class OperatorCredentials(BaseModel):
    operator: str
    hospital: str
    credential: str
    tiers: list[str]
    counts: list[TechniqueCount]
    primary_by_tier: dict[str, int]
    assisted_by_tier: dict[str, int]
    curves: list[CurveSummary]
    volumes: list[VolumeCheck]
    last_training: dt.date | None
    training_hours: float
    refresher_interval_months: int | None
    refresher_due_on: dt.date | None
    due: list[Due]


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus whole months, clamped to the month's last day (2025-01-31 + 1 -> 2025-02-28)."""
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(d.day, last))


def case_counts(engine: Engine, *, hospital: str | None = None, as_of: dt.date | None = None) -> pd.DataFrame:
    """Cases per (operator, technique) up to ``as_of``: ``primary``, ``assisted`` and ``primary_12m``
    (primary cases in the 365 days ending on ``as_of``). One grouped query."""
    as_of = as_of or dt.date.today()
    start = as_of - dt.timedelta(days=365)
    PO, P, Op, H = ProcedureOperator, Procedure, Operator, Hospital
    primary = PO.role == "primary"
    q = (select(Op.code.label("operator"), P.technique,
                func.count().filter(primary).label("primary"),
                func.count().filter(PO.role != "primary").label("assisted"),
                func.count().filter(and_(primary, P.date > start)).label("primary_12m"))
         .select_from(PO).join(P, P.id == PO.procedure_id).join(Op, Op.id == PO.operator_id)
         .where(P.date <= as_of).group_by(Op.code, P.technique))
    if hospital:
        q = q.join(H, H.id == Op.hospital_id).where(H.code == hospital)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(q)]
    return pd.DataFrame(rows, columns=["operator", "technique", "primary", "assisted", "primary_12m"])


def _operators(engine: Engine, hospital: str | None) -> pd.DataFrame:
    q = select(Operator.code, Hospital.code, Operator.credential).join(Hospital, Hospital.id == Operator.hospital_id)
    if hospital:
        q = q.where(Hospital.code == hospital)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(q.order_by(Hospital.code, Operator.code))]
    return pd.DataFrame(rows, columns=["operator", "hospital", "credential"])


def _training(engine: Engine, hospital: str | None, as_of: dt.date) -> dict[str, tuple[dt.date, float]]:
    T, Op, H = OperatorTraining, Operator, Hospital
    q = (select(Op.code, func.max(T.date), func.sum(T.hours)).join(Op, Op.id == T.operator_id)
         .where(T.date <= as_of).group_by(Op.code))
    if hospital:
        q = q.join(H, H.id == Op.hospital_id).where(H.code == hospital)
    with engine.connect() as conn:
        return {r[0]: (r[1], float(r[2] or 0.0)) for r in conn.execute(q)}


def credentials_report(engine: Engine, *, hospital: str | None = None, as_of: dt.date | None = None,
                       curves: list[LearningCurve] | None = None, due_only: bool = False) -> list[OperatorCredentials]:
    """Every operator (of ``hospital``, else all) with counts, curves, volume progress and what is due.

    ``curves``: learning curves already computed (e.g. the dashboard's cached QC); else computed here.
    An unknown ``hospital`` raises InputError.
    """
    as_of = as_of or dt.date.today()
    ops = _operators(engine, hospital)
    if hospital and ops.empty:
        with engine.connect() as conn:
            if conn.scalar(select(Hospital.id).where(Hospital.code == hospital)) is None:
                raise InputError(f"unknown hospital {hospital!r}", field="hospital")
    cat = load_catalogue()
    rules = cat.tiers
    counts = case_counts(engine, hospital=hospital, as_of=as_of).sort_values(["operator", "technique"])
    cells: dict[str, list[TechniqueCount]] = {}
    sums: dict[str, dict[str, dict[str, int]]] = {}  # operator -> primary/assisted/primary_12m -> tier -> n
    for op, tech, n_p, n_a, n_y in counts.itertuples(index=False, name=None):  # one pass in Python: a few thousand cells
        tier = cat.techniques[tech].tier if tech in cat.techniques else "unknown"
        cells.setdefault(op, []).append(  # trusted values from SQL: no validation per cell
            TechniqueCount.model_construct(technique=tech, tier=tier, primary=int(n_p), assisted=int(n_a)))
        agg = sums.setdefault(op, {"primary": {}, "assisted": {}, "primary_12m": {}})
        for key, n in (("primary", n_p), ("assisted", n_a), ("primary_12m", n_y)):
            if n:
                agg[key][tier] = agg[key].get(tier, 0) + int(n)
    if curves is None:
        curves = learning_curves(engine) if not ops.empty else []
    own = set(ops["operator"])
    curves_of: dict[str, list[LearningCurve]] = {}
    for c in curves:
        if c.operator in own:
            curves_of.setdefault(c.operator, []).append(c)
    trained = _training(engine, hospital, as_of)
    out = []
    for op, hosp, cred in ops.itertuples(index=False, name=None):
        allowed = list(rules.credentials[cred].allowed) if cred in rules.credentials else []
        agg = sums.get(op, {"primary": {}, "assisted": {}, "primary_12m": {}})
        prim_tier, asst_tier, year_tier = agg["primary"], agg["assisted"], agg["primary_12m"]
        total, total_12m = sum(prim_tier.values()), sum(year_tier.values())
        volumes, due = [], []
        for kind, table, per_tier, all_ in (("training", rules.training_volume, prim_tier, total),
                                            ("annual", rules.annual_volume, year_tier, total_12m)):
            for tier in allowed:
                v = table.get(tier)  # type: ignore[call-overload]
                if v is None:
                    continue
                done = all_ if v.of == "all" else int(per_tier.get(tier, 0))
                volumes.append(VolumeCheck(tier=tier, kind=kind, required=v.value, done=done, met=done >= v.value,
                                           source=v.source, verified=v.verified))
                if done < v.value:
                    what = "all tiers" if v.of == "all" else f"{tier} tier"
                    span = "" if kind == "training" else " in the last 12 months"
                    due.append(Due(kind=f"{kind}_volume", detail=tier,  # type: ignore[arg-type]
                                   message=f"{done} of {v.value} cases as primary operator ({what}){span}"))
        intervals = [rules.refresher_interval_months[t].value for t in allowed if t in rules.refresher_interval_months]  # type: ignore[index]
        interval = min(intervals) if intervals else None
        last, hours = trained.get(op, (None, 0.0))
        due_on = add_months(last, interval) if (interval and last) else None
        if interval and (last is None or due_on is None or due_on <= as_of):
            due.append(Due(kind="refresher", detail="",
                           message="no refresher training recorded" if last is None else
                           f"refresher due since {due_on.isoformat()} (last {last.isoformat()}, every {interval} months)"))
        summaries = [CurveSummary(technique=c.technique, n=c.n, failures=c.failures, h=c.h, signal_at=c.signal_at, h_competence=c.h_competence,
                                  cases_to_competence=c.cases_to_competence)
                     for c in sorted(curves_of.get(op, []), key=lambda c: c.technique)]
        for c in summaries:
            if c.signal_at is not None:
                due.append(Due(kind="cusum", detail=c.technique,
                               message=f"RA-CUSUM alarm at case {c.signal_at} of {c.n} ({c.failures} failures)"))
        if due_only and not due:
            continue
        out.append(OperatorCredentials(
            operator=op, hospital=hosp, credential=cred, tiers=allowed,
            counts=cells.get(op, []), primary_by_tier=prim_tier, assisted_by_tier=asst_tier,
            curves=summaries, volumes=volumes, last_training=last, training_hours=hours,
            refresher_interval_months=interval, refresher_due_on=due_on, due=due))
    return out


# ---- training records (CSV / Excel import) ------------------------------------------------------
TRAINING_COLUMNS = {
    "operator": ("operator", "operator_code", "操作者", "操作者编码", "医师编码", "术者编码"),
    "date": ("date", "日期", "培训日期"),
    "course": ("course", "课程", "培训课程", "培训项目"),
    "hours": ("hours", "学时", "培训学时"),
    "provider": ("provider", "培训机构", "主办单位"),
    "certificate_id": ("certificate_id", "certificate", "证书编号", "证书号"),
}
REQUIRED = ("operator", "date", "course", "hours", "provider")


def read_training(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Training records from CSV/Excel (UTF-8, BOM, GB18030; English or Chinese headers), validated.

    Every problem is collected and reported at once as ``file row N [field]: ...``; nothing is
    returned half-valid. Columns: operator, date, course, hours, provider, certificate_id.
    """
    from .importer import decode_bytes

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            raw = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False)
        else:
            import io

            text, _ = decode_bytes(path.read_bytes(), encoding, path)
            raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read table ({exc.__class__.__name__}: {exc})", source=path) from None
    alias = {a.lower(): k for k, names in TRAINING_COLUMNS.items() for a in names}
    raw.columns = [alias.get(str(c).strip().lower(), str(c).strip()) for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(TRAINING_COLUMNS)}",
                         source=path, field=missing[0])
    if raw.empty:
        raise InputError("no training records in the file", source=path)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(raw.to_dict("records"), start=2):
        r: dict[str, Any] = {k: (str(rec.get(k) or "").strip() or None) for k in TRAINING_COLUMNS}
        for k in REQUIRED:
            if r[k] is None:
                problems.append(f"row {i} [{k}]: required")
        if r["date"]:
            try:
                r["date"] = parse_date(r["date"])
            except ValueError as exc:
                problems.append(f"row {i} [date]: {exc}")
        if r["hours"]:
            try:
                h = float(r["hours"])
                if not (h == h) or h <= 0 or h > 2000:
                    raise ValueError
                r["hours"] = h
            except ValueError:
                problems.append(f"row {i} [hours]: {r['hours']!r} is not a number of hours > 0")
        rows.append(r)
    if problems:
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InputError("; ".join(problems[:10]) + more, source=path)
    return pd.DataFrame(rows, columns=list(TRAINING_COLUMNS))


def import_training(engine: Engine, path: str | Path, *, encoding: str | None = None,
                    hospital: str | None = None, source: str | None = None, actor: str = "import") -> dict[str, int]:
    """Store the training records of ``path`` in one transaction (all or nothing); records already
    stored (same operator, date and course) are skipped. Unknown operator codes are an error, and so
    is an operator of another hospital when ``hospital`` is given (a hospital's own upload).
    ``source``: the name to give in messages (an uploaded file's name). The batch is audited with
    one ``bulk_import`` row (``actor``, file, counts)."""
    df = read_training(path, encoding=encoding) if source is None else _renamed(path, source, encoding)
    path = source or path
    with engine.begin() as conn:
        q = select(Operator.code, Operator.id).where(Operator.code.in_(df["operator"].unique().tolist()))
        if hospital:
            q = q.join(Hospital, Hospital.id == Operator.hospital_id).where(Hospital.code == hospital)
        ids = dict(conn.execute(q).all())
        unknown = sorted(set(df["operator"]) - set(ids))
        if unknown:
            rows = [str(i + 2) for i, v in enumerate(df["operator"]) if v in unknown][:10]
            where = f" of hospital {hospital}" if hospital else ""
            raise InputError(f"unknown operator code(s){where} {', '.join(unknown[:10])} (rows {', '.join(rows)})",
                             source=path, field="operator")
        have = set(conn.execute(select(OperatorTraining.operator_id, OperatorTraining.date, OperatorTraining.course)
                                .where(OperatorTraining.operator_id.in_(list(ids.values())))).all())
        new, seen = [], set(have)
        for r in df.to_dict("records"):
            key = (ids[r["operator"]], r["date"], r["course"])
            if key in seen:
                continue
            seen.add(key)
            new.append({"operator_id": key[0], "date": r["date"], "course": r["course"], "hours": r["hours"],
                        "provider": r["provider"], "certificate_id": r["certificate_id"]})
        if new:
            conn.execute(OperatorTraining.__table__.insert(), new)
        audit_bulk(conn, actor=actor, table_name="operator_training",
                   summary={"source": str(path), "imported": len(new), "skipped_existing": len(df) - len(new)})
    return {"imported": len(new), "skipped": len(df) - len(new)}


def _renamed(path: str | Path, source: str, encoding: str | None) -> pd.DataFrame:
    """read_training with messages naming ``source`` (the uploaded file's name), not a temporary path."""
    try:
        return read_training(path, encoding=encoding)
    except InputError as exc:
        raise InputError(exc.problem, source=source, field=exc.field) from None
