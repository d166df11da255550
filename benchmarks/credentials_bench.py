"""Credentials benchmark (issue 22 item 4): "who is due for what" over 1,000,000 procedures.

Run: .venv/bin/python benchmarks/credentials_bench.py [--n 1000000] [--repeat 3] [--fresh] [--skip-curves]

Timed in the same process, best of ``--repeat`` (the machine is shared):
* ours: ``credentials_report`` without the learning curves (one grouped SQL query for cases per
  operator x technique x role and the last-12-months count, the training records, volumes, due list);
* plain pandas baseline doing the same counts: ``pd.read_sql`` of (operator, technique, role, date)
  per procedure-operator row + vectorised mask + ``groupby`` sums; its counts are checked equal;
* once: the full report including every operator's RA-CUSUM (``qc.learning_curves``).
The 1 M SQLite database (``openir_credentials_bench_<n>.db`` in the temp folder, the same synthetic
registry as ``registry_bench.py``: 200 hospitals, seed 5) is built if missing and kept; its own name,
because it carries the ``operator_training`` table (revision 0003_credentials).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_dataset
from openir.registry.credentials import credentials_report
from openir.registry.db import init_db
from openir.registry.models import Operator, OperatorTraining, Procedure


def engine_for(n: int, fresh: bool) -> sa.Engine:
    path = Path(tempfile.gettempdir()) / f"openir_credentials_bench_{n}.db"
    if fresh:
        path.unlink(missing_ok=True)
    eng = init_db(f"sqlite:///{path}")
    with eng.connect() as c:
        have = c.scalar(sa.select(sa.func.count()).select_from(Procedure))
    if have != n:
        eng.dispose()
        path.unlink(missing_ok=True)
        eng = init_db(f"sqlite:///{path}")
        t0 = time.perf_counter()
        load_dataset(eng, generate_registry(n, 200, seed=5))
        print(f"  built {n:,} procedures in {time.perf_counter() - t0:.1f} s")
    with eng.begin() as c:  # one refresher record per operator, dates spread over two years
        if not c.scalar(sa.select(sa.func.count()).select_from(OperatorTraining)):
            ids = [r[0] for r in c.execute(sa.select(Operator.id))]
            c.execute(OperatorTraining.__table__.insert(), [
                {"operator_id": i, "date": dt.date(2023, 1, 1) + dt.timedelta(days=(i * 37) % 730), "course": "refresher",
                 "hours": 8.0, "provider": "bench"} for i in ids])
    return eng


def pandas_counts(eng: sa.Engine, as_of: dt.date) -> pd.DataFrame:
    """The same per (operator, technique) counts with read_sql + groupby."""
    q = ("select o.code as operator, p.technique, po.role, p.date from procedure_operators po "
         "join procedures p on p.id = po.procedure_id join operators o on o.id = po.operator_id")
    df = pd.read_sql(q, eng)
    d = pd.to_datetime(df["date"])
    df = df[d <= pd.Timestamp(as_of)]
    d = pd.to_datetime(df["date"])
    prim = df["role"] == "primary"
    df = df.assign(primary=prim, assisted=~prim, primary_12m=prim & (d > pd.Timestamp(as_of - dt.timedelta(days=365))))
    return df.groupby(["operator", "technique"])[["primary", "assisted", "primary_12m"]].sum().astype(int)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--skip-curves", action="store_true", help="do not time the full report with RA-CUSUM")
    a = ap.parse_args()
    print(f"load: {os.getloadavg()}")
    eng = engine_for(a.n, a.fresh)
    with eng.connect() as c:
        as_of = c.scalar(sa.select(sa.func.max(Procedure.date)))
    ours, base = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rep = credentials_report(eng, as_of=as_of, curves=[])
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = pandas_counts(eng, as_of)
        base.append(time.perf_counter() - t0)
    got = pd.DataFrame([(r.operator, c.technique, c.primary, c.assisted) for r in rep for c in r.counts],
                       columns=["operator", "technique", "primary", "assisted"]).set_index(["operator", "technique"]).sort_index()
    mism = int((got[["primary", "assisted"]] != ref.loc[got.index, ["primary", "assisted"]]).any(axis=1).sum())
    mism += len(ref) - len(got)
    print(f"operators {len(rep)}, due {sum(bool(r.due) for r in rep)}; (operator, technique) cells {len(got)}, "
          f"mismatches vs pandas {mism}")
    print(f"credentials report (no curves): best {min(ours):.2f} s (runs {', '.join(f'{x:.2f}' for x in ours)})")
    print(f"pandas read_sql + groupby:      best {min(base):.2f} s (runs {', '.join(f'{x:.2f}' for x in base)})")
    print(f"ratio pandas / ours: {min(base) / min(ours):.2f}x")
    if not a.skip_curves:
        t0 = time.perf_counter()
        full = credentials_report(eng, as_of=as_of)
        t = time.perf_counter() - t0
        print(f"full report with every operator's RA-CUSUM (once): {t:.1f} s; "
              f"{sum(len(r.curves) for r in full)} curves, {sum(any(d.kind == 'cusum' for d in r.due) for r in full)} "
              "operators with a CUSUM alarm")
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
