"""Reference levels (ICRP 135), peak skin dose known answers, charts, CLI and demo stage."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from openir.dose import compare, peak_skin_dose, reference_levels
from openir.dose.models import IrradiationEvent
from openir.dose.skin_dose import load_factors
from openir.phantom.dose_reports import synthetic_dose_survey, synthetic_xray_rdsr


def test_dose_drl_known_answer():
    # facility medians: A=2, B=4, C=6, D=8 -> P75 (linear) = 6.5, median = 5
    rows = []
    for fac, vals in {"A": [1, 2, 3], "B": [4, 4, 100], "C": [5, 6, 7], "D": [8, 8, 8]}.items():
        rows += [{"procedure": "TACE", "facility": fac, "room": f"{fac}1", "kap_total_gy_cm2": v} for v in vals]
    df = pd.DataFrame(rows)
    (lv,) = reference_levels(df)
    assert lv.drl == pytest.approx(6.5) and lv.typical_value == pytest.approx(5.0)
    assert lv.n_groups == 4 and lv.n_procedures == 12
    cmp = {c.name: c for c in compare(df, [lv], by="room")}
    assert cmp["D1"].above_drl and not cmp["B1"].above_drl  # B's outlier does not move its median
    assert cmp["A1"].ratio_to_drl == pytest.approx(2 / 6.5)


def test_dose_drl_synthetic_survey():
    df = synthetic_dose_survey(n_facilities=6, per_operator=5, seed=1)
    levels = reference_levels(df)
    assert len(levels) == 3
    for lv in levels:
        meds = df[df.procedure == lv.procedure].groupby("facility").kap_total_gy_cm2.median()
        assert meds.min() <= lv.typical_value <= lv.drl <= meds.max()
    local = reference_levels(df[df.facility == "Facility A"], group="room", level="local")
    assert all(lv.level == "local" and lv.n_groups == 2 for lv in local)


def _event(**kw) -> IrradiationEvent:
    base = dict(dose_rp_gy=1.0, kap_gy_cm2=100.0, primary_angle_deg=0.0, secondary_angle_deg=0.0,
                source_isocenter_mm=800.0, table_longitudinal_mm=0.0, table_lateral_mm=0.0, table_height_mm=0.0)
    return IrradiationEvent(**{**base, **kw})


def test_dose_skin_dose_known_answer():
    f = load_factors()
    h = f.patient.isocentre_above_table_mm.value
    expected = (650.0 / (800.0 - h)) ** 2 * f.backscatter_factor.value * f.tissue_to_air.value * f.table_transmission.value
    r = peak_skin_dose([_event()], grid_mm=10.0)
    assert r.face_of_peak == "back" and r.events_used == 1
    assert r.peak_skin_dose_gy == pytest.approx(expected, rel=1e-3)
    # two events on the same spot add; moved 300 mm along the table they do not overlap
    assert peak_skin_dose([_event(), _event()]).peak_skin_dose_gy == pytest.approx(2 * expected, rel=1e-3)
    apart = peak_skin_dose([_event(), _event(table_longitudinal_mm=300.0)])
    assert apart.peak_skin_dose_gy == pytest.approx(expected, rel=1e-3)
    # a lateral beam (LAO 90) enters through the patient's right side, without table attenuation
    lat = peak_skin_dose([_event(primary_angle_deg=90.0)])
    assert lat.face_of_peak == "right"
    w = f.patient.width_mm.value
    assert lat.peak_skin_dose_gy == pytest.approx(
        (650.0 / (800.0 - w / 2)) ** 2 * f.backscatter_factor.value * f.tissue_to_air.value, rel=1e-3)
    assert peak_skin_dose([_event(dose_rp_gy=None)]).events_skipped == 1


def test_dose_charts(tmp_path):
    from openir.report import distribution_chart, trend_chart

    df = synthetic_dose_survey(n_facilities=4, per_operator=3)
    a = distribution_chart(df, reference_levels(df), tmp_path / "d.png")
    b = trend_chart(df, tmp_path / "t.png")
    assert a.read_bytes()[:4] == b"\x89PNG" and b.stat().st_size > 1000


def test_dose_cli_import_and_report(tmp_path):
    from openir.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    synthetic_xray_rdsr(5, seed=1).save_as(folder / "a.dcm", enforce_file_format=True)
    synthetic_xray_rdsr(5, seed=2, dose_scale=40.0).save_as(folder / "b.dcm", enforce_file_format=True)
    (folder / "junk.dcm").write_bytes(b"\0" * 300)
    db = ["--db", f"sqlite:///{tmp_path / 'd.db'}", "--root", str(tmp_path / "root")]
    runner = CliRunner()
    res = runner.invoke(app, ["dose", "import", str(folder), *db])
    assert res.exit_code == 2, res.output  # the good files are stored; the bad one is kept aside and named
    assert "quarantined: 1" in res.output and "stored: 2" in res.output and "junk.dcm" in res.output
    (folder / "junk.dcm").unlink()
    res = runner.invoke(app, ["dose", "import", str(folder), *db])
    assert res.exit_code == 0 and "duplicate: 2" in res.output, res.output
    res = runner.invoke(app, ["dose", "report", *db, "--json", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert '"reports": 2' in res.output and (tmp_path / "out" / "dose_distribution.png").exists()
    res = runner.invoke(app, ["dose", "import", str(tmp_path / "missing"), *db])
    assert res.exit_code != 0


def test_dose_demo_stage(tmp_path):
    from openir.demo.runner import DemoContext
    from openir.demo.stage_dose import run

    ctx = DemoContext(out=tmp_path, quick=True)
    run(ctx)
    r = ctx.results["dose"]
    assert r.superseded == 1 and r.quarantined == 1 and r.alerts and r.reference_levels
    assert ctx.sections and (tmp_path / "dose" / "dose_summary.json").exists()
