"""Quality indicators: definitions (YAML) and their computation per hospital, operator, region, period.

All indicators come from ONE aggregate SQL query: per (hospital, operator, period, risk-factor
cell) it counts each indicator's denominator and numerator with ``SUM(CASE ...)``. Everything
else (grouping to hospitals / operators / regions, exact confidence intervals, risk adjustment,
funnel limits) is vectorised numpy/scipy on those few thousand cells, so the cost is one scan of
the procedures table.

Risk adjustment (indicators with ``risk_factors``): indirect standardisation. A logistic model of
the outcome on the binary risk factors is fitted on the whole registry (grouped binomial IRLS);
each unit's expected count E is the sum of its cases' predicted risks; the adjusted rate is
(O / E) * pooled rate, compared on the funnel with the unit's case count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Engine,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql import ColumnElement

from openir.core.errors import InputError

from .catalogue import Condition, Sourced, load_yaml
from .enums import Direction, Period
from .funnel import classify, exact_ci
from .models import AdverseEvent, Hospital, Operator, Outcome, Procedure


class RiskFactor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    when: list[Condition]


class IndicatorDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    title: str
    numerator: list[Condition]
    denominator: list[Condition] = []
    exclusions: list[Condition] = []
    risk_factors: list[RiskFactor] = []
    direction: Direction
    scale: float = 1.0
    min_cases: int = Field(default=20, ge=1)
    target: Sourced
    alarm: Sourced
    definition_source: str


class IndicatorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    indicators: list[IndicatorDef]


@lru_cache(maxsize=4)
def load_indicators(path: str | None = None) -> tuple[IndicatorDef, ...]:
    """Indicator definitions (packaged ``indicators.yaml`` unless ``path``), fields checked."""
    f = load_yaml(path or "indicators.yaml", IndicatorFile)
    for d in f.indicators:
        for c in [*d.numerator, *d.denominator, *d.exclusions, *(c for r in d.risk_factors for c in r.when)]:
            for name in ([c.field] if c.field else []) + (c.all_present or []):
                if name not in FIELD_NAMES:
                    raise InputError(f"indicator {d.code}: unknown field {name!r}; fields: {', '.join(sorted(FIELD_NAMES))}",
                                     source=path or "indicators.yaml", field=d.code)
    return tuple(f.indicators)


FIELD_NAMES = {
    "technique", "category", "age_years", "asa_class", "child_pugh", "emergency", "max_lesion_mm", "duration_min",
    "imaging_guidance", "anaesthesia", "dose_alert", "technical_success", "complete_ablation", "min_margin_mm",
    "mrecist", "easl", "necrosis_pct", "ltp", "followup_months", "puncture_bleeding", "died", "death_days",
    "major_ae", "n_flags",
}


def _fields(ae: Any) -> dict[str, ColumnElement]:
    P, Oc = Procedure, Outcome
    f: dict[str, Any] = {n: getattr(P, n) for n in ("technique", "category", "age_years", "asa_class", "child_pugh",
                                                    "emergency", "max_lesion_mm", "duration_min", "imaging_guidance",
                                                    "anaesthesia", "dose_alert", "n_flags")}
    f.update({n: getattr(Oc, n) for n in ("technical_success", "complete_ablation", "min_margin_mm", "mrecist", "easl",
                                         "necrosis_pct", "ltp", "followup_months", "puncture_bleeding", "died",
                                         "death_days")})
    f["major_ae"] = func.coalesce(ae.c.major_i, 0) == 1
    return f


def _sql(c: Condition, f: dict[str, Any]) -> ColumnElement:
    if c.all_present is not None:
        return and_(*[f[n].is_not(None) for n in c.all_present])
    col = f[c.field or ""]
    if c.is_null is not None:
        return col.is_(None) if c.is_null else col.is_not(None)
    if isinstance(c.eq, bool):
        return col if c.eq else ~col
    if c.eq is not None:
        return col == c.eq
    if c.ne is not None:
        return col != c.ne
    if c.in_ is not None:
        return col.in_(c.in_)
    if c.not_in is not None:
        return col.not_in(c.not_in)
    for op in ("ge", "gt", "le", "lt"):
        ref = getattr(c, op)
        if ref is not None:
            return {"ge": col >= ref, "gt": col > ref, "le": col <= ref, "lt": col < ref}[op]
    raise InputError(f"condition without operator: {c}")


def _flag(conds: list[Condition], f: dict[str, Any], *, any_: bool = False) -> ColumnElement:
    """1 where the conditions hold (AND, or OR with ``any_``), 0 otherwise, NULL counted as 0."""
    if not conds:
        return case((True, 1), else_=0) if not any_ else case((False, 1), else_=0)  # type: ignore[arg-type]
    expr = or_(*[_sql(c, f) for c in conds]) if any_ else and_(*[_sql(c, f) for c in conds])
    return case((expr, 1), else_=0)


def _parallel_parts(engine: Engine, count: int, workers: int | None) -> int:
    """How many id ranges to scan at once: SQLite only (PostgreSQL parallelises by itself)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:") or count < 200_000:
        return 1
    return max(1, min(workers or (os.cpu_count() or 1), 8))


def _date_part(engine: Engine, part: str) -> ColumnElement:
    """Year or month of the procedure date; SQLite stores ISO text, where substr beats strftime 3x."""
    if engine.dialect.name == "sqlite":
        start, length = (1, 4) if part == "year" else (6, 2)
        return cast(func.substr(Procedure.date, start, length), Integer)
    return extract(part, Procedure.date)


def query_cells(engine: Engine, defs: tuple[IndicatorDef, ...] | None = None, *,
                period: Period = "year", workers: int | None = None) -> pd.DataFrame:
    """One row per (hospital_id, operator_id, period, risk-factor cell) with ``n_<code>``, ``x_<code>``."""
    defs = defs or load_indicators()
    A = AdverseEvent
    ae = (select(A.procedure_id, func.max(case((A.major, 1), else_=0)).label("major_i"))
          .group_by(A.procedure_id).subquery())
    f = _fields(ae)
    rf_defs = {r.name: r for d in defs for r in d.risk_factors}
    # All grouping keys are packed into ONE integer: grouping 1M rows on a single key is about twice
    # as fast as on six (SQLite sorts the keys in a temporary B-tree), and it also keeps SQLite
    # from walking an index for the GROUP BY order. Layout, low to high bits: risk factors (1 bit
    # each), month (4), year (12), operator id (24), hospital id (the rest of 63).
    rf_names = sorted(rf_defs)
    parts_spec: list[tuple[str, Any, int]] = [(f"rf_{n}", _flag(rf_defs[n].when, f), 1) for n in rf_names]
    if period == "quarter":
        parts_spec.append(("month", _date_part(engine, "month"), 4))
    if period in ("year", "quarter"):
        parts_spec.append(("year", _date_part(engine, "year"), 12))
    parts_spec.append(("operator_id", Procedure.primary_operator_id, 24))
    shift, packed = 0, None
    layout: list[tuple[str, int, int]] = []
    for name, expr, bits in parts_spec:
        term = cast(expr, BigInteger) * literal_column(str(1 << shift)) if shift else cast(expr, BigInteger)
        packed = term if packed is None else packed + term
        layout.append((name, shift, bits))
        shift += bits
    packed = packed + cast(Procedure.hospital_id, BigInteger) * literal_column(str(1 << shift))
    layout.append(("hospital_id", shift, 63 - shift))
    keys: list[Any] = [packed.label("cell_key")]
    aggs = []
    for d in defs:
        # NULL-safe: a NULL condition fails the CASE (not counted); exclusions are coalesced to false
        den = [_sql(c, f) for c in d.denominator]
        if d.exclusions:
            excl = or_(*[_sql(c, f) for c in d.exclusions])
            never_null = all(c.is_null is not None or c.all_present is not None for c in d.exclusions)
            den.append(~excl if never_null else ~func.coalesce(excl, False))
        den_expr = and_(*den) if den else None
        n_agg = func.sum(case((den_expr, 1), else_=0)) if den_expr is not None else func.count()
        num = and_(*([den_expr] if den_expr is not None else []), *[_sql(c, f) for c in d.numerator])
        aggs.append(n_agg.label(f"n_{d.code}"))
        aggs.append(func.sum(case((num, 1), else_=0)).label(f"x_{d.code}"))
    q = (select(*keys, *aggs).select_from(Procedure)
         .outerjoin(Outcome, Outcome.procedure_id == Procedure.id)
         .outerjoin(ae, ae.c.procedure_id == Procedure.id))
    names = [k.name for k in keys] + [a.name for a in aggs]
    # GROUP BY 1, 2, ...: the key expressions are evaluated once per row, not again for grouping
    by_position = [literal_column(str(i + 1)) for i in range(len(keys))]
    with engine.connect() as conn:
        lo, hi, count = conn.execute(select(func.min(Procedure.id), func.max(Procedure.id), func.count())).one()
        max_h = conn.execute(select(func.max(Hospital.id))).scalar()
        max_o = conn.execute(select(func.max(Operator.id))).scalar()
    if (max_h or 0) >= 1 << layout[-1][2] or (max_o or 0) >= 1 << 24:
        raise InputError("hospital or operator ids too large for the packed indicator key", field="id")
    with engine.connect() as conn:
        hosp = pd.DataFrame(conn.execute(select(Hospital.id, Hospital.code, Hospital.region, Hospital.level)).all(),
                            columns=["hospital_id", "hospital", "region", "level"])
        ops = pd.DataFrame(conn.execute(select(Operator.id, Operator.code, Operator.credential)).all(),
                           columns=["operator_id", "operator", "credential"])
    parts = _parallel_parts(engine, count, workers)
    if parts > 1 and lo is not None:
        # SQLite runs one query on one core; id ranges scanned on separate connections run in
        # parallel (the driver releases the GIL while stepping) and their cells simply add up.
        edges = np.linspace(int(lo), int(hi) + 1, parts + 1).astype(np.int64)

        def run(i: int) -> list[Any]:
            sub = q.where(Procedure.id >= int(edges[i]), Procedure.id < int(edges[i + 1])).group_by(*by_position)
            with engine.connect() as conn:
                return list(conn.execute(sub).all())

        with ThreadPoolExecutor(parts) as pool:
            rows = [r for chunk in pool.map(run, range(parts)) for r in chunk]
        cells = pd.DataFrame(rows, columns=names)
        cells = cells.groupby("cell_key", as_index=False).sum() if len(cells) else cells
    else:
        with engine.connect() as conn:
            cells = pd.DataFrame(conn.execute(q.group_by(*by_position)).all(), columns=names)
    for c in cells.columns:
        if c.startswith(("n_", "x_")):
            cells[c] = pd.to_numeric(cells[c]).fillna(0).astype(np.int64)
    key = pd.to_numeric(cells.pop("cell_key")).to_numpy(np.int64)
    for name, sh, bits in layout:
        cells[name] = (key >> sh) & ((1 << bits) - 1)
    if period == "quarter":
        cells["quarter"] = cells["year"].astype(str) + "Q" + ((cells.pop("month") - 1) // 3 + 1).astype(str)
        cells = cells.drop(columns="year")
    cells = cells.merge(hosp, on="hospital_id", how="left").merge(ops, on="operator_id", how="left")
    return cells


def fit_logistic(X: np.ndarray, x: np.ndarray, n: np.ndarray, *, ridge: float = 1e-6, iters: int = 50) -> np.ndarray:
    """Coefficients of a logistic model fitted to grouped binomial data (IRLS, tiny ridge)."""
    X1 = np.column_stack([np.ones(len(X)), X]).astype(float)
    beta = np.zeros(X1.shape[1])
    pbar = x.sum() / max(n.sum(), 1)
    beta[0] = np.log(max(pbar, 1e-9) / max(1 - pbar, 1e-9))
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X1 @ beta)))
        w = n * p * (1 - p)
        grad = X1.T @ (x - n * p) - ridge * beta
        hess = (X1 * w[:, None]).T @ X1 + ridge * np.eye(X1.shape[1])
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def add_expected(cells: pd.DataFrame, defs: tuple[IndicatorDef, ...]) -> pd.DataFrame:
    """Add ``e_<code>``: each cell's expected events under the registry-wide risk model."""
    cells = cells.copy()
    for d in defs:
        if not d.risk_factors:
            continue
        n_col, x_col = f"n_{d.code}", f"x_{d.code}"
        rf = [f"rf_{r.name}" for r in d.risk_factors]
        g = cells.groupby(rf, as_index=False)[[n_col, x_col]].sum()
        beta = fit_logistic(g[rf].to_numpy(), g[x_col].to_numpy(float), g[n_col].to_numpy(float))
        p = 1 / (1 + np.exp(-(beta[0] + cells[rf].to_numpy(float) @ beta[1:])))
        cells[f"e_{d.code}"] = cells[n_col].to_numpy() * p
    return cells


_KEYS = {"hospital": "hospital_id", "operator": "operator_id", "region": "region", "level": "level", "all": None}


def _labels(cells: pd.DataFrame, by: str, keys: pd.Series) -> dict[str, np.ndarray]:
    """Human labels (codes, region, level, hospital) for the unit keys of one level."""
    if by == "hospital":
        lab = cells.drop_duplicates("hospital_id").set_index("hospital_id")
        return {"unit": lab["hospital"].reindex(keys).to_numpy(object), "region": lab["region"].reindex(keys).to_numpy(object),
                "level": lab["level"].reindex(keys).to_numpy(object)}
    if by == "operator":
        lab = cells.drop_duplicates("operator_id").set_index("operator_id")
        return {"unit": lab["operator"].reindex(keys).to_numpy(object), "hospital": lab["hospital"].reindex(keys).to_numpy(object),
                "region": lab["region"].reindex(keys).to_numpy(object), "level": lab["level"].reindex(keys).to_numpy(object)}
    return {"unit": keys.to_numpy(object)}


def _finish(t: dict[str, Any], d: IndicatorDef, by: str, method: str) -> pd.DataFrame:
    """Rates, exact CIs, risk-adjusted rates and funnel status of one indicator's unit columns."""
    n, x = np.asarray(t["n"], float), np.asarray(t["x"], float)
    theta = float(x.sum() / n.sum()) if n.sum() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = x / np.where(n > 0, n, np.nan)
    lo, hi = exact_ci(x, n)
    if d.risk_factors:
        e = np.asarray(t["expected"], float)
        safe = np.where(e > 0, e, 1.0)
        o_e = np.where(e > 0, x / safe, np.nan)
        factor = np.where(e > 0, n * theta / safe, np.nan)
    else:
        t["expected"] = np.full(n.size, np.nan)
        o_e = np.full(n.size, np.nan)
        factor = np.ones_like(n)
    t.update(rate=rate, ci_low=lo, ci_high=hi, o_e=o_e, adjusted_rate=rate * factor, adj_ci_low=lo * factor,
             adj_ci_high=hi * factor, benchmark=theta, target=d.target.value, alarm_level=d.alarm.value, scale=d.scale)
    if by == "all":
        t["status"] = "pooled"
        return pd.DataFrame(t)
    status, lim, od = classify(rate * factor, n, theta, direction=d.direction, min_cases=d.min_cases, method=method)
    t.update(status=status, **lim, phi=od.phi, tau2=od.tau2, overdispersed=od.significant)
    return pd.DataFrame(t)


def compute_indicators(engine: Engine, *, by: tuple[str, ...] = ("hospital", "operator", "region"),
                       period: Period = "all", defs: tuple[IndicatorDef, ...] | None = None,
                       method: str = "additive", cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every indicator for every unit level in ``by`` (and per period), in one long table.

    Columns: indicator, level_by, unit, [period], n, x, expected, rate, ci_low, ci_high (exact 95%),
    o_e, adjusted_rate, benchmark (pooled rate), status, funnel limits lo95/hi95/lo998/hi998, phi, tau2.
    """
    defs = defs or load_indicators()
    if cells is None:
        cells = query_cells(engine, defs, period=period)
    cells = add_expected(cells, defs)
    pcol = None if period == "all" else period
    cols = [c for d in defs for c in (f"n_{d.code}", f"x_{d.code}", f"e_{d.code}") if c in cells]
    frames = []
    for level in by:
        if level not in _KEYS:
            raise InputError(f"cannot group indicators by {level!r}", field="by")
        keys = [k for k in (_KEYS[level], pcol) if k]
        if keys:
            agg = cells.groupby(keys, sort=True)[cols].sum().reset_index()
        else:
            agg = cells[cols].sum().to_frame().T
        lab = _labels(cells, level, agg[_KEYS[level]]) if _KEYS[level] else {"unit": np.array(["registry"] * len(agg), object)}
        for d in defs:
            n = agg[f"n_{d.code}"].to_numpy(np.int64)
            keep = n > 0
            t: dict[str, Any] = {"indicator": d.code, "level_by": level, **{k: v[keep] for k, v in lab.items()}}
            if pcol:
                t[pcol] = agg[pcol].to_numpy()[keep]
            t["n"] = n[keep]
            t["x"] = agg[f"x_{d.code}"].to_numpy(np.int64)[keep]
            e_col = f"e_{d.code}"
            t["expected"] = agg[e_col].to_numpy(float)[keep] if e_col in agg else np.full(int(keep.sum()), np.nan)
            if pcol and level != "all":
                per = np.asarray(t[pcol])
                parts = [_finish({k: (v[per == p] if isinstance(v, np.ndarray) else v) for k, v in t.items()},
                                 d, level, method) for p in np.unique(per)]
                t = pd.concat(parts, ignore_index=True)
            else:
                t = _finish(t, d, level, method)
            frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


