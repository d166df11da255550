"""Quality control in one pass: indicators with exact CIs and funnel status, hospital ratings with
reasons, operator risk-adjusted (Steiner) CUSUM learning curves with cases to competence. Data
only; the HTML report and its figures are drawn by
:mod:`openir.report` (``render_qc_html``, ``funnel_figure``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit
from sqlalchemy import Engine, select

from .catalogue import Condition, load_catalogue
from .cusum import odds_ratio, ra_learning_curve, ra_thresholds
from .indicators import (
    IndicatorDef,
    compute_indicators,
    fit_logistic,
    load_indicators,
    load_learning_curve_def,
)
from .models import Operator, Outcome, Procedure
from .ratings import HospitalRating, rate_hospitals


@dataclass
class LearningCurve:
    """One operator's risk-adjusted (Steiner) CUSUM for one technique: path, threshold, first alarm,
    expected failures from the case mix, and the learning-curve chart's cases to competence."""

    operator: str
    technique: str
    n: int
    failures: int
    h: float
    signal_at: int | None
    path: np.ndarray = field(repr=False)
    expected_failures: float = float("nan")
    odds_ratio: float = float("nan")
    cases_to_competence: int | None = None
    h_competence: float = float("nan")
    competence_path: np.ndarray | None = field(default=None, repr=False)
    risk_adjusted: bool = True


@dataclass
class QCResult:
    """Everything the QC report and the dashboards show, computed once."""

    indicators: pd.DataFrame
    ratings: list[HospitalRating]
    curves: list[LearningCurve]
    defs: tuple[IndicatorDef, ...]


def _mask(conds: list[Condition], df: pd.DataFrame) -> np.ndarray:
    """Vectorised Condition.holds (AND), missing values never satisfying a test."""
    out = np.ones(len(df), dtype=bool)
    for c in conds:
        col = df[c.field or ""]
        v = pd.to_numeric(col, errors="coerce") if any(getattr(c, o) is not None for o in ("ge", "gt", "le", "lt")) else col
        present = v.notna().to_numpy()
        if c.eq is not None:
            m = (v == c.eq).to_numpy(dtype=bool) & present
        elif c.in_ is not None:
            m = v.isin(c.in_).to_numpy() & present
        elif c.ge is not None:
            m = (v >= c.ge).to_numpy(dtype=bool) & present
        elif c.gt is not None:
            m = (v > c.gt).to_numpy(dtype=bool) & present
        elif c.le is not None:
            m = (v <= c.le).to_numpy(dtype=bool) & present
        elif c.lt is not None:
            m = (v < c.lt).to_numpy(dtype=bool) & present
        else:
            m = np.array([c.holds({c.field: x}) for x in col.tolist()], dtype=bool)
        out &= m
    return out


def expected_risk(df: pd.DataFrame, p0: dict[str, float], factors: list[Any]) -> np.ndarray:
    """Each case's expected failure risk: a registry-wide logistic model of the risk factors per
    technique, its intercept moved so that the technique's mean risk equals its acceptable rate p0."""
    X = np.column_stack([_mask(f.when, df) for f in factors]).astype(float) if factors else np.zeros((len(df), 0))
    risk = np.empty(len(df))
    fail = (~df["ok"].astype(bool)).to_numpy(float)
    for tech, idx in df.groupby("technique", sort=False).indices.items():
        Xt, yt = X[idx], fail[idx]
        if Xt.shape[1]:
            keys, inv = np.unique(Xt, axis=0, return_inverse=True)
            inv = inv.ravel()
            # ridge 1: a few cases with perfect separation must not give infinite odds ratios
            beta = fit_logistic(keys, np.bincount(inv, yt, len(keys)), np.bincount(inv, None, len(keys)).astype(float),
                                ridge=1.0)
            lin = Xt @ beta[1:]
        else:
            lin = np.zeros(len(idx))
        target = p0[str(tech)]
        b0 = optimize.brentq(lambda b: float(np.mean(expit(b + lin))) - target, -40, 40)  # noqa: B023
        risk[idx] = expit(b0 + lin)
    return risk


def learning_curves(engine: Engine, *, min_cases: int = 20) -> list[LearningCurve]:
    """Risk-adjusted (Steiner) CUSUM of technical failure per operator and technique (date order),
    with the number of cases to competence; thresholds simulated on each technique's case mix."""
    cat = load_catalogue()
    lc = load_learning_curve_def()
    q = (select(Operator.code, Procedure.technique, Procedure.date, Procedure.id, Outcome.technical_success,
                Procedure.asa_class, Procedure.emergency, Procedure.age_years, Procedure.max_lesion_mm)
         .join(Operator, Operator.id == Procedure.primary_operator_id)
         .join(Outcome, Outcome.procedure_id == Procedure.id)
         .where(Outcome.technical_success.is_not(None)))
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=["operator", "technique", "date", "id", "ok", "asa_class",
                                                          "emergency", "age_years", "max_lesion_mm"])
    out: list[LearningCurve] = []
    if df.empty:
        return out
    df = df.sort_values(["operator", "technique", "date", "id"]).reset_index(drop=True)
    p0 = {t: cat.technique(str(t)).cusum.p0 for t in df["technique"].unique()}
    df["risk"] = expected_risk(df, p0, lc.risk_factors)
    limits: dict[str, tuple[float, float, float]] = {}
    for (op, tech), g in df.groupby(["operator", "technique"], sort=False):
        if len(g) < min_cases:
            continue
        tech = str(tech)
        if tech not in limits:
            c = cat.technique(tech).cusum
            r_a = odds_ratio(c.p0, c.p1)
            pool = df.loc[df["technique"] == tech, "risk"].to_numpy()
            limits[tech] = (r_a, *ra_thresholds(pool, r_a, horizon=lc.horizon, false_alarm=lc.false_alarm))
        r_a, h, h_c = limits[tech]
        res = ra_learning_curve(~g["ok"].astype(bool).to_numpy(), g["risk"].to_numpy(), r_a, h, h_c)
        out.append(LearningCurve(str(op), tech, res["n"], res["failures"], h, res["signal_at"], res["path"],
                                 expected_failures=res["expected"], odds_ratio=r_a,
                                 cases_to_competence=res["cases_to_competence"], h_competence=h_c,
                                 competence_path=res["competence_path"]))
    return out


def build_qc(engine: Engine, *, method: str = "additive") -> QCResult:
    """Indicators at hospital, operator and region level, ratings and learning curves."""
    defs = load_indicators()
    ind = compute_indicators(engine, by=("hospital", "operator", "region"), defs=defs, method=method)
    return QCResult(ind, rate_hospitals(engine, ind), learning_curves(engine), defs)
