"""Quality indicators: definitions (YAML) and their computation per hospital, operator, region, period.

All indicators come from ONE aggregate SQL query: per (hospital, operator, period, risk-factor
cell) it counts each indicator's denominator and numerator with ``COUNT(*) FILTER (WHERE ...)``. Everything
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
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import expit
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

from .catalogue import Condition, load_catalogue, load_yaml
from .enums import Direction, Period
from .funnel import classify, exact_ci
from .models import AdverseEvent, Hospital, Operator, Outcome, Procedure


class RiskFactor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    when: list[Condition]


class Target(BaseModel):
    """A target or alarm level with its publication; ``verified`` only when checked against the cited text."""

    model_config = ConfigDict(extra="forbid")
    value: float = Field(ge=0, allow_inf_nan=False)
    source: str = Field(min_length=3)
    verified: bool = False

    @model_validator(mode="after")
    def _honest(self) -> Target:
        """A level says where it comes from: a blank source is refused, and NOT SOURCED is never verified."""
        if not self.source.strip(" .-:"):
            raise ValueError("a target or alarm needs a source (or 'NOT SOURCED: <why>')")
        if self.verified and self.source.strip().upper().startswith("NOT SOURCED"):
            raise ValueError("a NOT SOURCED level cannot be verified: true")
        return self


class CategoryTargets(BaseModel):
    """Target and alarm for one technique category (guidelines give thresholds per procedure type)."""

    model_config = ConfigDict(extra="forbid")
    target: Target | None = None
    alarm: Target | None = None


class Derived(BaseModel):
    """A per-procedure yes/no decided by the first recorded of several fields (e.g. necrosis %, else response)."""

    model_config = ConfigDict(extra="forbid")
    first_present: list[Condition] = Field(min_length=1)
    source: str


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
    target: Target
    alarm: Target
    by_category: dict[str, CategoryTargets] = {}
    definition_source: str

    def levels_for(self, categories: np.ndarray) -> dict[str, np.ndarray]:
        """Target / alarm values and sources per row, from the row's technique category when it has its own."""
        out: dict[str, list[Any]] = {"target": [], "target_source": [], "alarm_level": [], "alarm_source": []}
        for cat in categories:
            own = self.by_category.get(cat) if isinstance(cat, str) else None
            t = own.target if own and own.target else self.target
            a = own.alarm if own and own.alarm else self.alarm
            out["target"].append(t.value)
            out["target_source"].append(t.source)
            out["alarm_level"].append(a.value)
            out["alarm_source"].append(a.source)
        return {k: np.asarray(v, dtype=float if k in ("target", "alarm_level") else object) for k, v in out.items()}


class LearningCurveDef(BaseModel):
    """Risk model of the operator learning curves (technical failure), see qc.learning_curves."""

    model_config = ConfigDict(extra="forbid")
    risk_factors: list[RiskFactor] = []
    horizon: int = Field(default=200, ge=20)
    false_alarm: float = Field(default=0.05, gt=0, lt=0.5)
    source: str


class IndicatorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    derived: dict[str, Derived] = {}
    learning_curve: LearningCurveDef | None = None
    indicators: list[IndicatorDef]


@lru_cache(maxsize=4)
def load_learning_curve_def(path: str | None = None) -> LearningCurveDef:
    f = load_yaml(path or "indicators.yaml", IndicatorFile)
    return f.learning_curve or LearningCurveDef(source="no risk factors configured: unadjusted")


@lru_cache(maxsize=4)
def load_indicators(path: str | None = None) -> tuple[IndicatorDef, ...]:
    """Indicator definitions (packaged ``indicators.yaml`` unless ``path``), fields checked."""
    f = load_yaml(path or "indicators.yaml", IndicatorFile)
    _DERIVED.clear()
    for name, dv in f.derived.items():
        for c in dv.first_present:
            if c.field not in FIELD_NAMES or c.all_present is not None:
                raise InputError(f"derived field {name}: {c.field!r} is not a plain field", source=path or "indicators.yaml",
                                 field=name)
        _DERIVED[name] = dv
    fields = FIELD_NAMES | set(f.derived)
    for d in f.indicators:
        for c in [*d.numerator, *d.denominator, *d.exclusions, *(c for r in d.risk_factors for c in r.when)]:
            for name in ([c.field] if c.field else []) + (c.all_present or []):
                if name not in fields:
                    raise InputError(f"indicator {d.code}: unknown field {name!r}; fields: {', '.join(sorted(fields))}",
                                     source=path or "indicators.yaml", field=d.code)
    return tuple(f.indicators)


_DERIVED: dict[str, Derived] = {}


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
    for name, dv in _DERIVED.items():  # first recorded field decides: 1 / 0, NULL when none is recorded
        whens = [(f[c.field or ""].is_not(None), case((_sql(c, f), 1), else_=0)) for c in dv.first_present]
        f[name] = case(*whens, else_=None) == 1
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


EXTRA_KEYS = {"technique": Procedure.technique, "disease": Procedure.diagnosis_code}
UNCODED = "uncoded"


def query_cells(engine: Engine, defs: tuple[IndicatorDef, ...] | None = None, *,
                period: Period = "year", workers: int | None = None, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per (hospital_id, operator_id, period, risk-factor cell[, technique][, disease]) with
    ``n_<code>``, ``x_<code>``. ``extra`` adds ``technique`` and/or ``disease`` (ICD-10 code) keys."""
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
    keys: list[Any] = [packed.label("cell_key")] + [EXTRA_KEYS[e].label(e) for e in extra]
    aggs = []
    for d in defs:
        # NULL-safe: COUNT(*) FILTER (WHERE ...) counts only rows where the condition is true (NULL is
        # not); exclusions are coalesced to false. FILTER is 1.5-2x faster than SUM(CASE ...) in SQLite.
        den = [_sql(c, f) for c in d.denominator]
        if d.exclusions:
            excl = or_(*[_sql(c, f) for c in d.exclusions])
            never_null = all(c.is_null is not None or c.all_present is not None for c in d.exclusions)
            den.append(~excl if never_null else ~func.coalesce(excl, False))
        den_expr = and_(*den) if den else None
        n_agg = func.count().filter(den_expr) if den_expr is not None else func.count()
        num = and_(*([den_expr] if den_expr is not None else []), *[_sql(c, f) for c in d.numerator])
        aggs.append(n_agg.label(f"n_{d.code}"))
        aggs.append(func.count().filter(num).label(f"x_{d.code}"))
    q = (select(*keys, *aggs).select_from(Procedure)
         .outerjoin(Outcome, Outcome.procedure_id == Procedure.id)
         .outerjoin(ae, ae.c.procedure_id == Procedure.id))
    names = [k.name for k in keys] + [a.name for a in aggs]
    # GROUP BY 1, 2, ...: the key expressions are evaluated once per row, not again for grouping
    by_position = [literal_column(str(i + 1)) for i in range(len(keys))]
    with engine.connect() as conn:
        lo, hi, count = conn.execute(select(func.min(Procedure.id), func.max(Procedure.id), func.count())).one()
        if not count:
            raise InputError("the registry holds no procedures yet, so there is nothing to compute; "
                             "import some first (openir registry import FILE)", field="procedures")
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
        if len(cells):
            for e in extra:
                cells[e] = cells[e].fillna(UNCODED)
            cells = cells.groupby(["cell_key", *extra], as_index=False).sum()
    else:
        with engine.connect() as conn:
            cells = pd.DataFrame(conn.execute(q.group_by(*by_position)).all(), columns=names)
    if "disease" in cells:
        cells["disease"] = cells["disease"].fillna(UNCODED)
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
        p = expit(X1 @ beta)
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
        p = expit(beta[0] + cells[rf].to_numpy(float) @ beta[1:])
        cells[f"e_{d.code}"] = cells[n_col].to_numpy() * p
    return cells


_KEYS = {"hospital": "hospital_id", "operator": "operator_id", "region": "region", "level": "level",
         "technique": "technique", "disease": "disease", "all": None}


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
    if by == "technique":
        cat = load_catalogue().techniques
        return {"unit": keys.to_numpy(object),
                "label": np.array([f"{cat[k].name_zh or ''} / {cat[k].name}" if k in cat else k for k in keys], object)}
    if by == "disease":
        from .codes import resolve_diagnosis

        names = {k: resolve_diagnosis(k) if k != UNCODED else None for k in keys.unique()}
        return {"unit": keys.to_numpy(object),
                "label": np.array([" / ".join(x for x in (names[k].zh, names[k].en) if x) if names[k] else k
                                   for k in keys], object)}
    return {"unit": keys.to_numpy(object)}


def _categories(t: dict[str, Any], by: str) -> np.ndarray:
    """Technique category of each unit row (for per-category targets); None where a unit mixes them."""
    if by != "technique":
        return np.full(len(t["n"]), None, dtype=object)
    cat = load_catalogue().techniques
    return np.array([cat[u].category if u in cat else None for u in t["unit"]], object)


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
             adj_ci_high=hi * factor, benchmark=theta, scale=d.scale, **d.levels_for(_categories(t, by)))
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

    Columns: indicator, level_by, unit, [label], [period], n, x, expected, rate, ci_low, ci_high (exact
    95%), o_e, adjusted_rate, benchmark (pooled rate), target, target_source, alarm_level, alarm_source,
    status, funnel limits lo95/hi95/lo998/hi998, phi, tau2. Levels: hospital, operator, region, level,
    technique, disease (ICD-10 code; ``uncoded`` when none), all. An empty registry raises InputError.
    """
    defs = defs or load_indicators()
    for level in by:
        if level not in _KEYS:
            raise InputError(f"cannot group indicators by {level!r}; one of {', '.join(_KEYS)}", field="by")
    if cells is None:
        cells = query_cells(engine, defs, period=period, extra=tuple(e for e in EXTRA_KEYS if e in by))
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


