"""Registry benchmark: CSV import of 100,000 procedures and all indicators over 1,000,000.

Run: .venv/bin/python benchmarks/registry_bench.py [--backends sqlite,postgresql] [--import-n 100000]
     [--indicator-n 1000000] [--fresh]

Baselines measured in the same run:
* import: validation + one ORM ``record_procedure`` per row (audited row by row), on a subset,
  compared per row;
* indicators: a per-hospital Python loop (fetch each hospital's rows, count in Python), on a
  subset of hospitals, compared per procedure.
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

import sqlalchemy as sa

from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_dataset, load_sites
from openir.registry.db import init_db, make_engine
from openir.registry.importer import import_procedures, import_procedures_orm, write_import_csv
from openir.registry.indicators import compute_indicators, load_indicators
from openir.registry.models import Hospital, Outcome, Procedure

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


def naive_indicators(engine: sa.Engine, hospital_ids: list[int]) -> int:
    """Baseline: per hospital, fetch rows and count a few indicators in a Python loop."""
    defs = load_indicators()
    rows_seen = 0
    with engine.connect() as conn:
        for hid in hospital_ids:
            q = (sa.select(Procedure.category, Procedure.dose_alert, Procedure.age_years, Procedure.asa_class,
                           Procedure.duration_min, Procedure.imaging_guidance, Procedure.anaesthesia,
                           Outcome.technical_success, Outcome.complete_ablation, Outcome.ltp, Outcome.followup_months,
                           Outcome.mrecist, Outcome.puncture_bleeding, Outcome.died, Outcome.death_days)
                 .join(Outcome, Outcome.procedure_id == Procedure.id).where(Procedure.hospital_id == hid))
            recs = [r._asdict() for r in conn.execute(q)]
            rows_seen += len(recs)
            for d in defs:
                n = x = 0
                for rec in recs:
                    if all(c.holds(rec) for c in d.denominator) and not any(c.holds(rec) for c in d.exclusions):
                        n += 1
                        x += all(c.holds(rec) for c in d.numerator)
    return rows_seen


def bench_indicators(backend: str, n: int, fresh: bool) -> dict[str, float]:
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
    t0 = time.perf_counter()
    tab = compute_indicators(eng, by=("hospital", "operator", "region"))
    fast = time.perf_counter() - t0
    with eng.connect() as conn:
        hids = [h for (h,) in conn.execute(sa.select(Hospital.id).order_by(Hospital.id).limit(10))]
    t0 = time.perf_counter()
    rows = naive_indicators(eng, hids)
    base = time.perf_counter() - t0
    eng.dispose()
    return {"fast_s": fast, "rows": len(tab), "base_s_subset": base, "base_rows": rows,
            "base_est_s": base * n / max(rows, 1), "ratio": (base / max(rows, 1)) / (fast / n), "build_s": t_build}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--import-n", type=int, default=100_000)
    ap.add_argument("--baseline-n", type=int, default=1_000)
    ap.add_argument("--indicator-n", type=int, default=1_000_000)
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached 1M databases")
    a = ap.parse_args()
    for backend in a.backends.split(","):
        if backend == "postgresql":
            try:
                with sa.create_engine(PG_URL).connect() as c:
                    c.execute(sa.text("select 1"))
            except Exception as exc:
                print(f"[postgresql] skipped: not reachable ({exc.__class__.__name__})")
                continue
        with tempfile.TemporaryDirectory() as tmp:
            r = bench_import(backend, a.import_n, a.baseline_n, Path(tmp))
        print(f"[{backend}] import {a.import_n:,} procedures (validate + one transaction): {r['fast_s']:.1f} s "
              f"= {r['fast_rows_s']:,.0f} rows/s; ORM row-by-row baseline {r['base_rows_s']:,.0f} rows/s "
              f"({a.baseline_n:,} rows in {r['base_s']:.1f} s); speed-up x{r['ratio']:.1f}")
        r = bench_indicators(backend, a.indicator_n, a.fresh)
        print(f"[{backend}] all {len(load_indicators())} indicators x (hospital, operator, region) with exact CIs and "
              f"funnels over {a.indicator_n:,} procedures: {r['fast_s']:.2f} s (target < 5 s); per-hospital Python "
              f"loop baseline {r['base_s_subset']:.1f} s for {r['base_rows']:,} rows -> ~{r['base_est_s']:.0f} s for all "
              f"(hospital level only); speed-up x{r['ratio']:.0f}")


if __name__ == "__main__":
    main()
