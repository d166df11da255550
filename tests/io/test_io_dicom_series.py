"""DICOM series: the JPEG 2000 bar, geometry, round trip, and every error path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from openir.core import InputError, Volume, make_affine
from openir.io import read_dicom_datasets, read_dicom_series, read_image, write_dicom_series
from openir.testing import need

PYDICOM_DATA = Path(get_testdata_file("CT_small.dcm")).parent
CT2 = PYDICOM_DATA / "dicomdirtests" / "77654033" / "CT2"


def _j2k(shared_data: Path) -> Path:
    folder = shared_data / "totalseg-abdomen-ct" / "example_ct_dicom"
    need(folder.is_dir(), f"{folder} missing")
    return folder


def test_jpeg2000_series_equals_pydicom_decode_slice_by_slice(shared_data):
    folder = _j2k(shared_data)
    vol = read_dicom_series(folder)
    files = sorted(folder.iterdir())
    assert vol.shape == (len(files), 512, 512)
    assert vol.array.dtype == np.int16
    assert vol.meta["units"] == "HU" and vol.meta["modality"] == "CT"
    assert vol.meta["transfer_syntax"] == "1.2.840.10008.1.2.4.90"
    # independent decode: pydicom + pylibjpeg, slices sorted by z (IOP is axial identity here)
    ref = []
    for f in files:
        ds = pydicom.dcmread(f)
        ref.append((float(ds.ImagePositionPatient[2]), apply_modality_lut(ds.pixel_array, ds), ds.SOPInstanceUID))
    ref.sort(key=lambda t: t[0])
    for k, (z, hu, uid) in enumerate(ref):
        np.testing.assert_array_equal(vol.array[k], hu)
        assert vol.index_to_world([0, 0, k])[2] == pytest.approx(z)
        assert vol.meta["sop_instance_uids"][k] == uid
    # file names run opposite to position here: sorting by name would have failed
    assert vol.meta["files"][0] != str(files[0])
    np.testing.assert_allclose(vol.spacing, [0.9765625, 0.9765625, 2.0])


def test_slice_order_does_not_follow_file_names(tmp_path, shared_data):
    src = shared_data / "dcmqi-liver-seg" / "ct-3slice"
    need(src.is_dir(), f"{src} missing")
    # rename so that name order is scrambled relative to position
    for name, new in zip(["01.dcm", "02.dcm", "03.dcm"], ["b.dcm", "c.dcm", "a.dcm"], strict=True):
        shutil.copy(src / name, tmp_path / new)
    vol = read_dicom_series(tmp_path)
    z = [vol.index_to_world([0, 0, k])[2] for k in range(3)]
    assert z == sorted(z)
    assert vol.spacing[2] == pytest.approx(1.0, abs=1e-4)
    assert vol.array.dtype == np.int16


def test_single_file_and_mr():
    vol = read_image(get_testdata_file("MR_small.dcm"))
    assert vol.shape == (1, 64, 64) and vol.meta["modality"] == "MR"
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array)


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(-1024, 2000, size=(4, 6, 5)).astype(np.int16)
    d = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])  # a sagittal-ish stack, still orthonormal
    vol = Volume(arr, make_affine((0.7, 0.9, 2.5), (10.0, -20.0, 30.0), d))
    paths = write_dicom_series(vol, tmp_path / "ct", patient_id="X1")
    assert len(paths) == 4
    back = read_dicom_series(tmp_path / "ct")
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)
    ds = pydicom.dcmread(paths[0])
    assert ds.PatientID == "X1" and ds.PatientIdentityRemoved == "YES"
    assert len(read_dicom_datasets(tmp_path / "ct")) == 4


def test_write_float_volume_is_quantised(tmp_path):
    arr = np.linspace(-1.5, 3.25, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    vol = Volume(arr, make_affine((1, 1, 1)))
    write_dicom_series(vol, tmp_path, modality="MR")
    back = read_dicom_series(tmp_path)
    assert back.array.dtype == np.float32
    np.testing.assert_allclose(back.array, arr, atol=(3.25 + 1.5) / 65535)


# ---- errors ---------------------------------------------------------------------------------------------
def _write_small(tmp_path: Path, n: int = 4, z_step: float = 2.0) -> list[Path]:
    vol = Volume(np.zeros((n, 3, 3), np.int16), make_affine((1, 1, z_step)))
    return write_dicom_series(vol, tmp_path)


def test_missing_slice_is_reported(tmp_path):
    paths = _write_small(tmp_path, 5)
    paths[2].unlink()
    with pytest.raises(InputError, match="missing slice"):
        read_dicom_series(tmp_path)


def test_non_uniform_spacing_is_reported(tmp_path):
    paths = _write_small(tmp_path, 4)
    ds = pydicom.dcmread(paths[3])
    ds.ImagePositionPatient = [0, 0, 6.7]
    ds.save_as(paths[3])
    with pytest.raises(InputError, match="non-uniform slice spacing"):
        read_dicom_series(tmp_path)


def test_real_series_with_gap_is_reported():
    with pytest.raises(InputError, match="missing slice"):
        read_dicom_series(CT2)


def test_mixed_orientations_are_reported(tmp_path):
    paths = _write_small(tmp_path, 3)
    ds = pydicom.dcmread(paths[1])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(paths[1])
    with pytest.raises(InputError, match="different orientations"):
        read_dicom_series(tmp_path)


def test_mixed_series_lists_them_and_series_uid_picks_one():
    folder = CT2.parent
    with pytest.raises(InputError, match="mixed series: 4 image series") as err:
        read_dicom_series(folder)
    assert "Routine Brain" in str(err.value)
    uid = pydicom.dcmread(next(CT2.iterdir())).SeriesInstanceUID
    with pytest.raises(InputError, match="missing slice"):  # the right series is chosen, then checked
        read_dicom_series(folder, series_uid=uid)
    with pytest.raises(InputError, match="not found"):
        read_dicom_series(folder, series_uid="1.2.3")


def test_duplicate_positions_name_echoes(shared_data):
    folder = shared_data / "siemens-phase" / "2_gre_field_magph"
    need(folder.is_dir(), f"{folder} missing")
    with pytest.raises(InputError, match="share a position"):
        read_dicom_series(folder)


def test_truncated_file_names_the_file(tmp_path, shared_data):
    src = _j2k(shared_data)
    for f in sorted(src.iterdir())[:3]:
        shutil.copy(f, tmp_path / f.name)
    victim = sorted(tmp_path.iterdir())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        read_dicom_series(tmp_path)
    assert victim.name in str(err.value)


def test_corrupt_header_names_the_file(tmp_path):
    paths = _write_small(tmp_path, 3)
    raw = bytearray(paths[0].read_bytes())
    raw[140:400] = b"\xff" * 260  # garbage in the meta header after 'DICM'
    paths[0].write_bytes(bytes(raw))
    with pytest.raises(InputError) as err:
        read_dicom_series(tmp_path)
    assert paths[0].name in str(err.value)


def test_non_image_dicom_and_non_dicom(tmp_path):
    with pytest.raises(InputError, match="only non-image DICOM objects: SR"):
        read_dicom_series(get_testdata_file("test-SR.dcm"))
    (tmp_path / "notes.txt").write_text("not dicom")
    with pytest.raises(InputError, match="no DICOM files found"):
        read_dicom_series(tmp_path)
    with pytest.raises(InputError, match="not a DICOM file"):
        read_dicom_series(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="not found"):
        read_dicom_series(tmp_path / "nowhere")
    with pytest.raises(InputError, match="unknown file type"):
        read_image(tmp_path / "notes.txt")


def test_non_dicom_files_in_a_series_folder_are_skipped(tmp_path):
    _write_small(tmp_path, 3)
    (tmp_path / "README").write_text("exported by a PACS")
    assert read_dicom_series(tmp_path).shape == (3, 3, 3)
