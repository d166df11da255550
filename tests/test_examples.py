"""Every script in examples/ runs on a fresh install and prints what its README promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# script -> text its output must contain (a figure a reader can check by hand where there is one)
EXPECTED = {
    "synthetic_patient.py": "tumour_1:",
    "thermal_dose.py": "CEM43       10.0 min",  # 10 minutes at 43 °C is 10 CEM43 minutes by definition
    "dose_alerts.py": "ALERT kerma-area product",  # the synthetic embolisation exceeds the 500 Gy·cm² SRDL
    "fiducial_registration.py": "centroid for FLE 1 mm: 0.41 mm",  # FLE / sqrt(N) = 1 / sqrt(6)
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str, tmp_path: Path):
    args = [sys.executable, str(EXAMPLES / script)]
    if script == "synthetic_patient.py":
        args.append(str(tmp_path / "out"))
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert EXPECTED[script] in done.stdout, done.stdout
