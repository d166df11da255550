"""Cost import (UTF-8 / GB18030, Chinese headers, clear errors, idempotent, transactional), the
database analysis equal to the frame analysis, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import InputError
from openir.phantom.registry_costs import generate_costs
from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_dataset
from openir.registry.costs import import_costs, store_cost_dataset, write_costs_csv
from openir.registry.drg import analyse_drg, case_table, cost_funnel, drg_summary, load_drg_config
from openir.registry.importer import ImportValidationError
from openir.registry.models import CostItem, ProcedureCost

runner = CliRunner()


def _counts(engine) -> tuple[int, int, float]:
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(ProcedureCost)).scalar_one(),
                conn.execute(select(func.count()).select_from(CostItem)).scalar_one(),
                float(conn.execute(select(func.coalesce(func.sum(CostItem.amount_cny), 0.0))).scalar_one()))


@pytest.fixture()
def small(engine):
    ds = generate_registry(600, 8, seed=11)
    load_dataset(engine, ds)
    return engine, ds


def test_database_analysis_equals_frames(small):
    engine, ds = small
    costs = generate_costs(ds.procedures, seed=2)
    counts = store_cost_dataset(engine, costs.headers, costs.items)
    assert counts == {"procedure_costs": len(costs.headers), "cost_items": len(costs.items)}
    cfg = load_drg_config()
    res = analyse_drg(engine, config=cfg)
    frames = case_table(ds.procedures, costs.headers, costs.items, ds.adverse_events)
    exp = drg_summary(frames, cfg)
    got = res.summary.sort_values(["drg_code", "hospital_code"], ignore_index=True)
    exp = exp.sort_values(["drg_code", "hospital_code"], ignore_index=True)
    pd.testing.assert_frame_equal(got, exp, check_exact=False, rtol=1e-9)
    fun = cost_funnel(frames)
    np.testing.assert_allclose(res.funnel["hi998"], fun["hi998"], rtol=1e-9)
    one = analyse_drg(engine, config=cfg, group="RD15", hospital=ds.hospitals["code"].iloc[0])
    assert set(one.summary["drg_code"]) <= {"RD15"} and set(one.summary["hospital_code"]) <= {ds.hospitals["code"].iloc[0]}
    json.dumps(res.to_json(), default=str)  # serialisable (NaN -> null)


def test_import_gb18030_chinese_headers_idempotent(small, tmp_path):
    engine, ds = small
    uids = ds.procedures["uid"].tolist()[:3]
    csv = ("手术编号,DRG编码,住院天数,费用类别,项目名称,产地,医保耗材编码,数量,金额\n"
           f"{uids[0]},RD13,6,耗材,微波消融针,国产,C0000TEST,1,\"6,000\"\n"
           f"{uids[0]},RD13,6,耗材,同轴引导针,进口,,1,720\n"
           f"{uids[0]},,,床位,床位费,,,6,720\n"
           f"{uids[1]},,３,药品,药品,,,1,0\n"
           f"{uids[2]},IR-TIPS,10,consumable,stent,domestic,,1,16000\n")
    f = tmp_path / "costs.csv"
    f.write_bytes(csv.encode("gb18030"))
    rep = import_costs(engine, f)
    assert rep.stored == {"procedure_costs": 3, "cost_items": 5}
    first = _counts(engine)
    assert first == (3, 5, pytest.approx(6000 + 720 + 720 + 0 + 16000))
    import_costs(engine, f)  # again: replaced, not doubled
    assert _counts(engine) == first
    with engine.connect() as conn:
        rows = dict(conn.execute(select(ProcedureCost.drg_code, ProcedureCost.total_cost_cny)).all())
    assert rows["RD13"] == pytest.approx(7440.0) and rows["IR-TIPS"] == 16000.0
    tech = ds.procedures.set_index("uid").loc[uids[1], "technique"]
    assert load_drg_config().technique_drg[tech] in rows  # blank DRG code: the technique's group


def test_bad_file_names_row_and_column_and_stores_nothing(small, tmp_path):
    engine, ds = small
    uid = ds.procedures["uid"].iloc[0]
    f = tmp_path / "bad.csv"
    f.write_text("procedure_uid,drg_code,category,origin,amount_cny\n"
                 f"{uid},RD15,consumable,domestic,100\n"
                 f"{uid},RD13,consumable,domestic,100\n"
                 f"NOPE,RD15,consumable,domestic,100\n"
                 f"{uid},RD15,gadget,martian,-5\n", encoding="utf-8")
    with pytest.raises(ImportValidationError) as err:
        import_costs(engine, f)
    probs = {(p.row, p.field) for p in err.value.report.problems}
    assert {(3, "drg_code"), (4, "procedure_uid"), (5, "category"), (5, "origin"), (5, "amount_cny")} <= probs
    assert _counts(engine) == (0, 0, 0.0)
    f.write_text("procedure_uid,amount_cny\nX,1\n")
    with pytest.raises(ImportValidationError, match="category"):
        import_costs(engine, f)


def test_cli_seed_costs_drg_table_json_csv_funnel(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert runner.invoke(app, ["registry", "seed", "--db", db, "--procedures", "3000", "--hospitals", "10"]).exit_code == 0
    r = runner.invoke(app, ["registry", "seed-costs", "--db", db])
    assert r.exit_code == 0, r.output
    png, out = tmp_path / "f.png", tmp_path / "s.csv"
    r = runner.invoke(app, ["registry", "drg", "--db", db, "--csv", str(out), "--funnel", str(png)])
    assert r.exit_code == 0, r.output
    assert "EXAMPLE" in r.output and "RD15" in r.output
    assert png.read_bytes()[:4] == b"\x89PNG" and len(pd.read_csv(out)) > 10
    r = runner.invoke(app, ["registry", "drg", "--db", db, "--json", "--group", "IR-TIPS"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert {row["drg_code"] for row in body["summary"]} == {"IR-TIPS"}
    r = runner.invoke(app, ["registry", "drg", "--db", db, "--group", "NOPE"])
    assert isinstance(r.exception, InputError) and r.exception.exit_code == 2 and "no cost data" in str(r.exception)
    bad = tmp_path / "c.csv"
    bad.write_text("procedure_uid,category,amount_cny\nP00000001,consumable,abc\n")
    r = runner.invoke(app, ["registry", "import-costs", str(bad), "--db", db])
    assert r.exit_code != 0 and "row 2, amount_cny" in r.output + str(r.exception)


def test_write_and_reimport_generated_costs(small, tmp_path):
    engine, ds = small
    costs = generate_costs(ds.procedures.iloc[:50], seed=1)
    path = write_costs_csv(costs.headers, costs.items, tmp_path / "gen.csv")
    rep = import_costs(engine, path)
    assert rep.stored == {"procedure_costs": 50, "cost_items": len(costs.items)}
    assert _counts(engine)[2] == pytest.approx(costs.items["amount_cny"].sum())


def test_excel_file_imports_like_csv(small, tmp_path):
    engine, ds = small
    uid = ds.procedures["uid"].iloc[5]
    x = tmp_path / "costs.xlsx"
    pd.DataFrame({"手术编号": [uid, uid], "费用类别": ["耗材", "床位"], "产地": ["进口", None],
                  "住院天数": [4, 4], "金额": [1200.5, 480]}).to_excel(x, index=False)
    rep = import_costs(engine, x)
    assert rep.stored == {"procedure_costs": 1, "cost_items": 2}
    assert _counts(engine) == (1, 2, pytest.approx(1680.5))
