"""`openir registry` and `openir qc` end to end on SQLite, and the demo stage."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from openir.cli import app

runner = CliRunner()


def test_cli_init_seed_add_report_export(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert runner.invoke(app, ["registry", "init", "--db", db]).exit_code == 0
    r = runner.invoke(app, ["registry", "seed", "--db", db, "--procedures", "4000", "--hospitals", "12"])
    assert r.exit_code == 0, r.output
    rec = {"uid": "CLI-1", "patient_key": "pk-cli-1", "hospital_code": "H012", "operator_code": "H012-OP03",
           "date": "2024-05-01", "technique": "ica_aneurysm_coiling", "disease": "intracranial aneurysm"}
    f = tmp_path / "p.json"
    f.write_text(json.dumps(rec))
    r = runner.invoke(app, ["registry", "add", str(f), "--db", db])
    assert r.exit_code == 0 and "flags" in r.output, r.output
    out = tmp_path / "qc.html"
    r = runner.invoke(app, ["qc", "report", "--db", db, "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert html.count("data:image/png;base64,") >= 9 and "<script" not in html
    assert "Hospital ratings" in html and "learning curves" in html
    r = runner.invoke(app, ["registry", "export", str(tmp_path / "x.json"), "--db", db])
    assert r.exit_code == 0 and json.loads((tmp_path / "x.json").read_text())["resourceType"] == "Bundle"


def test_cli_bad_import_is_a_clean_error(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("uid,patient_key,hospital_code,operator_code,date,technique\nP1,pk-000001,H1,O1,notadate,tace\n")
    r = runner.invoke(app, ["registry", "import", str(bad), "--db", db])
    assert r.exit_code != 0
    assert "row 2" in str(r.exception) or "row 2" in r.output


def test_demo_stage_records_the_case_from_earlier_results(tmp_path):
    from openir.demo.runner import DemoContext
    from openir.demo.stage_registry import run

    ctx = DemoContext(out=tmp_path, seed=3, quick=True)
    ctx.results["verify"] = {"verdict": {"technical_success": True, "min_margin_mm": 4.2}, "uid": "verify-1"}
    ctx.results["dose"] = {"alerts": [{"scope": "procedure"}], "kap_total_gy_cm2": 120.5}
    run(ctx)
    reg = ctx.results["registry"]
    assert reg["procedure_uid"] == "DEMO-3" and reg["grade"] in "ABC"
    title, html = ctx.sections[-1]
    assert "DEMO-3" in html and "4.2 mm" in html and "dose alert True" in html
    assert (tmp_path / "registry" / "qc-report.html").read_text().startswith("<!doctype html>")
    import sqlite3

    row = sqlite3.connect(tmp_path / "registry" / "registry.db").execute(
        "select p.dose_alert, o.technical_success, o.min_margin_mm, p.verify_uid from procedures p "
        "join outcomes o on o.procedure_id = p.id where p.uid = 'DEMO-3'").fetchone()
    assert row == (1, 1, 4.2, "verify-1")
