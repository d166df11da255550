"""`openir trajectories` end to end on a small synthetic CT + label map (NIfTI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core import Volume

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import small_case  # noqa: E402

io = pytest.importorskip("openir.io")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("traj")
    labels, target = small_case()
    ct = Volume(np.where(labels.array > 0, 40, -1000).astype(np.int16), labels.affine)
    io.write_nifti(ct, d / "ct.nii.gz")
    io.write_nifti(labels, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in labels.labels.items()}}))
    return d, target


def test_cli_writes_json_markups_and_png(case):
    d, target = case
    out = d / "out"
    r = CliRunner().invoke(app, ["trajectories", str(d / "ct.nii.gz"), str(d / "labels.nii.gz"),
                                 "--names", str(d / "names.json"), "--target", "tumour_1",
                                 "--needle", "60", "--directions", "2000", "--keep-away", "gallbladder=3",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "trajectories.json").read_text())
    assert res["n_feasible"] > 0 and res["shortlist"]
    mk = json.loads((out / "trajectories.mrk.json").read_text())
    assert any(m["type"] == "Line" for m in mk["markups"])
    assert (out / "trajectories.png").stat().st_size > 10_000


def test_cli_unknown_label_is_a_clear_error(case):
    d, _ = case
    r = CliRunner().invoke(app, ["trajectories", str(d / "ct.nii.gz"), str(d / "labels.nii.gz"),
                                 "--names", str(d / "names.json"), "--target", "tumour_9", "-o", str(d / "x")])
    assert r.exit_code != 0
    assert "tumour_9" in str(r.exception) or "tumour_9" in r.output
