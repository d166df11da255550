"""DRG cost analysis benchmark: 1,000,000 procedures and ~5,000,000 cost items.

Run: .venv/bin/python benchmarks/drg_bench.py [--n 1000000] [--hospitals 200] [--repeat 2]

The synthetic registry and its cost data are generated, written to Parquet (procedures, cost
headers, cost items), then timed from the files, best of ``--repeat``:
* openir: read the three files + ``case_table`` + ``drg_summary`` + ``cost_funnel``;
* baseline (plain pandas): read the same files, merge the items onto the cases and ``groupby`` the
  same metrics (cost mean/median, stay, complication and success rates, domestic shares by cost and
  count, payment minus cost). Its numbers are checked equal to openir's.
The ratio printed is openir / baseline (below 1: openir is faster).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _timing import best  # benchmarks/ is on sys.path when a script there runs
from openir.phantom.registry_costs import generate_costs
from openir.phantom.registry_data import generate_registry
from openir.registry.drg import case_table, cost_funnel, drg_summary, load_drg_config

KEYS = ["drg_code", "hospital_code"]


def baseline(folder: Path, weights: dict[str, float], base: float) -> pd.DataFrame:
    """The plain way: read, merge items onto cases, group."""
    procs = pd.read_parquet(folder / "procedures.parquet")
    heads = pd.read_parquet(folder / "headers.parquet")
    items = pd.read_parquet(folder / "items.parquet")
    m = heads.merge(procs, left_on="procedure_uid", right_on="uid")
    m["ts"] = m["technical_success"].astype(float)
    m["pay"] = m["payment_cny"].fillna(m["drg_code"].map(weights).astype(float) * base)
    m["margin"] = m["pay"] - m["total_cost_cny"]
    it = items.merge(m[["uid", *KEYS]], left_on="procedure_uid", right_on="uid")
    it = it[(it["category"] == "consumable") & it["origin"].isin(["domestic", "imported"])]
    it = it.assign(dom_amt=np.where(it["origin"] == "domestic", it["amount_cny"], 0.0),
                   dom_n=(it["origin"] == "domestic").astype(float))
    shares = it.groupby(KEYS, observed=True).agg(known_cost=("amount_cny", "sum"), dom_cost=("dom_amt", "sum"),
                                                 known_n=("amount_cny", "size"), dom_n=("dom_n", "sum"))
    out = m.groupby(KEYS).agg(cases=("uid", "size"), cost_mean=("total_cost_cny", "mean"),
                              cost_median=("total_cost_cny", "median"), los_mean=("length_of_stay_days", "mean"),
                              complication_rate=("complication", "mean"), technical_success_rate=("ts", "mean"),
                              margin_mean=("margin", "mean"))
    out = out.join(shares)
    out["domestic_share_cost"] = out["dom_cost"] / out["known_cost"]
    out["domestic_share_count"] = out["dom_n"] / out["known_n"]
    return out.reset_index()


def ours(folder: Path, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    procs = pd.read_parquet(folder / "procedures.parquet")
    heads = pd.read_parquet(folder / "headers.parquet")
    items = pd.read_parquet(folder / "items.parquet")
    cases = case_table(procs, heads, items)
    return drg_summary(cases, cfg), cost_funnel(cases)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--hospitals", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    t0 = time.perf_counter()
    ds = generate_registry(a.n, a.hospitals, seed=1)
    costs = generate_costs(ds.procedures, seed=1)
    t_gen = time.perf_counter() - t0
    folder = Path(tempfile.mkdtemp(prefix="drg_bench_"))
    p = ds.procedures[["uid", "hospital_code", "technique", "technical_success"]].copy()
    p["technical_success"] = p["technical_success"].astype("boolean")
    p["complication"] = p["uid"].isin(ds.adverse_events["procedure_uid"])
    p.to_parquet(folder / "procedures.parquet")
    costs.headers.to_parquet(folder / "headers.parquet")
    costs.items.to_parquet(folder / "items.parquet")
    print(f"generated {a.n:,} procedures, {len(costs.items):,} cost items in {t_gen:.1f} s -> {folder}")
    cfg = load_drg_config()
    t_base, base = best(lambda: baseline(folder, cfg.payment.weights, cfg.payment.base_rate_cny), a.repeat)
    t_ours, (summ, fun) = best(lambda: ours(folder, cfg), a.repeat)  # type: ignore[misc]
    got = summ.set_index(KEYS).sort_index()
    exp = base.set_index(KEYS).sort_index()
    for c in ("cases", "cost_mean", "cost_median", "los_mean", "complication_rate", "technical_success_rate",
              "margin_mean", "domestic_share_cost", "domestic_share_count"):
        np.testing.assert_allclose(got[c].to_numpy(float), exp[c].to_numpy(float), rtol=1e-9, equal_nan=True, err_msg=c)
    print(f"groups x hospitals: {len(summ)}; funnel alarms: {(fun['status'] == 'alarm').sum()} "
          f"(planted cost outlier {costs.truth.get('cost_outlier')})")
    print(f"openir (read + case table + summary + funnel): {t_ours:.2f} s")
    print(f"plain pandas (read + merge + groupby):        {t_base:.2f} s")
    print(f"ratio openir / pandas: {t_ours / t_base:.2f}x (results equal)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
