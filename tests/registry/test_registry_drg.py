"""DRG cost analysis equals an independent pandas computation; cost funnel finds the planted outlier;
the data file is consistent; the database path gives the frame path's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from openir.phantom.registry_costs import TECHNIQUE_DRG, generate_costs
from openir.phantom.registry_data import generate_registry
from openir.registry.drg import DATA, case_table, cost_funnel, drg_summary, load_drg_config

KEYS = ["drg_code", "hospital_code"]


def expected_summary(procs: pd.DataFrame, heads: pd.DataFrame, items: pd.DataFrame, aes: pd.DataFrame,
                     weights: dict[str, float], base: float) -> pd.DataFrame:
    """The same table written the plain way: merge items onto cases, group, divide."""
    m = heads.merge(procs, left_on="procedure_uid", right_on="uid", how="inner")
    m["drg_code"] = m["drg_code"].fillna("(none)")
    m["comp"] = m["uid"].isin(aes["procedure_uid"]).astype(float)
    m["ts"] = m["technical_success"].map({True: 1.0, False: 0.0})
    settled = m["payment_cny"] if "payment_cny" in m else pd.Series(np.nan, index=m.index)
    m["pay"] = settled.astype(float).fillna(m["drg_code"].map(weights) * base)
    m["margin"] = m["pay"] - m["total_cost_cny"]
    rows = []
    it = items.merge(m[["uid", *KEYS]], left_on="procedure_uid", right_on="uid")
    it = it[(it["category"] == "consumable") & it["origin"].isin(["domestic", "imported"])]
    for key, g in m.groupby(KEYS):
        k = it[(it["drg_code"] == key[0]) & (it["hospital_code"] == key[1])]
        dom = k[k["origin"] == "domestic"]
        kc = float(k["amount_cny"].sum())
        rows.append({"drg_code": key[0], "hospital_code": key[1], "cases": len(g),
                     "cost_mean": g["total_cost_cny"].mean(), "cost_median": g["total_cost_cny"].median(),
                     "los_mean": g["length_of_stay_days"].mean(), "los_median": g["length_of_stay_days"].median(),
                     "complication_rate": g["comp"].mean(), "technical_success_rate": g["ts"].mean(),
                     "payment_mean": g["pay"].mean(), "margin_mean": g["margin"].mean(),
                     "margin_total": g["margin"].sum() if g["margin"].notna().any() else np.nan,
                     "domestic_share_cost": float(dom["amount_cny"].sum()) / kc if kc > 0 else np.nan,
                     "domestic_share_count": len(dom) / len(k) if len(k) else np.nan})
    return pd.DataFrame(rows)


def _compare(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    got = got.sort_values(KEYS, ignore_index=True)
    exp = exp.sort_values(KEYS, ignore_index=True)
    assert got[KEYS].equals(exp[KEYS])
    assert got["cases"].tolist() == exp["cases"].tolist()
    for c in exp.columns.drop([*KEYS, "cases"]):
        np.testing.assert_allclose(got[c].to_numpy(float), exp[c].to_numpy(float), rtol=1e-9, atol=1e-6,
                                   equal_nan=True, err_msg=c)


@pytest.fixture(scope="module")
def synthetic():
    ds = generate_registry(6000, 16, seed=5)
    costs = generate_costs(ds.procedures, seed=5)
    return ds, costs


def test_summary_equals_pandas_on_generated_data(synthetic):
    ds, costs = synthetic
    cfg = load_drg_config()
    cases = case_table(ds.procedures, costs.headers, costs.items, ds.adverse_events)
    got = drg_summary(cases, cfg)
    exp = expected_summary(ds.procedures, costs.headers, costs.items.astype({"origin": object, "category": object}),
                           ds.adverse_events, cfg.payment.weights, cfg.payment.base_rate_cny)
    _compare(got, exp)
    # the generator's planted hospital without domestic consumables reads 0 %
    nodom = got[got["hospital_code"] == costs.truth["no_domestic"][0]]
    assert len(nodom) and (nodom["domestic_share_cost"] == 0).all() and (nodom["domestic_share_count"] == 0).all()


def test_edge_cases_one_case_group_no_domestic_zero_costs_blanks():
    procs = pd.DataFrame({"uid": list("abcdefg"), "hospital_code": ["H1", "H1", "H2", "H2", "H3", "H1", "H2"],
                          "technique": ["tace"] * 7,
                          "technical_success": [True, None, False, True, True, True, None]})
    heads = pd.DataFrame({"procedure_uid": list("abcdefg"),
                          "drg_code": ["RD15", "RD15", "RD15", "RD15", "IR-TIPS", None, "XX99"],
                          "length_of_stay_days": [5, np.nan, 7, 3, 12, 4, 2],
                          "total_cost_cny": [20000.0, 0.0, 30000.0, 10000.0, 80000.0, 500.0, 0.0],
                          "payment_cny": [np.nan, np.nan, 25000.0, np.nan, np.nan, np.nan, np.nan]})
    items = pd.DataFrame({"procedure_uid": ["a", "a", "a", "b", "c", "c", "d", "e", "e", "f", "zz"],
                          "category": ["consumable", "consumable", "drug", "consumable", "consumable", "bed",
                                       "consumable", "consumable", "consumable", "imaging", "consumable"],
                          "origin": ["domestic", "imported", None, "domestic", "imported", None, None, "imported",
                                     "imported", None, "domestic"],
                          "amount_cny": [5000.0, 15000.0, 0.0, 0.0, 30000.0, 0.0, 10000.0, 50000.0, 30000.0, 500.0, 9.0]})
    aes = pd.DataFrame({"procedure_uid": ["c", "c", "e"]})
    cfg = load_drg_config()
    got = drg_summary(case_table(procs, heads, items, aes), cfg)
    exp = expected_summary(procs, heads, items, aes, cfg.payment.weights, cfg.payment.base_rate_cny)
    _compare(got, exp)
    row = got.set_index(KEYS)
    assert row.loc[("IR-TIPS", "H3"), "cases"] == 1  # a group with one case
    assert row.loc[("IR-TIPS", "H3"), "domestic_share_cost"] == 0.0  # a hospital with no domestic items
    # hand-derived: H1 RD15 = a (5000 domestic of 20000 known) + b (0 CNY domestic): 25 % by cost, 2/3 by count
    assert row.loc[("RD15", "H1"), "domestic_share_cost"] == pytest.approx(0.25)
    assert row.loc[("RD15", "H1"), "domestic_share_count"] == pytest.approx(2 / 3)
    assert row.loc[("RD15", "H1"), "technical_success_rate"] == 1.0  # b's blank is not a failure
    assert row.loc[("RD15", "H2"), "domestic_share_cost"] == 0.0  # an item of unknown origin is left out
    assert np.isnan(row.loc[("XX99", "H2"), "payment_mean"])  # no weight for the code: payment unknown
    assert row.loc[("RD15", "H2"), "payment_mean"] == pytest.approx((25000 + 2.2 * 10000) / 2)


def test_funnel_limits_by_hand_and_planted_outlier(synthetic):
    ds, costs = synthetic
    cases = case_table(ds.procedures, costs.headers, costs.items, ds.adverse_events)
    f = cost_funnel(cases)
    g = cases[cases["drg_code"] == "RD15"]["cost"]
    row = f[f["drg_code"] == "RD15"].iloc[0]
    n = row["n"]
    assert row["group_mean"] == pytest.approx(g.mean()) and row["group_sd"] == pytest.approx(g.std(ddof=1))
    assert row["hi998"] == pytest.approx(g.mean() + 3.090232306 * g.std(ddof=1) / np.sqrt(n))
    assert row["lo95"] == pytest.approx(g.mean() - 1.959963985 * g.std(ddof=1) / np.sqrt(n))
    bad = costs.truth["cost_outlier"][0]
    mine = f[f["hospital_code"] == bad].set_index("drg_code")["status"]
    assert mine["RD15"] == "alarm" and (mine == "alarm").sum() >= 3  # groups mixing techniques blur it
    others = f[(f["hospital_code"] != bad)]
    assert (others["status"] == "alarm").mean() < 0.05
    one = cost_funnel(pd.DataFrame({"uid": ["x"], "hospital_code": ["H"], "drg_code": ["G"], "cost": [5.0]}))
    assert one["status"].tolist() == ["too few"]


def test_drg_data_file_is_consistent():
    raw = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    cfg = load_drg_config()
    techniques = {t["code"] for t in yaml.safe_load((DATA.parent / "techniques.yaml").read_text())["techniques"]}
    assert set(cfg.technique_drg) == techniques
    assert cfg.technique_drg == TECHNIQUE_DRG  # the synthetic generator mirrors the data file
    codes = {d for g in cfg.groups for d in g.drgs}
    assert set(cfg.technique_drg.values()) <= codes and set(cfg.payment.weights) <= codes
    assert raw["payment_example"]["example"] is True and "EXAMPLE" in cfg.payment.region
    assert all(g.source for g in cfg.groups)


def test_payment_config_errors_name_file_and_field(tmp_path):
    from openir.core.errors import InputError

    p = tmp_path / "city.yaml"
    p.write_text("payment: {region: Somewhere, base_rate_cny: -3, weights: {RD15: 2}, source: x}\n")
    with pytest.raises(InputError, match=r"city.yaml \[payment.base_rate_cny\]"):
        load_drg_config(p)
    p.write_text("payment: {region: Somewhere, base_rate_cny: 9000, weights: {RD15: .nan}, source: bureau notice}\n")
    with pytest.raises(InputError, match=r"payment.weights.RD15"):
        load_drg_config(p)
    p.write_text("payment: {region: Somewhere, base_rate_cny: 9000, weights: {RD15: 2.5}, source: bureau notice}\n")
    cfg = load_drg_config(p)
    assert cfg.payment.base_rate_cny == 9000 and not cfg.payment.example


def test_module_example_runs():
    import doctest

    import openir.registry.drg as mod

    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 3 and res.failed == 0
