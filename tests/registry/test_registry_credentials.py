"""Learning curves to credentials: counts against pandas, the RA-CUSUM against an independent
recomputation, the "who is due for what" list on a hand-built case set, training-record import."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import InputError
from openir.registry import (
    HospitalIn,
    OperatorIn,
    OutcomeIn,
    ProcedureIn,
    add_hospital,
    add_operator,
    case_counts,
    credentials_report,
    import_training,
    record_procedure,
    session_scope,
)
from openir.registry.credentials import add_months
from openir.registry.db import init_db

AS_OF = dt.date(2025, 12, 31)


def test_counts_equal_pandas_groupby(seeded):
    engine, ds = seeded
    p = ds.procedures
    as_of = pd.to_datetime(p["date"]).max().date()
    got = case_counts(engine, as_of=as_of).set_index(["operator", "technique"]).sort_index()
    d = pd.to_datetime(p["date"]).dt.date
    exp = (p.assign(recent=(d > as_of - dt.timedelta(days=365)))
           .groupby(["operator_code", "technique"]).agg(primary=("uid", "size"), primary_12m=("recent", "sum")))
    exp.index.names = ["operator", "technique"]
    exp = exp.sort_index()
    assert got.index.equals(exp.index)
    assert (got["primary"].to_numpy() == exp["primary"].to_numpy()).all()
    assert (got["primary_12m"].to_numpy() == exp["primary_12m"].to_numpy()).all()
    assert (got["assisted"] == 0).all()  # the generated set records primary operators only
    one = ds.hospitals["code"].iloc[0]
    mine = case_counts(engine, hospital=one, as_of=as_of)
    ops = set(ds.operators.loc[ds.operators["hospital_code"] == one, "code"])
    assert set(mine["operator"]) <= ops and mine["primary"].sum() == p[p["hospital_code"] == one].shape[0]


def test_curves_in_the_report_match_pandas_on_generated_data(seeded):
    """Per (operator, technique) with a known outcome: cases and failures equal a pandas groupby, in
    date order; every chart with >= 20 cases is in its operator's report."""
    engine, ds = seeded
    p = ds.procedures
    p = p[p["technical_success"].notna()]
    g = p.groupby(["operator_code", "technique"])["technical_success"].agg(
        n="size", failures=lambda s: int((~s.astype(bool)).sum()))
    g = g[g["n"] >= 20]
    one = ds.hospitals["code"].iloc[0]
    rep = credentials_report(engine, hospital=one, as_of=pd.to_datetime(ds.procedures["date"]).max().date())
    got = {(r.operator, c.technique): (c.n, c.failures) for r in rep for c in r.curves}
    want = {k: (int(v["n"]), int(v["failures"])) for k, v in g.iterrows() if k[0].startswith(f"{one}-")}
    assert got == want and want
    for r in rep:  # a CUSUM alarm is due exactly when a chart signalled
        assert sorted(d.detail for d in r.due if d.kind == "cusum") == sorted(c.technique for c in r.curves if c.signal_at)


def _case(uid: str, op: str, hosp: str, day: dt.date, tech: str, ok: bool = True, assistants=()) -> ProcedureIn:
    disease = {"tips": "portal hypertension", "ct_biopsy": "lung nodule"}[tech]
    return ProcedureIn(uid=uid, patient_key=f"pk-{uid}", hospital_code=hosp, operator_code=op, date=day, technique=tech,
                       disease=disease, assistant_codes=list(assistants), outcome=OutcomeIn(technical_success=ok))


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory):
    """A: complete and current; B: volumes short, no refresher, assists A; C: junior with a failing
    start (CUSUM alarm) and a lapsed refresher; D: another hospital, no cases, fresh refresher."""
    engine = init_db(f"sqlite:///{tmp_path_factory.mktemp('cred') / 'r.db'}")
    with session_scope(engine, "test") as s:
        for h in ("H1", "H2"):
            add_hospital(s, HospitalIn(code=h, name=h, level="tertiary", region="R"))
        for code, h, cred in (("A", "H1", "senior"), ("B", "H1", "senior"), ("C", "H1", "junior"), ("D", "H2", "intermediate")):
            add_operator(s, OperatorIn(code=code, hospital_code=h, credential=cred))
        d25, d24 = dt.date(2025, 1, 2), dt.date(2024, 1, 2)
        for i in range(60):
            record_procedure(s, _case(f"A-T{i}", "A", "H1", d25 + dt.timedelta(days=i), "tips",
                                      assistants=("B",) if i < 5 else ()))
        for i in range(50):
            record_procedure(s, _case(f"A-B{i}", "A", "H1", d24 + dt.timedelta(days=i), "ct_biopsy"))
        for i in range(60):
            record_procedure(s, _case(f"B-T{i}", "B", "H1", d24 + dt.timedelta(days=i), "tips"))
        fails = set(range(0, 20, 2)) | {1, 3}
        for i in range(30):
            record_procedure(s, _case(f"C-B{i}", "C", "H1", d25 + dt.timedelta(days=i), "ct_biopsy", ok=i not in fails))
    return engine


def _training_csv(tmp_path, rows: str, name: str = "t.csv"):
    f = tmp_path / name
    f.write_text("operator,date,course,hours,provider,certificate_id\n" + rows, encoding="utf-8")
    return f


def test_due_list_is_exact_on_a_hand_built_set(hand_built, tmp_path):
    f = _training_csv(tmp_path, "A,2025-06-01,TIPS refresher,8,Provincial QC centre,C-1\n"
                                "C,2024/6/1,Biopsy safety,4,Hospital,\nD,2025-12-01,Refresher,6,Provincial QC centre,C-2\n")
    assert import_training(hand_built, f) == {"imported": 3, "skipped": 0}
    assert import_training(hand_built, f) == {"imported": 0, "skipped": 3}  # idempotent
    with hand_built.connect() as conn:
        audit = conn.exec_driver_sql("select after from audit_log where table_name = 'operator_training'").scalars().all()
    assert len(audit) == 2 and '"imported": 3' in str(audit[0]).replace("'", '"')
    rep = {r.operator: r for r in credentials_report(hand_built, as_of=AS_OF)}
    due = {k: sorted((d.kind, d.detail) for d in r.due) for k, r in rep.items()}
    assert due == {
        "A": [],
        "B": [("annual_volume", "complex"), ("refresher", ""), ("training_volume", "basic"),
              ("training_volume", "intermediate")],
        "C": [("cusum", "ct_biopsy"), ("refresher", ""), ("training_volume", "basic")],
        "D": [("training_volume", "basic"), ("training_volume", "intermediate")],
    }
    a, b, c = rep["A"], rep["B"], rep["C"]
    assert a.primary_by_tier == {"complex": 60, "basic": 50} and b.assisted_by_tier == {"complex": 5}
    assert {(v.tier, v.kind): (v.done, v.required) for v in b.volumes} == {
        ("basic", "training"): (60, 100), ("intermediate", "training"): (60, 100), ("complex", "training"): (60, 50),
        ("complex", "annual"): (0, 30)}
    assert a.last_training == dt.date(2025, 6, 1) and a.refresher_due_on == dt.date(2026, 6, 1)
    assert c.refresher_due_on == dt.date(2025, 6, 1) and c.training_hours == 4.0
    # hospital filter: H2's operator is not in H1's report; --due drops A
    h1 = credentials_report(hand_built, hospital="H1", as_of=AS_OF, due_only=True)
    assert [r.operator for r in h1] == ["B", "C"]
    with pytest.raises(InputError, match="unknown hospital"):
        credentials_report(hand_built, hospital="NOPE", as_of=AS_OF)


def test_cusum_equals_an_independent_recomputation(hand_built):
    """No risk factor is recorded, so every case's expected risk is the technique's p0: the Steiner
    scores and both charts can be recomputed by hand (pandas, not openir.registry.cusum)."""
    rep = {r.operator: r for r in credentials_report(hand_built, as_of=AS_OF)}
    p0, p1 = 0.05, 0.10  # techniques.yaml ct_biopsy
    r_a = (p1 / (1 - p1)) / (p0 / (1 - p0))
    fails = set(range(0, 20, 2)) | {1, 3}
    y = pd.Series([1.0 if i in fails else 0.0 for i in range(30)])
    up = y * np.log(r_a) - np.log(1 - p0 + r_a * p0)
    comp = -y * np.log(r_a) + np.log(1 - p0 + r_a * p0)

    def chart(s: pd.Series) -> list[float]:
        w, out = 0.0, []
        for v in s:
            w = max(0.0, w + v)
            out.append(w)
        return out

    c = next(x for x in rep["C"].curves if x.technique == "ct_biopsy")
    w, k = chart(up), chart(comp)
    assert c.n == 30 and c.failures == 12
    assert c.signal_at == next(i + 1 for i, v in enumerate(w) if v >= c.h)
    assert c.cases_to_competence == next((i + 1 for i, v in enumerate(k) if v >= c.h_competence), None)
    a = next(x for x in rep["A"].curves if x.technique == "ct_biopsy")
    k_a = chart(pd.Series([np.log(1 - p0 + r_a * p0)] * 50))
    assert a.signal_at is None
    assert a.cases_to_competence == next((i + 1 for i, v in enumerate(k_a) if v >= a.h_competence), None)


def test_add_months_clamps():
    assert add_months(dt.date(2025, 1, 31), 1) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2024, 12, 15), 12) == dt.date(2025, 12, 15)


runner = CliRunner()


@pytest.mark.parametrize("rows, expect", [
    ("A,notadate,X,8,P,\n", r"row 3 \[date\]"),
    ("A,2025-01-01,X,-3,P,\n", r"row 3 \[hours\]"),
    ("A,2025-01-01,,8,P,\nA,2025-01-02,Y,8,,\n", r"row 3 \[course\]: required; row 4 \[provider\]: required"),
    ("ZZZ,2025-01-01,X,8,P,\n", r"unknown operator code\(s\) ZZZ \(rows 3\)"),
])
def test_bad_training_csv_exits_2_and_stores_nothing(tmp_path, rows, expect):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    engine = init_db(db)
    with session_scope(engine, "t") as s:
        add_hospital(s, HospitalIn(code="H1", name="H1", level="county", region="R"))
        add_operator(s, OperatorIn(code="A", hospital_code="H1", credential="junior"))
    f = _training_csv(tmp_path, "A,2025-01-01,Good,2,P,\n" + rows)
    r = runner.invoke(app, ["registry", "credentials", "import", str(f), "--db", db])
    err = r.exception  # `openir` (cli.main) prints it as one line and exits with its exit_code
    assert isinstance(err, InputError) and err.exit_code == 2, r.output
    assert str(f) in str(err) and re.search(expect, str(err)), str(err)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from operator_training").scalar() == 0
    missing = tmp_path / "m.csv"
    missing.write_text("operator,date\nA,2025-01-01\n")
    r = runner.invoke(app, ["registry", "credentials", "import", str(missing), "--db", db])
    assert isinstance(r.exception, InputError) and "missing column(s) course" in str(r.exception)


def test_bad_training_csv_exit_status_of_the_console_script(tmp_path):
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'r.db'}"
    f = _training_csv(tmp_path, "A,2025-13-01,X,8,P,\n")
    code = "import sys; from openir.cli import main; sys.argv = ['openir'] + sys.argv[1:]; main()"
    r = subprocess.run([sys.executable, "-c", code, "registry", "credentials", "import", str(f), "--db", db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "row 2 [date]" in r.stderr, r.stderr


def test_cli_report_json_and_table(hand_built, tmp_path):
    url = str(hand_built.url)
    r = runner.invoke(app, ["registry", "credentials", "--db", url, "--hospital", "H1", "--due", "--json",
                            "--as-of", "2025-12-31"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [x["operator"] for x in rows] == ["B", "C"]
    r = runner.invoke(app, ["registry", "credentials", "--db", url, "--as-of", "2025-12-31"])
    assert r.exit_code == 0 and "Operator credentials (4 operators)" in r.output
    r = runner.invoke(app, ["registry", "credentials", "--db", url, "--hospital", "NOPE"])
    assert isinstance(r.exception, InputError) and "unknown hospital" in str(r.exception)
