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

from .check import _OPS, withholding
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


def _text(v: Any) -> str:
    """A cell as stripped text; None and NaN are '' (not recorded)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v).strip()


def _items(text: str) -> list[str]:
    """A ';'-separated cell as its items ('none' / '无' = no items)."""
    xs = [x.strip() for x in text.split(";") if x.strip()]
    return [] if [x.lower() for x in xs] in (["none"], ["无"]) else xs


def _true(text: str) -> bool | None:
    return None if not text else text.lower() in ("1", "true", "yes", "y", "是")


class _Cells:
    """Row-wise functions of text columns computed once per distinct value (or technique, value) pair:
    registry columns hold few distinct values, so this is the vectorised path for text."""

    def __init__(self, df: pd.DataFrame, tcode: np.ndarray, n_tech: int):
        self.df, self.tcode, self.n_tech, self.n = df, tcode, n_tech, len(df)

    def _codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        if name not in self.df.columns:
            return np.zeros(self.n, dtype=np.int64), [""]
        codes, uniq = pd.factorize(self.df[name], use_na_sentinel=True)
        texts = [_text(u) for u in uniq] + [""]  # code -1 (missing) -> the last entry
        return np.where(codes < 0, len(texts) - 1, codes), texts

    def by_value(self, name: str, fn: Any, dtype: Any = object) -> np.ndarray:
        codes, texts = self._codes(name)
        return np.array([fn(t) for t in texts], dtype=dtype)[codes]

    def by_pair(self, name: str, fn: Any, techniques: list[Any], dtype: Any = bool) -> np.ndarray:
        codes, texts = self._codes(name)
        key = self.tcode * len(texts) + codes
        kcode, kuniq = pd.factorize(key)
        vals = np.array([fn(techniques[k // len(texts)], texts[k % len(texts)]) for k in kuniq], dtype=dtype)
        return vals[kcode]


def _withholding_column(df: pd.DataFrame, holds: dict[str, float]) -> np.ndarray:
    """Severity of the anticoagulant-withholding check per row, once per distinct (agents, procedure time)."""
    from .models import PatientValues

    if "antithrombotics" not in df.columns:
        return np.full(len(df), "", dtype=object)
    at = df["antithrombotics"].map(_text)
    when = df["procedure_at"].map(_text) if "procedure_at" in df.columns else pd.Series("", index=df.index)
    codes, uniq = pd.factorize(at + "\x1f" + when)

    def one(key: str) -> str:
        agents, _, t = key.partition("\x1f")
        pv = PatientValues.from_flat({"antithrombotics": agents, "procedure_at": t})
        short, unknown = withholding(pv.antithrombotics or [], holds, pv.procedure_at)
        return "block" if short else "warn" if unknown else ""

    return np.array([one(k) for k in uniq], dtype=object)[codes]


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
    tcode, tuniq = pd.factorize(df["technique"])
    unknown = sorted(set(map(str, tuniq)) - set(technique_ids()))
    if unknown:
        raise InputError(f"no SOP for technique(s) {', '.join(unknown)}", field="technique")
    sops = [load_sop(str(t)) for t in tuniq]
    cells = _Cells(df, tcode, len(sops))

    def per_tech(fn: Any, dtype: Any = object) -> np.ndarray:
        return np.array([fn(s) for s in sops], dtype=dtype)[tcode] if n else np.array([], dtype=dtype)

    num: dict[str, np.ndarray] = {}
    for name in NUMERIC:
        if name not in df.columns:
            num[name] = np.full(n, np.nan)
            continue
        c = df[name]
        x = pd.to_numeric(c, errors="coerce")
        bad = x.isna().to_numpy() & cells.by_value(name, bool, dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"row {i + 1}: {c.iloc[i]!r} is not a number", field=name)
        num[name] = x.to_numpy(dtype=float)

    agent = per_tech(lambda s: s.contrast.agent)
    iod = cells.by_value("iodinated_contrast", _true)
    rad = cells.by_value("radiation", _true)
    ctx = {
        "bleeding_risk": per_tech(lambda s: s.bleeding_risk.class_),
        "arterial_access": per_tech(lambda s: s.arterial_access.required, bool),
        "contrast": np.where(agent == "optional", np.where(iod == True, "iodinated", "none"), agent),  # noqa: E712
        "radiation": np.where(rad == None, per_tech(lambda s: s.radiation.uses, bool), rad == True),  # noqa: E711, E712
        "contraindicated_child_pugh": per_tech(
            lambda s: next((c.eq for c in s.contraindications if c.field == "child_pugh"), None)),
        "sex": cells.by_value("sex", lambda t: t or "F"),
        "access_site": cells.by_value("access_site", lambda t: t or "femoral"),
        "on_dialysis": cells.by_value("on_dialysis", lambda t: _true(t) is True, bool),
    }
    out = {}
    for rule in load_checks().checks:
        mask = np.ones(n, dtype=bool)
        for k, v in rule.applies.items():
            mask &= ctx[k] == v
        if rule.block and "withheld_days_below" in rule.block:
            out[rule.id] = np.where(mask, _withholding_column(df, rule.block["withheld_days_below"]), "")
            continue
        is_num = rule.item in num
        missing = np.isnan(num[rule.item]) if is_num else cells.by_value(rule.item, lambda t: t == "", bool)
        sev = np.full(n, "", dtype=object)
        for severity in ("warn", "block"):  # block last: it wins over warn
            cond = getattr(rule, severity)
            if not cond:
                continue
            (op, t), = cond.items()
            if op in _OPS:
                with np.errstate(invalid="ignore"):
                    hit = _OPS[op][0](num[rule.item], float(t))
            elif op == "eq":
                hit = cells.by_value(rule.item, lambda x, t=t: x == str(t), bool)
            elif op == "contains":
                hit = cells.by_value(rule.item, lambda x, t=t: t in [i.lower().replace(" ", "_") for i in _items(x)], bool)
            elif op == "any_active":
                hit = cells.by_value(rule.item, lambda x, t=t: bool(_items(x)) == t, bool)
            elif op == "outside_indications":
                hit = cells.by_pair(rule.item, lambda s, x, t=t: (not x.replace(".", "").upper().startswith(
                    _stems([c.code for c in s.indications if c.code]))) == t, sops)
            elif op == "under_contraindication_codes":
                hit = cells.by_pair(rule.item, lambda s, x, t=t: any(
                    i.replace(".", "").upper().startswith(_stems([c.code for c in s.contraindications if c.code]))
                    for i in _items(x)) == t, sops)
            else:
                raise InputError(f"unknown condition {op!r} in sop/data/_checks.yaml")
            sev = np.where(hit & ~missing, severity, sev)
        if rule.missing:
            sev = np.where(missing, rule.missing, sev)
        out[rule.id] = np.where(mask, sev, "")
    return pd.DataFrame(out, index=df.index)
