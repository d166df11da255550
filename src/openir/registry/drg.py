"""DRG and cost analysis: cost per case, stay, outcome, domestic consumables and payment per DRG group
and hospital, and a funnel plot of cost outliers.

Why: procedures are paid per DRG group (CHS-DRG; payment = relative weight x local base rate), so a
department needs to see, per group and hospital, what a case costs against what it is paid, how
long patients stay, how outcomes compare and how much of the consumables are domestic. The groups
and the example payment configuration live in ``data/drg.yaml`` with their sources; weights and
base rates are each region's own (``load_drg_config(path)`` reads yours).

Everything is vectorised over one row per case (:func:`case_table` from frames, :func:`read_cases`
from the database), so a million procedures take seconds.

Example::

    >>> import pandas as pd
    >>> from openir.registry.drg import case_table, drg_summary, load_drg_config
    >>> procs = pd.DataFrame({"uid": ["a", "b"], "hospital_code": ["H1", "H1"], "technique": ["tace", "tace"],
    ...                       "technical_success": [True, False], "complication": [False, True]})
    >>> heads = pd.DataFrame({"procedure_uid": ["a", "b"], "drg_code": ["RD15", "RD15"],
    ...                       "length_of_stay_days": [5, 7], "total_cost_cny": [20000.0, 30000.0]})
    >>> items = pd.DataFrame({"procedure_uid": ["a", "b"], "category": ["consumable"] * 2,
    ...                       "origin": ["domestic", "imported"], "amount_cny": [20000.0, 30000.0]})
    >>> row = drg_summary(case_table(procs, heads, items), load_drg_config()).iloc[0]
    >>> int(row["cases"]), float(row["cost_mean"]), float(row["domestic_share_cost"])
    (2, 25000.0, 0.4)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, Field, ValidationError
from scipy import stats
from sqlalchemy import Engine, case, func, select

from openir.core.errors import InputError

from .funnel import LEVELS
from .models import AdverseEvent as AE
from .models import CostItem as Item
from .models import Hospital, Outcome, Procedure, ProcedureCost

DATA = Path(__file__).with_name("data") / "drg.yaml"
ITEM_COLUMNS = ["consumable_cost", "known_cost", "domestic_cost", "known_n", "domestic_n"]


class DrgGroup(BaseModel):
    key: str
    adrg: str | None = None
    mdc: str | None = None
    name_zh: str
    name: str
    drgs: list[str]
    source: str


class PaymentConfig(BaseModel):
    """Relative weight per DRG code and the base rate (CNY) of one pooling region."""

    region: str
    base_rate_cny: float = Field(gt=0)
    weights: dict[str, float]
    source: str
    example: bool = False


class DrgConfig(BaseModel):
    version: int
    scheme: str
    scheme_versions: list[str]
    groups: list[DrgGroup]
    technique_drg: dict[str, str]
    payment: PaymentConfig = Field(alias="payment_example")
    categories: list[str]
    origins: list[str]
    labels: dict[str, str]

    def group_of(self, drg_code: str) -> DrgGroup | None:
        return next((g for g in self.groups if drg_code in g.drgs or drg_code == g.key), None)


@lru_cache(maxsize=1)
def _package_config() -> DrgConfig:
    return DrgConfig.model_validate(yaml.safe_load(DATA.read_text(encoding="utf-8")))


def load_drg_config(path: str | Path | None = None) -> DrgConfig:
    """The groups of ``data/drg.yaml``; ``path`` (YAML with a ``payment:`` block: region, base_rate_cny,
    weights, source) replaces the example payment configuration with a region's own."""
    cfg = _package_config()
    if path is None:
        return cfg
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", source=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc.__class__.__name__})", source=path) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("payment"), dict):
        raise InputError("expected a mapping with a 'payment:' block (region, base_rate_cny, weights, source)",
                         source=path, field="payment")
    try:
        pay = PaymentConfig.model_validate(raw["payment"])
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], source=path, field="payment." + ".".join(str(x) for x in err["loc"])) from None
    bad = [k for k, v in pay.weights.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise InputError("weights must be positive numbers", source=path, field=f"payment.weights.{bad[0]}")
    return cfg.model_copy(update={"payment": pay})


# ---- one row per case ----------------------------------------------------------------------------
def key_positions(keys: pd.Series | pd.Index, values: pd.Series | pd.Index) -> np.ndarray:
    """Position of each key in ``values`` (-1: absent), hashed in Arrow (no Python string objects);
    pandas' indexer when Arrow cannot take the columns."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(pa.array(keys, type=pa.string()), value_set=pa.array(values, type=pa.string()))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (ImportError, TypeError, ValueError, pa.ArrowException):  # type: ignore[name-defined]
        return pd.Index(values).get_indexer(pd.Index(keys))


def item_aggregates(items: pd.DataFrame, uids: pd.Series | pd.Index) -> pd.DataFrame:
    """Per case (in the order of ``uids``): consumable cost, cost and count of consumables with a known
    origin, and of those the domestic cost and count."""
    pos = key_positions(items["procedure_uid"], uids)
    ok = pos >= 0
    cons = (items["category"] == "consumable").to_numpy(dtype=bool, na_value=False) & ok
    origin = items["origin"]
    known = cons & origin.isin(["domestic", "imported"]).to_numpy(dtype=bool)
    dom = cons & (origin == "domestic").to_numpy(dtype=bool, na_value=False)
    amt = pd.to_numeric(items["amount_cny"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    n = len(uids)

    def total(mask: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        return np.bincount(pos[mask], weights=None if w is None else w[mask], minlength=n).astype(float)

    return pd.DataFrame({"consumable_cost": total(cons, amt), "known_cost": total(known, amt),
                         "domestic_cost": total(dom, amt), "known_n": total(known, None),
                         "domestic_n": total(dom, None)})


def _as_rate(s: pd.Series) -> np.ndarray:
    """True/False/blank as 1.0/0.0/NaN (vectorised; object columns holding None included)."""
    if s.dtype == bool:
        return s.to_numpy(dtype=float)
    return pd.array(s.to_numpy(dtype=object), dtype="boolean").to_numpy(dtype=float, na_value=np.nan)


def case_table(procedures: pd.DataFrame, headers: pd.DataFrame, items: pd.DataFrame,
               adverse_events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per procedure that has a cost header: hospital, technique, DRG, stay, cost, settled
    payment, technical success (1/0/blank), complication (any adverse event) and the item aggregates.

    ``procedures`` needs ``uid``, ``hospital_code``, ``technique``, ``technical_success`` and either a
    ``complication`` column or ``adverse_events`` (``procedure_uid`` per event). A procedure listed
    twice in ``headers`` keeps its last header.
    """
    hu = headers["procedure_uid"]
    if not hu.is_unique:
        headers = headers.drop_duplicates("procedure_uid", keep="last")
        hu = headers["procedure_uid"]
    ppos = key_positions(hu, procedures["uid"])
    keep = ppos >= 0
    h = headers[keep]
    p = procedures.iloc[ppos[keep]]
    uids = h["procedure_uid"].reset_index(drop=True)
    if "complication" in p:
        comp = p["complication"].fillna(False).to_numpy(dtype=bool)
    elif adverse_events is not None:
        comp = key_positions(uids, adverse_events["procedure_uid"].drop_duplicates()) >= 0
    else:
        comp = np.zeros(len(uids), dtype=bool)
    ts = _as_rate(p["technical_success"]) if "technical_success" in p else np.full(len(uids), np.nan)
    out = pd.DataFrame({
        "uid": uids.to_numpy(),
        "hospital_code": p["hospital_code"].to_numpy(),
        "technique": p["technique"].to_numpy(),
        "drg_code": h["drg_code"].astype(object).where(h["drg_code"].notna(), None).to_numpy(),
        "los_days": pd.to_numeric(h["length_of_stay_days"], errors="coerce").to_numpy(dtype=float),
        "cost": pd.to_numeric(h["total_cost_cny"], errors="coerce").to_numpy(dtype=float),
        "payment_settled": pd.to_numeric(h["payment_cny"], errors="coerce").to_numpy(dtype=float)
        if "payment_cny" in h else np.nan,
        "technical_success": ts,
        "complication": comp,
    })
    agg = item_aggregates(items, uids)
    for c in ITEM_COLUMNS:
        out[c] = agg[c].to_numpy()
    return out


def read_cases(engine: Engine, *, group: str | None = None, hospital: str | None = None) -> pd.DataFrame:
    """:func:`case_table` from the registry database (item aggregates computed in SQL)."""
    has_ae = select(AE.procedure_id).where(AE.procedure_id == Procedure.id).exists()
    q = (select(Procedure.uid, Hospital.code.label("hospital_code"), Procedure.technique, ProcedureCost.drg_code,
                ProcedureCost.length_of_stay_days.label("los_days"), ProcedureCost.total_cost_cny.label("cost"),
                ProcedureCost.payment_cny.label("payment_settled"), Outcome.technical_success,
                has_ae.label("complication"), ProcedureCost.procedure_id)
         .join(ProcedureCost, ProcedureCost.procedure_id == Procedure.id)
         .join(Hospital, Hospital.id == Procedure.hospital_id)
         .outerjoin(Outcome, Outcome.procedure_id == Procedure.id))
    if group:
        q = q.where(ProcedureCost.drg_code == group)
    if hospital:
        q = q.where(Hospital.code == hospital)
    cons = Item.category == "consumable"
    known = cons & Item.origin.in_(["domestic", "imported"])
    dom = cons & (Item.origin == "domestic")
    iq = select(Item.procedure_id,
                func.sum(case((cons, Item.amount_cny), else_=0.0)).label("consumable_cost"),
                func.sum(case((known, Item.amount_cny), else_=0.0)).label("known_cost"),
                func.sum(case((dom, Item.amount_cny), else_=0.0)).label("domestic_cost"),
                func.sum(case((known, 1), else_=0)).label("known_n"),
                func.sum(case((dom, 1), else_=0)).label("domestic_n")).group_by(Item.procedure_id)
    with engine.connect() as conn:
        cases = pd.read_sql(q, conn)
        agg = pd.read_sql(iq, conn).set_index("procedure_id")
    agg = agg.reindex(cases.pop("procedure_id")).fillna(0.0)
    for c in ITEM_COLUMNS:
        cases[c] = agg[c].to_numpy(dtype=float)
    cases["technical_success"] = _as_rate(cases["technical_success"])
    cases["complication"] = cases["complication"].astype(bool)
    for c in ("los_days", "cost", "payment_settled"):
        cases[c] = pd.to_numeric(cases[c], errors="coerce").astype(float)
    return cases


# ---- analyses ------------------------------------------------------------------------------------
def case_payment(cases: pd.DataFrame, config: DrgConfig) -> np.ndarray:
    """The settled payment where the hospital gave one, else weight x base rate (NaN: no weight)."""
    w = cases["drg_code"].map(config.payment.weights).astype(float).to_numpy()
    return np.where(np.isnan(cases["payment_settled"].to_numpy(dtype=float)), w * config.payment.base_rate_cny,
                    cases["payment_settled"].to_numpy(dtype=float))


def _filter(cases: pd.DataFrame, group: str | None, hospital: str | None) -> pd.DataFrame:
    if group is not None:
        cases = cases[cases["drg_code"] == group]
    if hospital is not None:
        cases = cases[cases["hospital_code"] == hospital]
    return cases


def drg_summary(cases: pd.DataFrame, config: DrgConfig, *, by: tuple[str, ...] = ("drg_code", "hospital_code"),
                group: str | None = None, hospital: str | None = None) -> pd.DataFrame:
    """Per DRG group and hospital (or ``by`` any case columns): cases, cost per case (mean, median),
    stay (mean, median), complication rate, technical success rate (of cases where it is recorded),
    share of domestic consumables by cost and by count (of consumables whose origin is known; blank
    when none), payment per case and payment minus cost (mean and total)."""
    c = _filter(cases, group, hospital).copy()
    c["drg_code"] = c["drg_code"].fillna("(none)")
    c["payment"] = case_payment(c, config)
    c["margin"] = c["payment"] - c["cost"]
    c["complication"] = c["complication"].astype(float)
    g = c.groupby(list(by), sort=True, observed=True, dropna=False)
    out = g.agg(cases=("uid", "size"), cost_mean=("cost", "mean"), cost_median=("cost", "median"),
                los_mean=("los_days", "mean"), los_median=("los_days", "median"),
                complication_rate=("complication", "mean"), technical_success_rate=("technical_success", "mean"),
                technical_success_n=("technical_success", "count"), payment_mean=("payment", "mean"),
                margin_mean=("margin", "mean"), margin_total=("margin", "sum"),
                known_cost=("known_cost", "sum"), domestic_cost=("domestic_cost", "sum"),
                known_n=("known_n", "sum"), domestic_n=("domestic_n", "sum"))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["domestic_share_cost"] = np.where(out["known_cost"] > 0, out["domestic_cost"] / out["known_cost"], np.nan)
        out["domestic_share_count"] = np.where(out["known_n"] > 0, out["domestic_n"] / out["known_n"], np.nan)
    out["margin_total"] = out["margin_total"].where(g["margin"].count() > 0)
    out = out.drop(columns=["known_cost", "domestic_cost", "known_n", "domestic_n"]).reset_index()
    out["cases"] = out["cases"].astype(int)
    return out


def cost_funnel(cases: pd.DataFrame, *, group: str | None = None, min_cases: int = 1,
                levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """Cost outliers: per DRG group and hospital, the mean cost per case against the group mean with
    control limits mean +/- z * SD / sqrt(n) (SD between the group's cases; Spiegelhalter, Stat Med
    2005;24:1185, the normal approximation for continuous outcomes). Status ``alarm`` (above 99.8%),
    ``alert`` (above 95%), ``better`` (below 95% lower), ``ok``, or ``too few`` (group with < 2 cases
    or hospital with < ``min_cases``)."""
    c = _filter(cases, group, None)
    c = c[np.isfinite(c["cost"].to_numpy(dtype=float))].copy()
    c["drg_code"] = c["drg_code"].fillna("(none)")
    grp = c.groupby("drg_code", sort=True)["cost"].agg(group_mean="mean", group_sd="std", group_n="size")
    h = c.groupby(["drg_code", "hospital_code"], sort=True)["cost"].agg(mean_cost="mean", n="size").reset_index()
    h = h.join(grp, on="drg_code")
    se = h["group_sd"].to_numpy() / np.sqrt(h["n"].to_numpy())
    z = (h["mean_cost"] - h["group_mean"]).to_numpy() / np.where(se > 0, se, np.nan)
    h["z"] = z
    for lev in levels:
        tag = f"{lev * 100:g}".replace(".", "")
        q = stats.norm.ppf(1 - (1 - lev) / 2)
        h[f"lo{tag}"] = h["group_mean"] - q * se
        h[f"hi{tag}"] = h["group_mean"] + q * se
    m = h["mean_cost"]
    few = (h["group_n"] < 2).to_numpy() | (h["n"] < min_cases).to_numpy() | ~np.isfinite(se)
    h["status"] = np.select([few, m > h["hi998"], m > h["hi95"], m < h["lo95"]],
                            ["too few", "alarm", "alert", "better"], "ok")
    return h


@dataclass
class DrgAnalysis:
    """Result of :func:`analyse_drg`: the summary table, the funnel table and the payment config used."""

    summary: pd.DataFrame
    funnel: pd.DataFrame
    payment: PaymentConfig

    def to_json(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                    for r in df.to_dict("records")]
        return {"payment": self.payment.model_dump(), "summary": records(self.summary), "funnel": records(self.funnel)}


def analyse_drg(engine: Engine, *, config: DrgConfig | None = None, group: str | None = None,
                hospital: str | None = None) -> DrgAnalysis:
    """Summary and cost funnel from the registry database (funnel over every hospital of the group(s),
    so a hospital filter still compares against all)."""
    config = config or load_drg_config()
    cases = read_cases(engine, group=group)
    fun = cost_funnel(cases)
    if hospital is not None:
        fun = fun[fun["hospital_code"] == hospital].reset_index(drop=True)
    return DrgAnalysis(drg_summary(cases, config, hospital=hospital), fun, config.payment)
