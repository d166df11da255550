"""CSV / Excel import of procedures: validate the whole file first, then write it in one transaction.

Every row is checked (pydantic schema, known technique, hospital and operator, operator of that
hospital, UID unique in the file) before anything is written; any problem gives a report of
(row, field, problem) and nothing from the file is stored. Row numbers are those a spreadsheet
shows: the header is row 1, the first record row 2. Re-importing a file skips UIDs already stored.

Columns: the flat fields of :class:`schemas.ProcedureIn` and :class:`schemas.OutcomeIn`, plus
optional ``lesion_sizes_mm`` ("12;25") and one adverse event per row as ``ae_what``,
``ae_therapy``, ``ae_extra_stay_h``, ``ae_icu``, ``ae_life_threatening``, ``ae_sequelae``,
``ae_death``, ``ae_resolved_in_session``, ``ae_onset_days``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, select

from openir.core.errors import InputError

from .bulk import insert_procedures
from .catalogue import load_catalogue
from .models import Hospital, Operator
from .schemas import AdverseEventIn, OutcomeIn, ProcedureIn

OUTCOME_COLS = set(OutcomeIn.model_fields)
AE_PREFIX = "ae_"
LIST_COLS = {"assistant_codes", "devices", "consumables"}


class RowProblem(BaseModel):
    row: int
    field: str
    problem: str


class ImportReport(BaseModel):
    source: str
    rows: int
    problems: list[RowProblem]
    stored: dict[str, int] = {}

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self, limit: int = 50) -> str:
        lines = [f"{self.source}: {self.rows} rows, {len(self.problems)} problem(s)"]
        lines += [f"  row {p.row}, {p.field}: {p.problem}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


class ImportValidationError(InputError):
    """Raised when a file has problems; ``report`` lists them all. Nothing was stored."""

    def __init__(self, report: ImportReport):
        self.report = report
        first = report.problems[0]
        super().__init__(f"{len(report.problems)} problem(s), nothing imported; first: row {first.row}, "
                         f"{first.field}: {first.problem}", source=report.source, field=first.field)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Excel file as strings (empty cells -> None), so validation sees what was typed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            df = pd.read_excel(path, dtype=str)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise InputError(f"cannot read table ({exc.__class__.__name__}: {exc})", source=path) from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df.astype(object).where(df.notna(), None)


def _row_to_model(rec: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    outcome: dict[str, Any] = {}
    ae: dict[str, Any] = {}
    for k, v in rec.items():
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if k.startswith(AE_PREFIX):
            ae[k[len(AE_PREFIX):]] = v
        elif k in OUTCOME_COLS:
            outcome[k] = v
        elif k == "lesion_sizes_mm":
            data["lesions"] = [{"size_mm": s} for s in str(v).replace(",", ";").split(";") if s.strip()]
        elif k in LIST_COLS:
            data[k] = [s.strip() for s in str(v).split(";") if s.strip()]
        else:
            data[k] = v
    data["outcome"] = outcome
    if ae:
        data["adverse_events"] = [ae]
    return data


def validate_rows(df: pd.DataFrame, engine: Engine | None = None, source: str = "") -> tuple[list[ProcedureIn], ImportReport]:
    """Validate every row; returns the parsed records and the report (problems, if any)."""
    cat = load_catalogue()
    known = set(ProcedureIn.model_fields) | OUTCOME_COLS | {"lesion_sizes_mm"} | {
        AE_PREFIX + k for k in AdverseEventIn.model_fields}
    problems: list[RowProblem] = []
    for c in df.columns:
        if c not in known:
            problems.append(RowProblem(row=1, field=c, problem="unknown column"))
    hosp: dict[str, str] = {}
    ops: dict[str, tuple[str, str]] = {}
    if engine is not None:
        with engine.connect() as conn:
            hosp = {c: lv for c, lv in conn.execute(select(Hospital.code, Hospital.level))}
            ops = {c: (h, cr) for c, h, cr in conn.execute(
                select(Operator.code, Hospital.code, Operator.credential).join(Hospital, Hospital.id == Operator.hospital_id))}
    parsed: list[ProcedureIn] = []
    seen: dict[str, int] = {}
    records = df[[c for c in df.columns if c in known]].to_dict("records")
    for i, rec in enumerate(records):
        row = i + 2
        try:
            p = ProcedureIn.model_validate(_row_to_model(rec))
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(x) for x in err["loc"]]
                if loc[:1] == ["outcome"]:
                    loc = loc[1:]
                elif loc[:1] == ["adverse_events"]:
                    loc = [AE_PREFIX + loc[-1]]
                elif loc[:1] == ["lesions"]:
                    loc = ["lesion_sizes_mm"]
                problems.append(RowProblem(row=row, field=loc[0] if loc else "?", problem=err["msg"]))
            continue
        if p.technique not in cat.techniques:
            problems.append(RowProblem(row=row, field="technique", problem=f"unknown technique {p.technique!r}"))
        if engine is not None:
            if p.hospital_code not in hosp:
                problems.append(RowProblem(row=row, field="hospital_code", problem=f"unknown hospital {p.hospital_code!r}"))
            if p.operator_code not in ops:
                problems.append(RowProblem(row=row, field="operator_code", problem=f"unknown operator {p.operator_code!r}"))
            elif ops[p.operator_code][0] != p.hospital_code:
                problems.append(RowProblem(row=row, field="operator_code",
                                           problem=f"operator {p.operator_code!r} belongs to {ops[p.operator_code][0]!r}"))
        if p.uid in seen:
            problems.append(RowProblem(row=row, field="uid", problem=f"duplicate of row {seen[p.uid]}"))
        seen.setdefault(p.uid, row)
        parsed.append(p)
    return parsed, ImportReport(source=source, rows=len(records), problems=problems)


def records_to_frames(records: list[ProcedureIn]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validated records as the flat procedure frame and the adverse-event frame of bulk.py."""
    rows, aes = [], []
    for p in records:
        d = p.model_dump(exclude={"outcome", "adverse_events", "lesions", "assistant_codes"})
        d.update(p.outcome.model_dump())
        sizes = [les.size_mm for les in p.lesions]
        d["lesions"] = [les.model_dump() for les in p.lesions] or None
        d["n_lesions"] = len(sizes) or None
        d["max_lesion_mm"] = max(sizes) if sizes else None
        for k in ("devices", "consumables"):
            d[k] = d[k] or None
        rows.append(d)
        aes += [{"procedure_uid": p.uid, **ae.model_dump()} for ae in p.adverse_events]
    return pd.DataFrame(rows), pd.DataFrame(aes)


def import_procedures(engine: Engine, path: str | Path, *, actor: str = "import") -> ImportReport:
    """Validate ``path`` completely, then store it in one transaction (or raise, storing nothing)."""
    df = read_table(Path(path))
    records, report = validate_rows(df, engine, source=str(path))
    if report.problems:
        raise ImportValidationError(report)
    if not records:
        return report
    frame, ae = records_to_frames(records)
    with engine.begin() as conn:
        report.stored = insert_procedures(conn, frame, ae, actor=actor, source=str(path))
    return report


def import_procedures_orm(engine: Engine, path: str | Path, *, actor: str = "import") -> int:
    """Naive baseline (benchmarks only): validate, then one ORM ``record_procedure`` per row."""
    from .db import session_scope
    from .store import record_procedure

    df = read_table(Path(path))
    records, report = validate_rows(df, engine, source=str(path))
    if report.problems:
        raise ImportValidationError(report)
    with session_scope(engine, actor) as s:
        for p in records:
            record_procedure(s, p)
    return len(records)


def write_import_csv(procedures: pd.DataFrame, adverse_events: pd.DataFrame | None, path: str | Path) -> Path:
    """Write a flat procedure frame (e.g. synthetic data) in the import format (first AE per row)."""
    df = procedures.copy()
    if "max_lesion_mm" in df:
        df["lesion_sizes_mm"] = df.pop("max_lesion_mm")
    df = df.drop(columns=[c for c in ("n_lesions",) if c in df])
    if adverse_events is not None and not adverse_events.empty:
        first = adverse_events.drop_duplicates("procedure_uid").set_index("procedure_uid")
        first = first.drop(columns=[c for c in first.columns if c not in AdverseEventIn.model_fields])
        first.columns = [AE_PREFIX + c for c in first.columns]
        df = df.join(first, on="uid")
    for c in df.columns:
        if df[c].dtype == object:
            continue
        if df[c].dtype.kind == "f" and c in ("death_days", "age_years", "asa_class"):
            df[c] = df[c].astype("Int64")
    path = Path(path)
    df.to_csv(path, index=False)
    return path
