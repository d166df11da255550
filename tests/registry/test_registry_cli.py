"""`openir registry` and `openir qc` end to end on SQLite, and the demo stage."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import InputError

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


def test_cli_empty_registry_says_so_and_fails(tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (["qc", "indicators", "--db", db], ["qc", "report", "--db", db, "-o", str(tmp_path / "q.html")]):
        r = runner.invoke(app, args)
        assert isinstance(r.exception, InputError) and r.exception.exit_code == 2, (args, r.output)
        assert "no procedures yet" in str(r.exception)
    assert not (tmp_path / "q.html").exists()
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "from openir.cli import main; main()", "qc", "indicators", "--db", db],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "no procedures yet" in p.stderr and "Traceback" not in p.stderr


def test_cli_template_then_gb18030_import_and_indicators(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert runner.invoke(app, ["registry", "seed", "--db", db, "--procedures", "300", "--hospitals", "4"]).exit_code == 0
    for name in ("t.xlsx", "t.csv"):
        r = runner.invoke(app, ["registry", "template", str(tmp_path / name)])
        assert r.exit_code == 0 and (tmp_path / name).stat().st_size > 0, r.output
    assert isinstance(runner.invoke(app, ["registry", "template", str(tmp_path / "t.txt")]).exception, InputError)
    head = "手术唯一编号,患者假名编号,医院编码,主刀医师编码,手术日期,技术编码,诊断,性别,技术成功,不良事件1,处理1,不良事件2,后遗症2\n"
    row = "GB-1,pk-gb-0001,H001,H001-OP01,2025/5/1,经动脉化疗栓塞术,肝细胞癌,男,是,术后发热,无需处理,异位栓塞,轻度后遗症\n"
    f = tmp_path / "gb.csv"
    f.write_bytes((head + row).encode("gb18030"))
    r = runner.invoke(app, ["registry", "import", str(f), "--db", db, "--encoding", "utf-8"])
    assert isinstance(r.exception, InputError) and "not valid utf-8" in str(r.exception)
    r = runner.invoke(app, ["registry", "import", str(f), "--db", db])
    assert r.exit_code == 0 and "'adverse_events': 2" in r.output, r.output
    out = tmp_path / "ind.csv"
    r = runner.invoke(app, ["qc", "indicators", "--db", db, "--by", "technique,disease", "-o", str(out)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    tab = pd.read_csv(out)
    assert {"technique", "disease"} == set(tab["level_by"]) and tab["alarm_source"].notna().all()
