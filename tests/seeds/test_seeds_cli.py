"""`openir seeds plan|template` end to end; bad input exits 2 with one line and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from openir import io
from openir.cli import app
from openir.core import LabelMap, Volume
from openir.seeds.models import SeedPlan
from openir.seeds.template import mesh_is_closed, read_stl

sys.path.insert(0, str(Path(__file__).parent))
from seed_cases import ball_case  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    lm = ball_case()
    ct = Volume(np.where(lm.array > 0, 40, -1000).astype(np.int16), lm.affine)
    io.write_nifti(ct, d / "ct.nii.gz")
    io.write_nifti(lm, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    edge = lm.array.copy()
    edge[:8, 25:35, 25:35] = 1
    io.write_nifti(LabelMap(edge, lm.affine, {}, lm.labels), d / "edge.nii.gz")
    return d


def _args(d: Path, *extra: str, labels: str = "labels.nii.gz") -> list[str]:
    return ["seeds", "plan", str(d / "ct.nii.gz"), str(d / labels), "--names", str(d / "names.json"),
            "-t", "tumour", "--site", "liver", "--direction", "1,0,0", *extra]


def test_plan_writes_every_output(case):
    out = case / "out"
    r = CliRunner().invoke(app, [*_args(case), "-o", str(out)])
    assert r.exit_code == 0, r.output
    plan = SeedPlan.model_validate_json((out / "plan.json").read_text())
    assert plan.metrics.d90_gy >= plan.prescription_gy and plan.metrics.v100_pct >= 90
    assert mesh_is_closed(read_stl(out / "template.stl"))
    assert len((out / "needles.csv").read_text().strip().splitlines()) == len(plan.needles) + 1
    dose = io.read_image(out / "dose.nii.gz")
    ds = pydicom.dcmread(out / "rtdose.dcm")
    rt = ds.pixel_array * float(ds.DoseGridScaling)
    assert rt.shape == dose.array.shape
    np.testing.assert_allclose(rt, dose.array, atol=float(dose.array.max()) * 1e-6)
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], dose.origin, atol=1e-3)
    html = (out / "report.html").read_text()
    assert "D90" in html and "data:image/png;base64" in html
    r2 = CliRunner().invoke(app, ["seeds", "template", str(out / "plan.json"), str(case / "ct.nii.gz"),
                                  str(case / "labels.nii.gz"), "--names", str(case / "names.json"),
                                  "--thickness", "3", "-o", str(case / "tpl")])
    assert r2.exit_code == 0, r2.output
    assert mesh_is_closed(read_stl(case / "tpl" / "template.stl"))


@pytest.mark.parametrize(("extra", "labels", "message"), [
    (["--model", "9999"], "labels.nii.gz", "unknown seed model"),
    (["--activity", "0"], "labels.nii.gz", "positive"),
    ([], "edge.nii.gz", "outside the image"),
])
def test_bad_input_exit_2_one_line_nothing_written(case, extra, labels, message):
    out = case / f"bad_{labels}_{len(extra)}"
    p = subprocess.run([sys.executable, "-m", "openir", *_args(case, *extra, labels=labels), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()
