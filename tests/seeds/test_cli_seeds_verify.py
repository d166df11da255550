"""`openir seeds verify` as a user runs it: outputs on a synthetic case, exit 2 and nothing written on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openir.cli.seeds_verify import write_demo_case
from openir.core import Volume
from openir.io import read_image, write_nrrd
from openir.phantom import PostImplantSpec


def openir(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "openir", *args], capture_output=True, text=True, timeout=600)
    r.stderr = " ".join(r.stderr.split())  # the console wraps long messages
    return r


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seedcase")
    write_demo_case(folder, PostImplantSpec(seed=2, spacing_mm=(1.0, 1.0, 1.5), tumour_diameter_mm=36.0))
    return folder


def _args(case: Path, ct: Path | None = None, plan: Path | None = None, out: Path | None = None) -> list[str]:
    return ["seeds", "verify", str(plan or case / "plan.json"), str(ct or case / "ct.nrrd"), str(case / "labels.nrrd"),
            "--out", str(out or case / "out")]


def test_verify_writes_report_and_figure(case):
    r = openir(*_args(case))
    assert r.returncode == 0, r.stderr
    rep = json.loads((case / "out" / "postimplant.json").read_text())
    assert rep["found_seeds"] >= rep["planned_seeds"] - 1 and rep["post"]["d90_gy"] > 0
    assert (case / "out" / "seeds_verify.png").stat().st_size > 10_000
    assert "D90" in r.stdout


def test_empty_ct_file(case, tmp_path):
    empty = tmp_path / "ct.nrrd"
    empty.write_bytes(b"")
    r = openir(*_args(case, ct=empty, out=tmp_path / "out"))
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_ct_without_seeds(case, tmp_path):
    ct = read_image(case / "ct.nrrd")
    clean = ct.with_array(np.minimum(ct.array, 200).astype(np.int16))
    write_nrrd(clean, tmp_path / "clean.nrrd")
    r = openir(*_args(case, ct=tmp_path / "clean.nrrd", out=tmp_path / "out"))
    assert r.returncode == 2 and "no seeds" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_ct_not_in_hu(case, tmp_path):
    ct = read_image(case / "ct.nrrd")
    raw = Volume((ct.array.astype(np.int32) + 1024).astype(np.uint16), ct.affine)  # stored values, no rescale
    write_nrrd(raw, tmp_path / "raw.nrrd")
    r = openir(*_args(case, ct=tmp_path / "raw.nrrd", out=tmp_path / "out"))
    assert r.returncode == 2 and "Hounsfield" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_plan(case, tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text('{"seeds": [{"position_lps": [0, 0], "air_kerma_strength_U": 0.5}]}')
    r = openir(*_args(case, plan=bad, out=tmp_path / "out"))
    assert r.returncode == 2 and "seeds.0" in r.stderr and "Traceback" not in r.stderr
