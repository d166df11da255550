"""CSV / Excel import of procedures: validate the whole file first, then write it in one transaction.

Files come as hospitals have them: UTF-8 with or without BOM, GB18030/GBK from Chinese Excel
(detected, or ``encoding=``), Excel workbooks; headers in English (column names) or Chinese
(``data/columns.yaml``); dates such as 2025/5/1, 2025年5月1日 or Excel day numbers
(:mod:`.dates`); Chinese value labels (男, 是, 完全缓解); blank optional cells; several lesions
(``lesion_sizes_mm`` "12;25" with ``lesion_locations`` "S7;S8") and several adverse events per
procedure (``ae1_what``, ``ae2_what``, ... with the other ``aeN_`` fields; ``ae_`` = ``ae1_``).
Rows whose first cell starts with ``#`` are comments (the template's label rows).

Every row is checked (pydantic schema, known technique, hospital and operator, operator of that
hospital, UID unique in the file) before anything is written; any problem gives a report of
(row, field, problem) and nothing from the file is stored. Row numbers are those a spreadsheet
shows: the header is row 1, the first record row 2. Re-importing a file skips UIDs already stored.

Example::

    openir registry template procedures.xlsx        # fill it in, then
    openir registry import procedures.xlsx          # or a CSV; --encoding gb18030 to force one
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, select

from openir.core.errors import InputError
from openir.sop.models import PatientValues, SOPCheck

from .bulk import insert_procedures
from .catalogue import load_catalogue
from .columns import ae_column, canonical_header, coerce, columns_by_name, split_list
from .dates import parse_date
from .models import Hospital, Operator
from .schemas import AdverseEventIn, OutcomeIn, ProcedureIn
from .store import sop_check_flags

OUTCOME_COLS = set(OutcomeIn.model_fields)
# pre-procedure values checked against the SOP (openir.sop); sex, age, Child-Pugh and diagnosis are procedure columns
SOP_COLS = set(PatientValues.model_fields) - set(ProcedureIn.model_fields)
SOPChecker = Callable[[str, PatientValues], SOPCheck]
AE_PREFIX = "ae_"
LIST_COLS = {"assistant_codes", "devices", "consumables"}
LESION_COLS = {"lesion_sizes_mm", "lesion_locations"}
DETECTED = ("utf-8", "gb18030")  # tried in this order when no BOM says otherwise; GB18030 covers GBK/GB2312


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


def decode_bytes(raw: bytes, encoding: str | None = None, source: str | Path = "") -> tuple[str, str]:
    """Text and the encoding used: ``encoding`` if given, else a BOM, else UTF-8, else GB18030."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r} (e.g. utf-8, gb18030, gbk)", source=source) from None
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid {encoding} (byte {exc.start}); try --encoding gb18030 or utf-8",
                             source=source) from None
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(enc), enc
    for enc in DETECTED:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise InputError("text encoding not recognised (tried UTF-8 and GB18030); give --encoding", source=source)


def _excel_cell(v: Any) -> Any:
    """An Excel cell as the text a person sees (dates as ISO, 12.0 as 12); None when empty."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return v.date().isoformat() if (v.hour, v.minute, v.second) == (0, 0, 0) else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def read_table(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """A CSV or Excel file as text cells (blank -> None), headers as column names, comment rows dropped.

    The index keeps the spreadsheet row of each record (header = row 1), so reports name the row a
    person sees even when comment rows were skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            df = pd.read_excel(path, sheet_name=0, dtype=object)
            df = df.map(_excel_cell) if len(df) else df.astype(object)
        else:
            text, _ = decode_bytes(path.read_bytes(), encoding, path)
            sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False, sep=sep)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read table ({exc.__class__.__name__}: {exc})", source=path) from exc
    df.columns = [canonical_header(str(c)) for c in df.columns]
    df.index = pd.RangeIndex(2, len(df) + 2)
    df = df.astype(object)
    for c in df.columns:  # NFKC folds full-width digits/letters; blank -> None (never NaN)
        df[c] = pd.Series([_clean(v) for v in df[c].tolist()], index=df.index, dtype=object)
    if len(df.columns) and len(df):
        first = df.iloc[:, 0]
        df = df[~first.map(lambda v: isinstance(v, str) and v.startswith("#"))]
    return df


_AE_COLUMNS: dict[str, tuple[int, str]] = {}  # file column -> (event number, field), set per file


def _clean(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    t = unicodedata.normalize("NFKC", str(v)).strip()
    return t or None


def coerce_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Chinese/English labels -> codes and number clean-up, once per distinct value of each column."""
    cols = columns_by_name()
    df = df.copy()
    for name in df.columns:
        ae = ae_column(name)
        col = ae[1] if ae is not None else cols.get(name)
        if col is None or col.kind not in ("bool", "choice", "int", "number"):
            continue
        values = df[name].tolist()
        mapping = {v: coerce(col, v) for v in set(values)}
        df[name] = pd.Series([mapping[v] for v in values], index=df.index, dtype=object)
    return df


def _row_to_model(rec: dict[str, Any]) -> dict[str, Any]:
    """One row (text cells, labels already coerced) as the nested dict ProcedureIn validates."""
    data: dict[str, Any] = {}
    outcome: dict[str, Any] = {}
    aes: dict[int, dict[str, Any]] = {}
    sizes: list[str] = []
    places: list[str] = []
    for k, v in rec.items():
        if v is None:
            continue
        ae = _AE_COLUMNS.get(k)
        if ae is not None:
            aes.setdefault(ae[0], {})[ae[1]] = v
            continue
        val = v
        if k == "date":
            try:
                val = parse_date(v)
            except ValueError:
                val = v  # the schema reports it; parse_date's reason is added in validate_rows
        if k == "lesion_sizes_mm":
            sizes = split_list(v)
        elif k == "lesion_locations":
            places = split_list(v)
        elif k in OUTCOME_COLS:
            outcome[k] = val
        elif k in LIST_COLS:
            data[k] = split_list(v)
        else:
            data[k] = val
    if sizes or places:
        data["lesions"] = [{"size_mm": s, **({"location": places[i]} if i < len(places) else {})}
                           for i, s in enumerate(sizes)]
        if places and len(places) != len(sizes):
            data["lesions"].append({"size_mm": None})  # count mismatch: reported on lesion_locations
    data["outcome"] = outcome
    if aes:
        data["adverse_events"] = [aes[n] for n in sorted(aes)]
    data["_ae_numbers"] = sorted(aes)
    return data


def validate_rows(df: pd.DataFrame, engine: Engine | None = None, source: str = "",
                  sop_checker: SOPChecker | None = None) -> tuple[list[ProcedureIn], ImportReport]:
    """Validate every row; returns the parsed records and the report (problems, if any).

    Rows with pre-procedure values (``inr``, ``platelets``, ...) are checked with ``sop_checker``
    (``openir.sop.check_patient``, passed in by the CLI: the registry does not import the checks)."""
    cat = load_catalogue()
    known = ((set(ProcedureIn.model_fields) | OUTCOME_COLS | LESION_COLS | SOP_COLS)
             - {"outcome", "adverse_events", "lesions", "sop_check"})
    problems: list[RowProblem] = []
    for c in df.columns:
        if c not in known and ae_column(c) is None:
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
    use = [c for c in df.columns if c in known or ae_column(c) is not None]
    _AE_COLUMNS.clear()
    _AE_COLUMNS.update({c: (a[0], a[1].name) for c in use if (a := ae_column(c)) is not None})
    records = coerce_columns(df[use]).to_dict("records")
    sop_cols = [c for c in use if c in SOP_COLS]
    for row, rec in zip(df.index.tolist(), records, strict=True):
        labs = {k: rec.pop(k) for k in sop_cols}
        data = _row_to_model(rec)
        numbers = data.pop("_ae_numbers")
        try:
            p = ProcedureIn.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(RowProblem(row=row, field=_field_of(err["loc"], numbers, data),
                                           problem=_message(err, rec)))
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
        given = [k for k, v in labs.items() if v is not None]
        if given and sop_checker is None:
            problems.append(RowProblem(row=row, field=given[0], problem="pre-procedure values need the SOP check: "
                                       "import with `openir registry import`"))
        elif given and p.technique in cat.techniques:
            checked = _sop_check(p, labs, sop_checker, row, problems)  # type: ignore[arg-type]
            if checked is not None:
                p = checked
        if p.uid in seen:
            problems.append(RowProblem(row=row, field="uid", problem=f"duplicate of row {seen[p.uid]}"))
        seen.setdefault(p.uid, row)
        parsed.append(p)
    return parsed, ImportReport(source=source, rows=len(records), problems=problems)


def _sop_check(p: ProcedureIn, labs: dict[str, Any], checker: SOPChecker, row: int,
               problems: list[RowProblem]) -> ProcedureIn | None:
    """``p`` with the SOP check of its row's pre-procedure values; problems are appended naming the column."""
    try:
        values = PatientValues.from_flat({**labs, "sex": p.sex, "age_years": p.age_years, "child_pugh": p.child_pugh,
                                          "diagnosis_code": p.resolved_code()})
        checked = p.model_copy(update={"sop_check": checker(p.technique, values)})
        sop_check_flags(checked.sop_check, checked.technique, checked.sop_override_reason)
    except ValidationError as exc:
        err = exc.errors()[0]
        problems.append(RowProblem(row=row, field=str(err["loc"][0]) if err["loc"] else "?",
                                   problem=str(err["msg"]).removeprefix("Value error, ")))
        return None
    except ValueError as exc:  # an antithrombotic written without its kind
        problems.append(RowProblem(row=row, field="antithrombotics", problem=str(exc)))
        return None
    except InputError as exc:
        problems.append(RowProblem(row=row, field=exc.field or "technique", problem=exc.problem))
        return None
    return checked


def _field_of(loc: tuple[Any, ...], ae_numbers: list[int], data: dict[str, Any]) -> str:
    """The column a pydantic error location points at, as the file names it."""
    parts = [str(x) for x in loc]
    if parts[:1] == ["outcome"]:
        return parts[1] if len(parts) > 1 else "outcome"
    if parts[:1] == ["adverse_events"] and len(parts) > 2:
        n = ae_numbers[int(parts[1])] if int(parts[1]) < len(ae_numbers) else int(parts[1]) + 1
        return f"ae{n}_{parts[2]}"
    if parts[:1] == ["lesions"]:
        i = int(parts[1]) if len(parts) > 1 else 0
        n_sizes = sum(1 for les in data.get("lesions", []) if les.get("size_mm") is not None)
        return "lesion_locations" if i >= n_sizes else "lesion_sizes_mm"
    return parts[0] if parts else "?"


def _message(err: Any, rec: dict[str, Any]) -> str:
    loc = [str(x) for x in err["loc"]]
    if loc[:1] == ["date"] and rec.get("date") is not None:
        try:
            parse_date(rec["date"])
        except ValueError as exc:
            return str(exc)
    if loc[:1] == ["lesions"] and err.get("input") is None:
        return "lesion_locations lists a different number of lesions than lesion_sizes_mm"
    return str(err["msg"])


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


def import_procedures(engine: Engine, path: str | Path, *, actor: str = "import",
                      encoding: str | None = None, sop_checker: SOPChecker | None = None) -> ImportReport:
    """Validate ``path`` completely, then store it in one transaction (or raise, storing nothing).
    ``sop_checker`` (``openir.sop.check_patient``) checks the optional pre-procedure value columns."""
    df = read_table(Path(path), encoding)
    records, report = validate_rows(df, engine, source=str(path), sop_checker=sop_checker)
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
    """Write a flat procedure frame (e.g. synthetic data) in the import format (every AE: ae1_, ae2_, ...)."""
    df = procedures.copy()
    if "max_lesion_mm" in df:
        df["lesion_sizes_mm"] = df.pop("max_lesion_mm")
    df = df.drop(columns=[c for c in ("n_lesions",) if c in df])
    if adverse_events is not None and not adverse_events.empty:
        ae = adverse_events.copy()
        ae["_n"] = ae.groupby("procedure_uid").cumcount() + 1
        fields = [c for c in ae.columns if c in AdverseEventIn.model_fields]
        for n, g in ae.groupby("_n", sort=True):
            part = g.set_index("procedure_uid")[fields]
            part.columns = [f"ae{n}_{c}" for c in fields]
            df = df.join(part, on="uid")
    for c in df.columns:
        if df[c].dtype == object:
            continue
        if df[c].dtype.kind == "f" and c in ("death_days", "age_years", "asa_class"):
            df[c] = df[c].astype("Int64")
    path = Path(path)
    df.to_csv(path, index=False)
    return path
