"""Quality control in one pass: indicators with exact CIs and funnel status, hospital ratings with
reasons, operator CUSUM learning curves. Data only; the HTML report and its figures are drawn by
:mod:`openir.report` (``render_qc_html``, ``funnel_figure``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from .catalogue import load_catalogue
from .cusum import cusum_signal
from .indicators import IndicatorDef, compute_indicators, load_indicators
from .models import Operator, Outcome, Procedure
from .ratings import HospitalRating, rate_hospitals


@dataclass
class LearningCurve:
    """One operator's Bernoulli CUSUM path for one technique, with its threshold and first signal."""

    operator: str
    technique: str
    n: int
    failures: int
    h: float
    signal_at: int | None
    path: np.ndarray = field(repr=False)


@dataclass
class QCResult:
    """Everything the QC report and the dashboards show, computed once."""

    indicators: pd.DataFrame
    ratings: list[HospitalRating]
    curves: list[LearningCurve]
    defs: tuple[IndicatorDef, ...]


def learning_curves(engine: Engine, *, min_cases: int = 20) -> list[LearningCurve]:
    """Bernoulli CUSUM of technical failure per operator and technique (date order)."""
    cat = load_catalogue()
    q = (select(Operator.code, Procedure.technique, Procedure.date, Procedure.id, Outcome.technical_success)
         .join(Operator, Operator.id == Procedure.primary_operator_id)
         .join(Outcome, Outcome.procedure_id == Procedure.id)
         .where(Outcome.technical_success.is_not(None)))
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=["operator", "technique", "date", "id", "ok"])
    out = []
    if df.empty:
        return out
    df = df.sort_values(["operator", "technique", "date", "id"])
    for (op, tech), g in df.groupby(["operator", "technique"], sort=False):
        if len(g) < min_cases:
            continue
        c = cat.technique(str(tech)).cusum
        res = cusum_signal(~g["ok"].astype(bool).to_numpy(), c.p0, c.p1)
        out.append(LearningCurve(str(op), str(tech), res["n"], res["failures"], res["h"], res["signal_at"], res["path"]))
    return out


def build_qc(engine: Engine, *, method: str = "additive") -> QCResult:
    """Indicators at hospital, operator and region level, ratings and learning curves."""
    defs = load_indicators()
    ind = compute_indicators(engine, by=("hospital", "operator", "region"), defs=defs, method=method)
    return QCResult(ind, rate_hospitals(engine, ind), learning_curves(engine), defs)
