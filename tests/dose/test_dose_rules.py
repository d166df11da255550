"""Plausibility quarantine, QA/phantom exclusion, minimum sample of reference levels, the CLI report."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openir.dose import DoseStore, parse_rdsr, reference_levels
from openir.dose.plausibility import problems
from openir.dose.qa import QARules, qa_reason
from openir.phantom import XrayRdsrSpec, synthetic_ct_rdsr, synthetic_xray_rdsr


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _set_num(ds, code: str, value: str) -> None:
    """Set every NUM with concept ``code`` (anywhere in the tree) to ``value``."""
    def walk(items):
        for it in items:
            if it.ConceptNameCodeSequence[0].CodeValue == code and "MeasuredValueSequence" in it:
                it.MeasuredValueSequence[0].NumericValue = value
            if "ContentSequence" in it:
                walk(it.ContentSequence)
    walk(ds.ContentSequence)


@pytest.fixture
def store(tmp_path):
    s = DoseStore(f"sqlite:///{tmp_path / 'dose.db'}", tmp_path / "root", skin_dose=False)
    yield s
    s.close()


@pytest.mark.parametrize(("code", "value", "expect"), [
    ("113722", "-0.5", "kap_total_gy_cm2 = -5000 is negative"),  # DAP total, Gy.m2 -> Gy·cm²
    ("122130", "-1e-4", "event 1 kap_gy_cm2 = -1 is negative"),
    ("113725", "250", "dose_rp_total_gy = 250 exceeds the plausibility limit 100 Gy"),
    ("113733", "900", "event 1 kvp_kv = 900 exceeds the plausibility limit 200 kV"),
])
def test_dose_implausible_reports_are_quarantined_with_reason(store, code, value, expect):
    ds = synthetic_xray_rdsr(3, seed=1)
    _set_num(ds, code, value)
    r = store.import_bytes(_bytes(ds), "odd.dcm")
    assert r.status == "quarantined" and expect in r.message
    (q,) = store.quarantined()
    assert q["reason"] == "implausible" and expect in q["message"]
    assert store.reports() == []  # not in totals, alerts or reference levels


def test_dose_plausible_real_and_synthetic_reports_pass(shared_data):
    for p in sorted((shared_data / "pyskindose-rdsr").glob("*.dcm")):
        assert problems(parse_rdsr(p)) == [], p.name
    assert problems(parse_rdsr(_bytes(synthetic_ct_rdsr(4)))) == []
    ct = synthetic_ct_rdsr(2)
    _set_num(ct, "113838", "-3")  # a negative DLP
    assert any("dlp_mgy_cm = -3 is negative" in m for m in problems(parse_rdsr(_bytes(ct))))


def test_dose_qa_studies_kept_out_of_reference_levels_with_override(store):
    for i in range(3):
        store.import_bytes(_bytes(synthetic_xray_rdsr(4, seed=20 + i, patient_id=f"P{i}")), f"p{i}")
    qa = synthetic_xray_rdsr(4, seed=30, patient_id="Q1", dose_scale=50.0,
                             spec=XrayRdsrSpec(procedure="Hepatic chemoembolisation"))
    qa.StudyDescription = "Monthly phantom dose check"
    store.import_bytes(_bytes(qa), "qa")
    named = synthetic_xray_rdsr(4, seed=31, patient_id="Q2", dose_scale=50.0)
    named.PatientName = "Phantom^Catphan"
    store.import_bytes(_bytes(named), "named")
    df = store.summary_frame()
    assert df["qa_reason"].notna().sum() == 2
    assert "phantom" in df.loc[df.patient_id == "Q2", "qa_reason"].item().lower()
    (lv,) = reference_levels(df, min_per_group=1)
    assert lv.n_procedures == 3  # the two QA studies (50x the dose) are left out
    patients = df[df.qa_reason.isna()]
    assert lv.drl == pytest.approx(patients.kap_total_gy_cm2.median())  # one facility: its median
    # override: the hand-marked study counts again
    assert store.mark_qa(named.SOPInstanceUID, False)
    assert reference_levels(store.summary_frame(), min_per_group=1)[0].n_procedures == 4
    assert not store.mark_qa("1.2.3.4.5.6", True)


def test_dose_qa_rules_are_configurable():
    r = parse_rdsr(_bytes(synthetic_xray_rdsr(2)))
    assert qa_reason(r) is None
    rules = QARules(fields={"procedure": [r"chemo"]})
    assert "chemo" in qa_reason(r.model_copy(update={"procedure": "Hepatic chemoembolisation"}), rules)
    with pytest.raises(ValueError, match="regular expression"):
        QARules(fields={"procedure": ["(unclosed"]})
    with pytest.raises(ValueError, match="unknown field"):
        QARules(fields={"room": ["x"]})


def test_dose_reference_level_minimum_sample():
    rows = []
    for fac, n in {"A": 25, "B": 22, "C": 3}.items():
        rows += [{"procedure": "TACE", "facility": fac, "kap_total_gy_cm2": float(v)}
                 for v in range(1, n + 1)]
    rows += [{"procedure": "PTBD", "facility": "A", "kap_total_gy_cm2": 7.0}]
    levels = {lv.procedure: lv for lv in reference_levels(pd.DataFrame(rows))}
    tace, ptbd = levels["TACE"], levels["PTBD"]
    assert tace.min_per_group == 20 and tace.n_groups == 2 and tace.groups_left_out == 1
    assert not tace.provisional and tace.n_procedures == 47
    assert tace.typical_value == pytest.approx((13 + 11.5) / 2)  # medians of A (13) and B (11.5); C left out
    assert ptbd.provisional and "minimum of 20" in ptbd.warning and ptbd.n_procedures == 1


def test_dose_report_ct_names_and_80_columns(tmp_path):
    from openir.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    unnamed = synthetic_xray_rdsr(5, seed=1, dose_scale=123.456)
    for kw in ("StudyDescription", "RequestedProcedureDescription", "PerformedProcedureCodeSequence",
               "ProcedureCodeSequence"):
        if kw in unnamed:
            delattr(unnamed, kw)
    unnamed.save_as(folder / "a.dcm", enforce_file_format=True)
    synthetic_xray_rdsr(5, seed=2).save_as(folder / "b.dcm", enforce_file_format=True)
    synthetic_ct_rdsr(3, seed=4).save_as(folder / "ct.dcm", enforce_file_format=True)
    (folder / "LICENSE").write_text("Permission is hereby granted, free of charge\n")
    db = ["--db", f"sqlite:///{tmp_path / 'd.db'}", "--root", str(tmp_path / "root")]
    runner = CliRunner()
    res = runner.invoke(app, ["dose", "import", str(folder), *db], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output  # the LICENSE is listed and skipped, not an error
    assert "skipped" in res.output and "LICENSE" in res.output and "stored: 3" in res.output
    csv = tmp_path / "d.csv"
    res = runner.invoke(app, ["dose", "report", *db, "--csv", str(csv)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "nan" not in out.lower().replace("financ", "") and "…" not in out
    assert "Fluoro 7.5 p/s" in out  # no study description: named from its protocol
    assert "CT dose reports" in out and "CTDIvol" in out and "DLP" in out
    frame = pd.read_csv(csv)
    assert len(frame) == 3 and set(frame.kind) == {"projection", "ct"}
    for _, r in frame.iterrows():  # every number is shown in full (4 significant digits)
        for col in ("kap_total_gy_cm2", "dose_rp_total_gy", "dlp_total_mgy_cm", "ctdivol_mgy"):
            if r[col] == r[col]:
                assert f"{r[col]:.4g}" in out, (col, r[col])
    assert re.search(r"CT-guided ablation \*?\s*│\s*CTDIvol", out) and re.search(r"│\s*DLP", out)
    res = runner.invoke(app, ["dose", "report", *db, "--json"])
    assert '"ct_reports": 1' in res.output and '"dlp_total_mgy_cm"' in res.output


def test_dose_store_adds_new_columns_to_an_old_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    s = DoseStore(url, tmp_path / "root", skin_dose=False)
    s.import_bytes(_bytes(synthetic_xray_rdsr(3)), "a")
    s.import_bytes(_bytes(synthetic_ct_rdsr(2, seed=7, patient_id="OLD-CT")), "old ct")
    phantom = synthetic_xray_rdsr(3, seed=8, patient_id="PH")
    phantom.StudyDescription = "QA phantom"
    s.import_bytes(_bytes(phantom), "old qa")
    s.close()
    eng = sa.create_engine(url)
    with eng.begin() as c:  # an old store: before migrations and the QA and CTDIvol columns
        c.execute(sa.text("DROP TABLE alembic_version_dose"))
        c.execute(sa.text("ALTER TABLE dose_reports DROP COLUMN qa_reason"))
        c.execute(sa.text("ALTER TABLE dose_reports DROP COLUMN ctdivol_mgy"))
    eng.dispose()
    s = DoseStore(url, tmp_path / "root", skin_dose=False)
    try:
        assert s.import_bytes(_bytes(synthetic_ct_rdsr(2)), "ct").status == "stored"
        df = s.summary_frame()
        assert len(df) == 4 and df.ctdivol_mgy.notna().sum() == 2  # the old CT row is backfilled
        assert df.loc[df.patient_id == "PH", "qa_reason"].notna().item()  # and the old QA study found
    finally:
        s.close()


def test_dose_cli_qa_override(tmp_path):
    from openir.cli import app

    ds = synthetic_xray_rdsr(3, seed=9)
    (tmp_path / "a.dcm").write_bytes(_bytes(ds))
    db = ["--db", f"sqlite:///{tmp_path / 'd.db'}", "--root", str(tmp_path / "root")]
    runner = CliRunner()
    assert runner.invoke(app, ["dose", "import", str(tmp_path / "a.dcm"), *db]).exit_code == 0
    res = runner.invoke(app, ["dose", "qa", ds.SOPInstanceUID, "--exclude", "--reason", "monthly phantom", *db])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["dose", "report", "--json", *db])
    assert '"qa_reports": 1' in res.output
    res = runner.invoke(app, ["dose", "qa", ds.SOPInstanceUID, "--include", *db])
    assert res.exit_code == 0 and '"qa_reports": 0' in runner.invoke(app, ["dose", "report", "--json", *db]).output
    res = runner.invoke(app, ["dose", "qa", "1.2.3.999", *db])  # main() turns this into one line, exit 2
    assert getattr(res.exception, "exit_code", None) == 2 and "no stored dose report" in str(res.exception)
