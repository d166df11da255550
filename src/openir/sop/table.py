"""Patient values from files, and the SOP check of a whole table of patients at once (vectorised).

``check_table`` applies the same rules as :func:`openir.sop.check_patient` to one row per patient
(a registry export, an audit sample) with numpy masks instead of a Python loop; a test holds the two
to the same flags on a hand-labelled set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from openir.core import InputError

from .check import _OPS
from .library import load_checks, load_sop, technique_ids
from .models import PatientValues

NUMERIC = ("inr", "platelets", "egfr", "haemoglobin")
LIST_COLUMNS = ("conditions", "antithrombotics", "allergies")


def read_values(path: str | Path) -> PatientValues:
    """Patient values from a YAML or JSON file; a problem names the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=p) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", source=p) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML ({getattr(exc, 'problem', None) or 'parse error'}{where})", source=p) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of values (inr: 1.1, platelets: 180, ...)", source=p)
    try:
        return PatientValues.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or None
        raise InputError(err["msg"].removeprefix("Value error, "), source=p, field=field) from None


def _stems(codes: list[str]) -> tuple[str, ...]:
    return tuple(c.replace(".", "").upper() for c in codes)


def _any_under(col: pd.Series, stems_of_row: pd.Series) -> np.ndarray:
    """Row-wise: does any ';'-separated code of ``col`` start with one of the row's stems."""
    out = np.zeros(len(col), dtype=bool)
    codes = col.fillna("").astype(str).str.replace(".", "", regex=False).str.upper().str.split(";")
    exploded = codes.explode().str.strip()
    for stems, idx in stems_of_row.groupby(stems_of_row, sort=False).groups.items():
        if not stems:
            continue
        sub = exploded[exploded.index.isin(idx)]
        hit = sub.str.startswith(stems) & sub.ne("")
        out[col.index.get_indexer(hit[hit].index.unique())] = True
    return out


def check_table(df: pd.DataFrame) -> pd.DataFrame:
    """One column per check id ("block", "warn" or "") for each row of ``df``.

    ``df`` has a ``technique`` column and any of the PatientValues columns: numbers already in the
    normalised units (platelets 10^9/L), lists as ';'-separated text (``antithrombotics`` names; an
    empty cell = not recorded, ``"none"`` = recorded as none). Unknown techniques or non-numeric lab
    columns raise InputError naming the column.
    """
    if "technique" not in df.columns:
        raise InputError("no 'technique' column", field="technique")
    df = df.reset_index(drop=True)
    n = len(df)
    unknown = sorted(set(df["technique"]) - set(technique_ids()))
    if unknown:
        raise InputError(f"no SOP for technique(s) {', '.join(map(str, unknown))}", field="technique")
    sops = {t: load_sop(t) for t in df["technique"].unique()}
    tech = df["technique"]

    def per_tech(fn: Any) -> pd.Series:
        return tech.map({t: fn(s) for t, s in sops.items()})

    def col(name: str) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([None] * n, dtype=object)

    num = {}
    for name in NUMERIC:
        c = col(name)
        x = pd.to_numeric(c, errors="coerce")
        bad = x.isna() & c.notna() & c.astype(str).str.strip().ne("")
        if bad.any():
            raise InputError(f"row {int(np.flatnonzero(bad)[0]) + 1}: {c[bad].iloc[0]!r} is not a number", field=name)
        num[name] = x.to_numpy(dtype=float)

    def flag_col(name: str) -> pd.Series:
        c = col(name)
        return c.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) or v == ""
                     else str(v).strip().lower() in ("1", "true", "yes", "y", "是"))

    agent = per_tech(lambda s: s.contrast.agent)
    iod = flag_col("iodinated_contrast")
    rad = flag_col("radiation")
    ctx = {
        "bleeding_risk": per_tech(lambda s: s.bleeding_risk.class_).to_numpy(),
        "arterial_access": per_tech(lambda s: s.arterial_access.required).to_numpy(dtype=bool),
        "contrast": np.where(agent.eq("optional"), np.where(iod.eq(True), "iodinated", "none"), agent),
        "radiation": np.where(rad.isna(), per_tech(lambda s: s.radiation.uses), rad.eq(True)).astype(bool),
        "contraindicated_child_pugh": per_tech(
            lambda s: next((c.eq for c in s.contraindications if c.field == "child_pugh"), None)).to_numpy(),
        "sex": col("sex").fillna("F").replace("", "F").to_numpy(),
        "access_site": col("access_site").fillna("femoral").replace("", "femoral").to_numpy(),
        "on_dialysis": flag_col("on_dialysis").eq(True).to_numpy(),
    }
    out = {}
    for rule in load_checks().checks:
        mask = np.ones(n, dtype=bool)
        for k, v in rule.applies.items():
            mask &= ctx[k] == v
        raw = num[rule.item] if rule.item in num else col(rule.item)
        missing = np.isnan(raw) if rule.item in num else pd.Series(raw).fillna("").astype(str).str.strip().eq("").to_numpy()
        sev = np.full(n, "", dtype=object)
        for severity in ("warn", "block"):  # block last: it wins over warn
            cond = getattr(rule, severity)
            if not cond:
                continue
            (op, t), = cond.items()
            if op in _OPS:
                with np.errstate(invalid="ignore"):
                    hit = _OPS[op][0](raw, float(t))
            elif op == "eq":
                hit = pd.Series(raw).astype(str).eq(str(t)).to_numpy()
            elif op == "contains":
                hit = pd.Series(raw).fillna("").astype(str).str.lower().str.replace(" ", "_").str.split(";").map(
                    lambda xs, t=t: t in [x.strip() for x in xs]).to_numpy()
            elif op == "any_active":
                hit = (~pd.Series(raw).fillna("").astype(str).str.strip().str.lower().isin(["", "none", "无"])).to_numpy() == t
            elif op == "outside_indications":
                stems = per_tech(lambda s: _stems([c.code for c in s.indications if c.code]))
                code = pd.Series(raw).fillna("").astype(str).str.replace(".", "", regex=False).str.upper()
                inside = np.zeros(n, dtype=bool)
                for st, idx in stems.groupby(stems, sort=False).groups.items():
                    inside[idx] = code[idx].str.startswith(st).to_numpy()
                hit = ~inside == t
            elif op == "under_contraindication_codes":
                stems = per_tech(lambda s: _stems([c.code for c in s.contraindications if c.code]))
                hit = _any_under(pd.Series(raw).replace({"none": "", "无": ""}), stems) == t
            else:
                raise InputError(f"unknown condition {op!r} in sop/data/_checks.yaml")
            sev = np.where(hit & ~missing, severity, sev)
        if rule.missing:
            sev = np.where(missing, rule.missing, sev)
        out[rule.id] = np.where(mask, sev, "")
    return pd.DataFrame(out, index=df.index)
