"""`openir sop check|show` and `openir plan --patient-values`: deviations printed, written, reported;
bad files refused with one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from openir.core import Volume

sys.path.insert(0, str(Path(__file__).parents[1] / "plan"))
from synthetic import small_case  # noqa: E402

LABS = """inr: 1.6
platelets: 42000 /uL
sex: M
child_pugh: A
diagnosis_code: C22.0
conditions: []
antithrombotics: []
"""


def _run(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run the console entry point as a user does; return (exit code, stdout, stderr)."""
    from openir.cli import main

    monkeypatch.setattr(sys, "argv", ["openir", *argv])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as ex:
        main()
    out = capsys.readouterr()
    return int(ex.value.code or 0), out.out, out.err


def test_sop_check_prints_each_deviation_and_exits_1_on_block(tmp_path, monkeypatch, capsys):
    labs = tmp_path / "labs.yaml"
    labs.write_text(LABS)
    code, out, _ = _run(["sop", "check", "liver_mwa", "--values", str(labs)], monkeypatch, capsys)
    assert code == 1
    assert "BLOCK" in out and "platelets = 42.0" in out and "Patel" in out and "inr = 1.6" in out
    code, out, _ = _run(["sop", "check", "liver_mwa", "--values", str(labs), "--json"], monkeypatch, capsys)
    got = json.loads(out)
    assert code == 1 and [(d["check"], d["severity"]) for d in got["deviations"]] == [
        ("inr_high_risk", "warn"), ("platelets_high_risk", "block")]
    code, out, _ = _run(["sop", "check", "tace", "--values", str(labs), "--lang", "zh-CN"], monkeypatch, capsys)
    assert code == 0 and "警示" in out and "eGFR" in out  # tace: eGFR needed before iodinated contrast


@pytest.mark.parametrize(("text", "suffix", "words"), [
    ("platelets: 150000\n", ".yaml", "[platelets]"),
    ("inr: .nan\n", ".yaml", "[inr]"),
    ('{"inr": NaN}', ".json", "[inr]"),
    ("inr: [1\n", ".yaml", "not valid YAML"),
    ("- 1\n", ".yaml", "expected a mapping"),
])
def test_bad_values_file_is_one_line_exit_2(tmp_path, monkeypatch, capsys, text, suffix, words):
    f = tmp_path / f"labs{suffix}"
    f.write_text(text)
    code, _, err = _run(["sop", "check", "liver_mwa", "--values", str(f)], monkeypatch, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and str(f.name) in lines[0] and words in lines[0], err


def test_sop_show_lists_checks_and_sources(monkeypatch, capsys):
    code, out, _ = _run(["sop", "show", "tace", "--lang", "zh-CN"], monkeypatch, capsys)
    assert code == 0 and "经动脉化疗栓塞术" in out and "股动脉入路" in out and "桡动脉入路" in out and "Patel" in out
    code, out, _ = _run(["sop", "show", "nope"], monkeypatch, capsys)
    assert code == 2


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from openir import io

    d = tmp_path_factory.mktemp("sopplan")
    labels, _ = small_case(spacing=(2.0, 2.0, 2.0), shape_ijk=(32, 28, 20))
    io.write_nifti(Volume(np.where(labels.array > 0, 40, -1000).astype(np.int16), labels.affine), d / "ct.nii.gz")
    io.write_nifti(labels, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in labels.labels.items()}}))
    (d / "labs.yaml").write_text(LABS)
    return d


def test_plan_with_patient_values_writes_the_check(case, monkeypatch, capsys):
    out = case / "out"
    code, text, err = _run(["plan", str(case / "ct.nii.gz"), str(case / "labels.nii.gz"), "--names", str(case / "names.json"),
                            "--tumor", "tumour_1", "--needle", "60", "--modality", "microwave", "--patient-values",
                            str(case / "labs.yaml"), "-o", str(out)], monkeypatch, capsys)
    assert code == 0, err
    check = json.loads((out / "sop_check.json").read_text())
    assert check["technique"] == "liver_mwa"
    assert [(d["check"], d["severity"]) for d in check["deviations"]] == [("inr_high_risk", "warn"),
                                                                          ("platelets_high_risk", "block")]
    assert "platelets = 42.0" in text
    report = (out / "plan_report.html").read_text()
    assert "Pre-procedure SOP check" in report and "Patel" in report and "血小板" in report


def test_plan_refuses_a_bad_values_file_before_planning(case, monkeypatch, capsys):
    bad = case / "bad.yaml"
    bad.write_text("platelets: 150000\n")
    out = case / "out_bad"
    code, _, err = _run(["plan", str(case / "ct.nii.gz"), str(case / "labels.nii.gz"), "--names", str(case / "names.json"),
                         "--tumor", "tumour_1", "--patient-values", str(bad), "-o", str(out)], monkeypatch, capsys)
    assert code == 2 and "[platelets]" in err and not out.exists()
