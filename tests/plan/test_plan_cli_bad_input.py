"""`openir plan` refuses bad input with one clear line on stderr and exit code 2, writing nothing:
unknown device, negative margin, zero voxel size (planning grid and image header), and a device of
another modality than the one asked for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from openir.core import Volume

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import small_case  # noqa: E402

io = pytest.importorskip("openir.io")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("badplan")
    labels, _ = small_case(spacing=(2.0, 2.0, 2.0), shape_ijk=(32, 28, 20))
    io.write_nifti(Volume(np.where(labels.array > 0, 40, -1000).astype(np.int16), labels.affine), d / "ct.nii.gz")
    io.write_nifti(labels, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in labels.labels.items()}}))
    return d


def _run(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run the console entry point (`openir ...`) as a user does; return (exit code, stderr)."""
    from openir.cli import main

    monkeypatch.setattr(sys, "argv", ["openir", *argv])
    with pytest.raises(SystemExit) as ex:
        main()
    return int(ex.value.code or 0), capsys.readouterr().err


BAD = {
    "unknown device": (["--device", "nanoknife_9000"], "nanoknife_9000"),
    "negative margin": (["--margin", "-2"], "--margin"),
    "zero planning voxel": (["--plan-voxel", "0"], "--plan-voxel"),
    "device of another modality": (["--modality", "cryo", "--device", "emprint"], "emprint"),
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_option_is_one_line_exit_2_nothing_written(case, what, monkeypatch, capsys):
    extra, named = BAD[what]
    out = case / f"out_{what.replace(' ', '_')}"
    code, err = _run(["plan", str(case / "ct.nii.gz"), str(case / "labels.nii.gz"), "--names",
                      str(case / "names.json"), "--tumor", "tumour_1", "--needle", "60", *extra, "-o", str(out)],
                     monkeypatch, capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert named in lines[0]
    assert "Traceback" not in err
    assert not out.exists()


def test_zero_voxel_size_in_the_image_header_is_refused(case, tmp_path, monkeypatch, capsys):
    nrrd = pytest.importorskip("nrrd")
    labels, _ = small_case(spacing=(2.0, 2.0, 2.0), shape_ijk=(32, 28, 20))
    dirs = np.diag([0.0, 2.0, 2.0])  # the header says the first voxel size is zero
    hdr = {"space": "left-posterior-superior", "space directions": dirs, "space origin": np.zeros(3)}
    ct = np.where(labels.array > 0, 40, -1000).astype(np.int16)
    nrrd.write(str(tmp_path / "ct.nrrd"), ct.transpose(2, 1, 0), hdr)  # NRRD is [i, j, k]
    nrrd.write(str(tmp_path / "labels.nrrd"), labels.array.transpose(2, 1, 0), hdr)
    out = tmp_path / "out"
    code, err = _run(["plan", str(tmp_path / "ct.nrrd"), str(tmp_path / "labels.nrrd"), "--names",
                      str(case / "names.json"), "--tumor", "tumour_1", "--needle", "60", "-o", str(out)],
                     monkeypatch, capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert not out.exists()


def test_beyond_practice_flag_reaches_the_plan(case, monkeypatch, capsys):
    """`--beyond-practice` is the one way to lift the practice probe count; the plan records it."""
    out = case / "out_beyond"
    code, err = _run(["plan", str(case / "ct.nii.gz"), str(case / "labels.nii.gz"), "--names",
                      str(case / "names.json"), "--tumor", "tumour_1", "--needle", "60", "--modality", "cryo",
                      "--beyond-practice", "-o", str(out)], monkeypatch, capsys)
    assert code == 0, err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["provenance"]["parameters"]["beyond_practice"] is True
