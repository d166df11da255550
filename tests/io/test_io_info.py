"""`openir info` and content dispatch on every kind of input, plus clean CLI errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from rich.console import Console

from openir.core import InputError, Volume, make_affine
from openir.io import describe, detect, read_image, render_info, write_markups, write_nifti
from openir.testing import need

PYDICOM_DATA = Path(get_testdata_file("CT_small.dcm")).parent


def _render(info) -> str:
    console = Console(record=True, width=200)
    render_info(info, console)
    return console.export_text()


def test_info_nifti_labels(shared_data):
    path = shared_data / "totalseg-abdomen-ct" / "example_seg.nii.gz"
    need(path.is_file(), f"{path} missing")
    info = describe(path)
    assert info.kind == "nifti" and info.shape_ijk == (122, 101, 30)
    liver = next(lab for lab in info.labels if lab.value == 5)
    assert liver.name == "liver" and liver.voxels > 0
    assert liver.volume_ml == pytest.approx(liver.voxels * 27 / 1000, rel=1e-6)
    text = _render(info)
    assert "liver" in text and "labels" in text


def test_info_dicom_series_seg_and_folder(shared_data):
    folder = shared_data / "totalseg-abdomen-ct" / "example_ct_dicom"
    need(folder.is_dir(), f"{folder} missing")
    info = describe(folder)
    assert info.kind == "dicom-series" and info.modality == "CT" and info.units == "HU"
    assert "JPEG 2000" in info.transfer_syntax and info.shape_ijk == (512, 512, 20)
    seg = describe(shared_data / "dcmqi-liver-seg" / "liver.dcm")
    assert seg.kind == "dicom-seg" and [lab.name for lab in seg.labels] == ["Liver"]
    multi = describe(PYDICOM_DATA / "dicomdirtests" / "77654033")
    assert multi.kind == "dicom-folder" and len(multi.series) == 4
    assert "Routine Brain" in _render(multi)


def test_info_rtstruct_sr_markups(tmp_path):
    rt = describe(get_testdata_file("rtstruct.dcm"))
    assert rt.kind == "rtstruct" and rt.rois == ["patient", "Isocenter 1", "Isocenter 2"]
    sr = describe(get_testdata_file("test-SR.dcm"))
    assert sr.kind == "dicom-other" and sr.modality == "SR"
    write_markups(tmp_path / "p.mrk.json", points={"targets": {"a": (0, 0, 0)}})
    mk = describe(tmp_path / "p.mrk.json")
    assert mk.kind == "markups" and "1 points" in mk.markups[0]
    ct = describe(get_testdata_file("CT_small.dcm"))
    assert ct.kind == "dicom-series" and ct.shape_ijk == (128, 128, 1)


def test_detect_and_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        describe(tmp_path / "missing.nii.gz")
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unknown file type"):
        detect(tmp_path / "a.png")
    with pytest.raises(InputError, match="holds labels, not an image"):
        read_image(get_testdata_file("rtstruct.dcm"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        describe(tmp_path / "empty")


def _cli(monkeypatch, *args: str) -> int:
    from openir import cli

    monkeypatch.setattr(sys, "argv", ["openir", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_info_prints_and_fails_cleanly(tmp_path, monkeypatch, capsys):
    vol = Volume(np.zeros((2, 3, 4), np.int16), make_affine((1, 2, 3)))
    write_nifti(vol, tmp_path / "v.nii.gz")
    assert _cli(monkeypatch, "info", str(tmp_path / "v.nii.gz"), "--json") == 0
    assert '"kind": "nifti"' in capsys.readouterr().out
    (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 50)
    assert _cli(monkeypatch, "info", str(tmp_path / "broken.dcm")) == 2
    err = capsys.readouterr().err
    assert "broken.dcm" in err and "Traceback" not in err
