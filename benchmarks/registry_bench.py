"""Registry benchmark: CSV import of 100,000 procedures and all indicators over 1,000,000.

Run: .venv/bin/python benchmarks/registry_bench.py [--backends sqlite,postgresql] [--import-n 100000]
     [--indicator-n 1000000] [--fresh]

Baselines measured in the same run:
* import: validation + one ORM ``record_procedure`` per row (audited row by row), on a subset,
  compared per row;
* indicators: a plain pandas implementation doing the same counts (issue 19): ``pd.read_sql`` of the
  per-procedure fields (procedures + outcomes + major-AE flag) and vectorised masks + ``groupby``
  sums of every indicator's denominator and numerator at hospital, operator and region level. Its
  counts are checked equal to ours. Both are timed best of ``--repeat`` runs.
The 1M-procedure databases are built with bulk inserts (SQLite executemany / PostgreSQL COPY) and
kept between runs (SQLite file in the temp folder, PostgreSQL schema ``openir_bench_<n>``); use
``--fresh`` to rebuild. PostgreSQL: $OPENIR_TEST_POSTGRES_URL or the local ``test`` database.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_dataset, load_sites
from openir.registry.db import init_db, make_engine
from openir.registry.importer import import_procedures, import_procedures_orm, write_import_csv
from openir.registry.indicators import compute_indicators, load_indicators
from openir.registry.models import Hospital, Procedure

PG_URL = os.environ.get("OPENIR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def engine_for(backend: str, name: str, fresh: bool) -> sa.Engine:
    if backend == "sqlite":
        path = Path(tempfile.gettempdir()) / f"{name}.db"
        if fresh and path.exists():
            path.unlink()
        return init_db(f"sqlite:///{path}")
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        if fresh:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
    admin.dispose()
    return init_db(engine=make_engine(PG_URL, schema=name))


def drop(backend: str, name: str) -> None:
    """Remove a scratch database (SQLite file or PostgreSQL schema)."""
    if backend == "sqlite":
        (Path(tempfile.gettempdir()) / f"{name}.db").unlink(missing_ok=True)
        return
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Procedure)).scalar_one()


def bench_import(backend: str, n: int, n_base: int, tmp: Path) -> dict[str, float]:
    ds = generate_registry(n, 60, seed=21, prefix="I")
    csv = write_import_csv(ds.procedures, ds.adverse_events, tmp / "import.csv")
    base_csv = write_import_csv(ds.procedures.head(n_base), ds.adverse_events, tmp / "base.csv")
    eng = engine_for(backend, "openir_bench_import", fresh=True)
    with eng.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    t0 = time.perf_counter()
    rep = import_procedures(eng, csv)
    fast = time.perf_counter() - t0
    assert rep.stored["procedures"] == n
    eng.dispose()
    eng = engine_for(backend, "openir_bench_import", fresh=True)
    with eng.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    t0 = time.perf_counter()
    import_procedures_orm(eng, base_csv)
    base = time.perf_counter() - t0
    eng.dispose()
    drop(backend, "openir_bench_import")
    return {"fast_s": fast, "fast_rows_s": n / fast, "base_s": base, "base_rows_s": n_base / base,
            "ratio": (base / n_base) / (fast / n)}


PANDAS_SQL = """
SELECT p.hospital_id, h.region, p.primary_operator_id AS operator_id, p.technique, p.category, p.age_years, p.asa_class,
       p.child_pugh, p.emergency, p.max_lesion_mm, p.duration_min, p.imaging_guidance, p.anaesthesia, p.dose_alert,
       p.n_flags, o.technical_success, o.complete_ablation, o.min_margin_mm, o.mrecist, o.easl, o.necrosis_pct, o.ltp,
       o.followup_months, o.puncture_bleeding, o.died, o.death_days, COALESCE(a.major_ae, 0) AS major_ae
FROM procedures p JOIN hospitals h ON h.id = p.hospital_id
LEFT JOIN outcomes o ON o.procedure_id = p.id
LEFT JOIN (SELECT procedure_id, MAX(CASE WHEN major THEN 1 ELSE 0 END) AS major_ae
           FROM adverse_events GROUP BY procedure_id) a ON a.procedure_id = p.id
"""


def _pd_cond(c, df: pd.DataFrame) -> np.ndarray:
    """Vectorised Condition (None never satisfies a test except is_null)."""
    if c.all_present is not None:
        return np.logical_and.reduce([df[f].notna().to_numpy() for f in c.all_present])
    col = df[c.field]
    present = col.notna().to_numpy()
    if c.is_null is not None:
        return ~present if c.is_null else present
    if isinstance(c.eq, bool):
        v = col.fillna(0).astype(bool).to_numpy()
        return present & (v if c.eq else ~v)
    for op, fn in (("eq", np.equal), ("ne", np.not_equal)):
        ref = getattr(c, op)
        if ref is not None:
            return present & fn(col.to_numpy(object), ref)
    if c.in_ is not None:
        return present & col.isin(c.in_).to_numpy()
    if c.not_in is not None:
        return present & ~col.isin(c.not_in).to_numpy()
    num = pd.to_numeric(col).to_numpy(float)
    for op, fn in (("ge", np.greater_equal), ("gt", np.greater), ("le", np.less_equal), ("lt", np.less)):
        ref = getattr(c, op)
        if ref is not None:
            with np.errstate(invalid="ignore"):
                return present & fn(num, ref)
    raise ValueError(c)


def pandas_indicators(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Baseline: read the per-procedure fields with pandas, count every indicator with groupby."""
    from openir.registry.indicators import _DERIVED

    defs = load_indicators()
    with engine.connect() as conn:
        df = pd.read_sql_query(sa.text(PANDAS_SQL), conn)
    for name, dv in _DERIVED.items():  # first recorded field decides
        val = np.full(len(df), np.nan)
        for c in reversed(dv.first_present):
            has = df[c.field].notna().to_numpy()
            val = np.where(has, _pd_cond(c, df).astype(float), val)
        df[name] = pd.Series(val).map({1.0: True, 0.0: False})
    cols = {}
    for d in defs:
        den = np.logical_and.reduce([_pd_cond(c, df) for c in d.denominator]) if d.denominator else np.ones(len(df), bool)
        if d.exclusions:
            den &= ~np.logical_or.reduce([_pd_cond(c, df) for c in d.exclusions])
        num = den & np.logical_and.reduce([_pd_cond(c, df) for c in d.numerator])
        cols[f"n_{d.code}"], cols[f"x_{d.code}"] = den, num
    flags = pd.DataFrame(cols).astype(np.int64)
    keys = df[["hospital_id", "operator_id", "region"]]
    return {k: flags.groupby(keys[col]).sum() for k, col in (("hospital", "hospital_id"), ("operator", "operator_id"),
                                                              ("region", "region"))}


def bench_indicators(backend: str, n: int, fresh: bool, repeat: int = 3) -> dict[str, object]:
    name = f"openir_bench_{n}"
    eng = engine_for(backend, name, fresh)
    t_build = 0.0
    if count(eng) != n:
        eng.dispose()
        eng = engine_for(backend, name, fresh=True)
        t0 = time.perf_counter()
        ds = generate_registry(n, 200, seed=5)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_dataset(eng, ds)
        t_build = time.perf_counter() - t0
        print(f"  [{backend}] built {n:,} procedures: generate {t_gen:.1f} s, bulk load {t_build:.1f} s "
              f"({n / t_build:,.0f} procedures/s)")
        if backend == "postgresql":
            with eng.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
    fast, base = [], []
    for _ in range(repeat):  # interleaved, best of each: the machine is shared
        t0 = time.perf_counter()
        tab = compute_indicators(eng, by=("hospital", "operator", "region"))
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = pandas_indicators(eng)
        base.append(time.perf_counter() - t0)
    h = tab[tab["level_by"] == "hospital"]
    with eng.connect() as conn:
        hid = dict(conn.execute(sa.select(Hospital.code, Hospital.id)).all())
    mism = 0
    for d in load_indicators():
        mine = h[h["indicator"] == d.code].set_index("unit")
        want = ref["hospital"][[f"n_{d.code}", f"x_{d.code}"]]
        for code, r in mine.iterrows():
            mism += (int(want.loc[hid[code], f"n_{d.code}"]), int(want.loc[hid[code], f"x_{d.code}"])) != (r["n"], r["x"])
    eng.dispose()
    return {"fast_s": min(fast), "fast_all": fast, "rows": len(tab), "pandas_s": min(base), "pandas_all": base,
            "ratio": min(base) / min(fast), "build_s": t_build, "mismatches": mism}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--import-n", type=int, default=100_000)
    ap.add_argument("--baseline-n", type=int, default=1_000)
    ap.add_argument("--indicator-n", type=int, default=1_000_000)
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached 1M databases")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each indicator computation (best is kept)")
    ap.add_argument("--skip-import", action="store_true")
    a = ap.parse_args()
    for backend in a.backends.split(","):
        if backend == "postgresql":
            try:
                with sa.create_engine(PG_URL).connect() as c:
                    c.execute(sa.text("select 1"))
            except Exception as exc:
                print(f"[postgresql] skipped: not reachable ({exc.__class__.__name__})")
                continue
        if not a.skip_import:
            with tempfile.TemporaryDirectory() as tmp:
                r = bench_import(backend, a.import_n, a.baseline_n, Path(tmp))
            print(f"[{backend}] import {a.import_n:,} procedures (validate + one transaction): {r['fast_s']:.1f} s "
                  f"= {r['fast_rows_s']:,.0f} rows/s; ORM row-by-row baseline {r['base_rows_s']:,.0f} rows/s "
                  f"({a.baseline_n:,} rows in {r['base_s']:.1f} s); speed-up x{r['ratio']:.1f}", flush=True)
        r = bench_indicators(backend, a.indicator_n, a.fresh, a.repeat)
        runs = ", ".join(f"{x:.2f}" for x in r["fast_all"])
        base_runs = ", ".join(f"{x:.2f}" for x in r["pandas_all"])
        print(f"[{backend}] all {len(load_indicators())} indicators x (hospital, operator, region) with exact CIs and "
              f"funnels over {a.indicator_n:,} procedures: {r['fast_s']:.2f} s (runs {runs}; target < 5 s); plain pandas "
              f"read + groupby of the same counts {r['pandas_s']:.2f} s (runs {base_runs}); ratio x{r['ratio']:.2f} "
              f"(target >= 3); hospital-level count mismatches: {r['mismatches']}", flush=True)


if __name__ == "__main__":
    main()
