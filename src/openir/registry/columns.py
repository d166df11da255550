"""The import file's columns in Chinese and English (``data/columns.yaml``) and the empty template.

The same dictionary drives three things, so they cannot drift apart: the template a hospital fills
in (``openir registry template``), the Chinese headers and Chinese value labels the importer accepts
(性别 = 男 -> ``sex = M``), and the messages naming a column.

Example::

    openir registry template procedures.xlsx      # Excel: drop-down lists, a 列说明/columns sheet
    openir registry template procedures.csv       # CSV (UTF-8 with BOM): header + 2 comment rows
"""

from __future__ import annotations

import csv
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from openir.core.datafiles import load_packaged
from openir.core.errors import InputError

from .catalogue import load_catalogue

Kind = Literal["text", "date", "int", "number", "bool", "list", "choice"]
TEMPLATE_AE = 3  # adverse-event column groups in the template (more may be added: ae4_what, ...)


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str
    en: str
    also: list[str] = []


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    zh: str
    en: str
    kind: Kind
    required: bool = False
    values: dict[str, Label] | None = None
    source: Literal["techniques"] | None = None


class ColumnFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    bool_values: dict[str, Label]
    columns: list[Column]
    adverse_event_columns: list[Column]


@lru_cache(maxsize=1)
def column_file() -> ColumnFile:
    f = load_packaged(ColumnFile, "openir.registry", "data/columns.yaml")
    cat = load_catalogue()
    for c in f.columns:
        if c.source == "techniques":
            c.values = {t.code: Label(zh=t.name_zh or t.name, en=t.name) for t in cat.techniques.values()}
    return f


def _key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


_VALUE_MAPS: dict[tuple[str, str], dict[str, str]] = {}


def value_map(col: Column) -> dict[str, str]:
    """Every accepted spelling (code, zh, en, also; case-folded) -> the stored code (built once per column)."""
    key = (col.name, col.kind)
    if key not in _VALUE_MAPS:
        _VALUE_MAPS[key] = _value_map(col)
    return _VALUE_MAPS[key]


def _value_map(col: Column) -> dict[str, str]:
    f = column_file()
    labels = {"true": f.bool_values["true"], "false": f.bool_values["false"]} if col.kind == "bool" else col.values or {}
    out: dict[str, str] = {}
    for code, lab in labels.items():
        for s in (code, lab.zh, lab.en, *lab.also):
            out[_key(s)] = code
    return out


@lru_cache(maxsize=1)
def columns_by_name() -> dict[str, Column]:
    f = column_file()
    return {c.name: c for c in f.columns} | {f"ae_{c.name}": c for c in f.adverse_event_columns}


def ae_column(name: str) -> tuple[int, Column] | None:
    """(event number, column) for ``ae_what`` (1), ``ae2_what`` (2), ...; None for other names."""
    f = column_file()
    if not name.startswith("ae"):
        return None
    head, sep, field = name.partition("_")
    if not sep:
        return None
    num = head[2:]
    if num and not num.isdigit():
        return None
    n = int(num) if num else 1
    for c in f.adverse_event_columns:
        if c.name == field and n >= 1:
            return n, c
    return None


@lru_cache(maxsize=1)
def header_aliases() -> dict[str, str]:
    """Chinese header (and its variants) -> column name; AE headers as 不良事件1, 不良事件2 ...."""
    f = column_file()
    out = {_key(c.zh): c.name for c in f.columns}
    for c in f.adverse_event_columns:
        out[_key(c.zh)] = f"ae1_{c.name}"
        for n in range(1, 21):
            out[_key(f"{c.zh}{n}")] = f"ae{n}_{c.name}"
    return out


def canonical_header(name: str) -> str:
    """Column name for a header cell as typed (English name or Chinese label)."""
    n = unicodedata.normalize("NFKC", str(name)).strip()
    return header_aliases().get(_key(n), n)


def _template_columns() -> list[tuple[str, Column, str, str]]:
    f = column_file()
    rows = [(c.name, c, c.zh, c.en) for c in f.columns]
    for n in range(1, TEMPLATE_AE + 1):
        rows += [(f"ae{n}_{c.name}", c, f"{c.zh}{n}", f"adverse event {n}: {c.en}") for c in f.adverse_event_columns]
    return rows


def _allowed(col: Column, lang: str) -> str:
    if col.kind == "bool":
        return "是/否" if lang == "zh" else "yes/no"
    if col.values:
        return " | ".join(f"{k}={getattr(v, lang)}" for k, v in col.values.items())
    return {"date": "YYYY-MM-DD", "int": "整数" if lang == "zh" else "integer",
            "number": "数字" if lang == "zh" else "number", "list": "a;b"}.get(col.kind, "")


def write_template(path: str | Path) -> Path:
    """An empty import file with every column; .xlsx gets drop-downs and a column sheet, .csv two # rows."""
    path = Path(path)
    cols = _template_columns()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError("template must be .csv or .xlsx", source=path)
    if path.parent and not path.parent.exists():
        raise InputError("folder does not exist", source=path.parent)
    if suffix == ".csv":
        tmp = path.with_name(path.name + ".part")
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([n for n, *_ in cols])
            w.writerow(["#" + (zh + ("*" if c.required else "") + (f" [{_allowed(c, 'zh')}]" if _allowed(c, 'zh') else ""))
                        if i == 0 else zh + ("*" if c.required else "") + (f" [{_allowed(c, 'zh')}]" if _allowed(c, 'zh') else "")
                        for i, (_, c, zh, _) in enumerate(cols)])
            w.writerow(["#" + en if i == 0 else en + (f" [{_allowed(c, 'en')}]" if _allowed(c, 'en') else "")
                        for i, (_, c, _, en) in enumerate(cols)])
        tmp.replace(path)
        return path
    _write_xlsx(path, cols)
    return path


def _write_xlsx(path: Path, cols: list[tuple[str, Column, str, str]]) -> None:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "procedures"
    ws.append([n for n, *_ in cols])
    lists = wb.create_sheet("values 取值")
    doc = wb.create_sheet("columns 列说明")
    doc.append(["column", "中文", "English", "必填 required", "取值（中文）", "allowed values (English)"])
    vcol = 0
    for i, (name, c, zh, en) in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(name) + 2)
        doc.append([name, zh, en, "是 yes" if c.required else "", _allowed(c, "zh"), _allowed(c, "en")])
        codes = list(c.values) if c.values else (["是", "否"] if c.kind == "bool" else [])
        if codes:
            vcol += 1
            letter = get_column_letter(vcol)
            lists.cell(row=1, column=vcol, value=name)
            for r, code in enumerate(codes, start=2):
                lists.cell(row=r, column=vcol, value=code)
            dv = DataValidation(type="list", formula1=f"='values 取值'!${letter}$2:${letter}${len(codes) + 1}",
                                allow_blank=True, showErrorMessage=False)
            dv.add(f"{get_column_letter(i)}2:{get_column_letter(i)}5000")
            ws.add_data_validation(dv)
    tmp = path.with_name(path.name + ".part.xlsx")
    wb.save(tmp)
    tmp.replace(path)


def coerce(col: Column, value: Any) -> Any:
    """A cell mapped to what the schema validates: Chinese/English labels -> codes, lists split."""
    if value is None:
        return None
    if col.kind in ("bool", "choice"):
        text = unicodedata.normalize("NFKC", str(value)).strip()
        return value_map(col).get(_key(text), text)
    if col.kind == "list":
        return split_list(value)
    if col.kind in ("int", "number"):
        text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
        if col.kind == "int" and text.endswith(".0"):
            text = text[:-2]
        return text
    return value


def split_list(value: Any) -> list[str]:
    text = unicodedata.normalize("NFKC", str(value))
    for sep in (",", "、", "|"):
        text = text.replace(sep, ";")
    return [s.strip() for s in text.split(";") if s.strip()]
