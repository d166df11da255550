"""`openir plan --dicom-ct`: DICOM SEG and RTSTRUCT on the source series that re-read to the same
masks (Dice 1.0), the Slicer segmentation and 4-D NIfTI with named overlapping segments, zone models;
a label map in another patient frame is refused naming both files; plan.json paths are absolute."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.core import LabelMap, Volume

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import small_case  # noqa: E402

io = pytest.importorskip("openir.io")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("dcmplan")
    labels, _ = small_case(spacing=(2.0, 2.0, 2.0), shape_ijk=(32, 28, 20))
    ct = Volume(np.where(labels.array > 0, 40, -1000).astype(np.int16), labels.affine)
    io.write_dicom_series(ct, d / "ct_dicom")
    io.write_nifti(labels, d / "labels.nii.gz")
    (d / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in labels.labels.items()}}))
    return d, labels


def test_plan_dicom_ct_writes_seg_and_rtstruct_that_reload_identically(dicom_case, monkeypatch):
    from openir.cli import app

    d, labels = dicom_case
    monkeypatch.chdir(d)  # relative paths on the command line
    r = CliRunner().invoke(app, ["plan", "ct_dicom", "labels.nii.gz", "--names", "names.json", "--tumor", "tumour_1",
                                 "--needle", "60", "--margin", "3", "--dicom-ct", "ct_dicom", "-o", "out"])
    assert r.exit_code == 0, r.output
    out = d / "out"
    plan = json.loads((out / "plan.json").read_text())
    assert Path(plan["case"]["labels"]).is_absolute() and Path(plan["case"]["labels"]) == d / "labels.nii.gz"
    segs, grid = io.read_segmentation_nrrd(out / "plan_segmentation.seg.nrrd")
    assert grid.same_as(labels.grid)
    assert {"tumour_1", "target_tumour_1", "zone_tumour_1", "ablation_zone"} <= set(segs)
    tm, tg, zn = segs["tumour_1"], segs["target_tumour_1"], segs["zone_tumour_1"]
    assert np.array_equal(tm, labels.mask("tumour_1"))
    assert (tm & zn).any() and (tg & zn).any()  # overlapping segments kept apart
    n4, g4 = io.read_segments_nifti(out / "plan_segments.nii.gz")
    assert g4.same_as(grid) and all(np.array_equal(n4[k], segs[k]) for k in segs)
    masks, sgrid, _ = io.read_dicom_seg_masks(out / "plan_seg.dcm", reference=d / "ct_dicom")
    assert sgrid.same_as(grid)
    for name, m in segs.items():
        assert _dice(masks[name], m) == 1.0, name
    for name, m in segs.items():
        rt = io.read_rtstruct(out / "plan_rtstruct.dcm", grid, names=[name])
        assert _dice(rt.array > 0, m) == 1.0, name
    # the plain label map keeps the tumour visible inside the zone; names beside it
    plain = io.read_labels(out / "plan_segmentation.nii.gz")
    assert set(plain.names) >= {"tumour_1", "ablation_zone"}
    assert np.array_equal(plain.mask("tumour_1"), tm)
    models = sorted((out / "models").glob("*.vtk"))
    assert models and "SPACE=LPS" in models[0].read_text().splitlines()[1]


def test_label_map_in_another_frame_is_refused_naming_both_files(dicom_case, tmp_path):
    from openir.cli import app

    d, labels = dicom_case
    for name, aff in (("shifted", labels.affine + np.array([[0, 0, 0, 0], [0, 0, 0, 30.0], [0, 0, 0, 0], [0, 0, 0, 0]])),
                      ("rescaled", labels.affine @ np.diag([1.5, 1.5, 1.0, 1.0]))):
        bad = LabelMap(labels.array, aff, {}, dict(labels.labels))
        io.write_nifti(bad, tmp_path / f"{name}.nii.gz")
        r = CliRunner().invoke(app, ["trajectories", str(d / "ct_dicom"), str(tmp_path / f"{name}.nii.gz"),
                                     "--names", str(d / "names.json"), "--target", "tumour_1", "-o", str(tmp_path / "o")])
        from openir.core.errors import GeometryError

        assert isinstance(r.exception, GeometryError) and r.exception.exit_code == 2  # `openir` exits 2
        msg = str(r.exception)
        assert "\n" not in msg
        assert f"{name}.nii.gz" in msg and "ct_dicom" in msg
        assert ("origin differs by 30.0 mm" in msg) if name == "shifted" else ("spacing differs" in msg)
        assert not (tmp_path / "o").exists()
