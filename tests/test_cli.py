"""The `openir` command as a user runs it: a real subprocess, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from openir import __version__


def openir(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "openir", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_version():
    r = openir("version")
    assert r.returncode == 0 and r.stdout.strip() == __version__


def test_info_missing_path_is_a_clear_error(tmp_path):
    r = openir("info", str(tmp_path / "nope.nii.gz"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "nope.nii.gz" in r.stderr


def test_info_on_garbage_file(tmp_path):
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"\x00garbage" * 50)
    r = openir("info", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "scan.dcm" in r.stderr


def test_info_on_real_ct(shared_data):
    ct = shared_data / "totalseg-abdomen-ct" / "example_ct_sm.nii.gz"
    r = openir("info", str(ct), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert "122" in json.dumps(info) and "101" in json.dumps(info)


def test_info_on_dicom_folder(shared_data):
    r = openir("info", str(shared_data / "totalseg-abdomen-ct" / "example_ct_dicom"))
    assert r.returncode == 0, r.stderr
    assert "CT" in r.stdout and "512" in r.stdout


def test_demo_unknown_stage(tmp_path):
    r = openir("demo", "--quick", "--out", str(tmp_path / "d"), "--stages", "teleport")
    assert r.returncode == 2 and "teleport" in r.stderr and "Traceback" not in r.stderr


def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = openir("demo", "--quick", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    html = (out / "index.html").read_text()
    assert "Patient" in html and "data:image/png;base64," in html
    assert (out / "patient" / "ct.nii.gz").stat().st_size > 10_000
    labels = json.loads((out / "patient" / "labels.json").read_text())["labels"]
    assert {"liver", "tumour_1", "tumour_2", "skin"} <= set(labels.values())
    nav = json.loads((out / "navigate" / "summary.json").read_text())  # the navigation stage (issue 25)
    assert nav["n_poses"] == nav["n_guided"] > 0 and nav["registration"]["accepted"]
    sop = json.loads((out / "practice" / "sop_check.json").read_text())  # the practice stage (issue 22)
    assert {(d["severity"], d["item"]) for d in sop["deviations"]} >= {("block", "antithrombotics"), ("warn", "inr")}
    score = json.loads((out / "practice" / "exercise_score.json").read_text())
    assert score["total"] < score["max_total"] and score["missed_target_ml"] > 0
    assert (out / "practice" / "drg_funnel.png").stat().st_size > 5_000
    plan = json.loads((out / "plan" / "plan.json").read_text())  # a partial plan is said to be one, in the page too
    for t in plan["targets"]:
        partial = t["configuration"].startswith("NOT A TREATMENT PLAN")
        assert partial == (not t["full_coverage"] and t["n_probes"] > 0), (t["tumour"], t["configuration"])
        assert (f"{t['tumour']}: NOT A TREATMENT PLAN</b>" in html) == partial


def test_cli_imports_no_domain_package_until_a_command_runs():
    code = ("import sys, openir.cli; heavy = [m for m in ('numba', 'sqlalchemy', 'scipy', 'SimpleITK', 'pydicom') "
            "if m in sys.modules]; print(','.join(heavy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


def test_every_registered_command_loads_and_shows_help():
    from typer.testing import CliRunner

    from openir.cli import LAZY_COMMANDS, app

    top = CliRunner().invoke(app, ["--help"])
    for name in LAZY_COMMANDS:
        assert name in top.output
        r = CliRunner().invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Usage" in r.output and "--install-completion" not in r.output


def test_every_subcommand_of_every_group_is_reachable():
    """Groups stay groups through lazy loading, even with one sub-command (`openir qc report`)."""
    import importlib

    import typer
    from typer.testing import CliRunner

    from openir.cli import LAZY_COMMANDS, app

    for name, (module, attribute, _) in LAZY_COMMANDS.items():
        obj = getattr(importlib.import_module(module), attribute)
        if not isinstance(obj, typer.Typer):
            continue
        for sub in typer.main.get_group(obj).commands:
            r = CliRunner().invoke(app, [name, sub, "--help"])
            assert r.exit_code == 0, (name, sub, r.output)
