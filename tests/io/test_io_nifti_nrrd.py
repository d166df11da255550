"""NIfTI and NRRD: real TotalSegmentator files, RAS<->LPS, geometry round trips (hypothesis)."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import nrrd
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from openir.core import InputError, LabelMap, Volume, make_affine
from openir.io import (
    read_image,
    read_labels,
    read_nifti,
    read_nifti_labels,
    read_nrrd,
    read_nrrd_labels,
    write_nifti,
    write_nrrd,
)
from openir.testing import need


@pytest.fixture(scope="module")
def totalseg(shared_data):
    folder = shared_data / "totalseg-abdomen-ct"
    need((folder / "example_ct_sm.nii.gz").is_file(), f"{folder} missing")
    return folder


def test_totalseg_ct_and_labels(totalseg):
    ct = read_nifti(totalseg / "example_ct_sm.nii.gz")
    assert ct.shape == (30, 101, 122) and ct.array.dtype == np.int16
    np.testing.assert_allclose(ct.spacing, [3, 3, 3])
    seg = read_labels(totalseg / "example_seg.nii.gz", totalseg / "labels.json")
    assert isinstance(seg, LabelMap) and seg.grid.same_as(ct.grid)
    assert seg.labels[5] == "liver" and seg.value_of("Portal vein and splenic vein") == 64
    # the sidecar labels.json in the same folder is found without being named
    assert read_labels(totalseg / "example_seg.nii.gz").labels[5] == "liver"
    # liver is mostly soft tissue: HU of its voxels in a plausible band (catches a flipped axis)
    liver_hu = np.median(ct.array[seg.mask("liver")])
    assert 0 < liver_hu < 150
    # LPS: nibabel's RAS affine with x and y negated
    ras = nib.load(totalseg / "example_ct_sm.nii.gz").affine
    np.testing.assert_allclose(ct.affine[:2], -ras[:2])
    np.testing.assert_allclose(ct.affine[2:], ras[2:])
    # a voxel indexed [k, j, i] is nibabel's [i, j, k]
    raw = np.asanyarray(nib.load(totalseg / "example_ct_sm.nii.gz").dataobj)
    assert ct.array[7, 11, 13] == raw[13, 11, 7]


def test_labels_from_dict_and_flat_json(tmp_path, totalseg):
    lm = read_nifti_labels(totalseg / "example_seg.nii.gz", {"liver": 5, "spleen": 1})
    assert lm.labels == {1: "spleen", 5: "liver"}
    p = tmp_path / "names.json"
    p.write_text(json.dumps({"5": "liver"}))
    assert read_nifti_labels(totalseg / "example_seg.nii.gz", p).labels == {5: "liver"}
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="value: name"):
        read_nifti_labels(totalseg / "example_seg.nii.gz", p)


def test_nrrd_label_map_round_trip_keeps_segment_names(tmp_path, totalseg):
    seg = read_labels(totalseg / "example_seg.nii.gz")
    out = write_nrrd(seg, tmp_path / "seg.seg.nrrd")
    _, header = nrrd.read(str(out))
    assert header["space"] == "left-posterior-superior"
    assert header["Segment0_Name"] == seg.labels[min(seg.labels)]
    back = read_labels(out)
    np.testing.assert_array_equal(back.array, seg.array)
    assert back.labels == seg.labels
    np.testing.assert_allclose(back.affine, seg.affine)


def test_ras_nrrd_is_converted(tmp_path):
    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    header = {"space": "right-anterior-superior", "space directions": np.diag([1.0, 2.0, 3.0]),
              "space origin": np.array([10.0, 20.0, 30.0]), "kinds": ["domain"] * 3}
    nrrd.write(str(tmp_path / "ras.nrrd"), arr, header, index_order="C")
    vol = read_nrrd(tmp_path / "ras.nrrd")
    np.testing.assert_allclose(vol.affine[:3, 3], [-10, -20, 30])
    np.testing.assert_allclose(vol.affine[:3, :3], np.diag([-1.0, -2.0, 3.0]))
    np.testing.assert_array_equal(vol.array, arr)


def _volume(spacing, origin, angles, shape, flip=False, dtype=np.int16):
    d = Rotation.from_euler("xyz", angles).as_matrix()
    if flip:  # a left-handed index frame (det < 0), as in many radiological NIfTI files
        d[:, 0] *= -1
    rng = np.random.default_rng(1)
    arr = rng.integers(-100, 100, size=shape).astype(dtype)
    return Volume(arr, make_affine(spacing, origin, d))


geometry = dict(
    spacing=st.tuples(*[st.floats(0.1, 10.0)] * 3),
    origin=st.tuples(*[st.floats(-500, 500)] * 3),
    angles=st.tuples(*[st.floats(-np.pi, np.pi)] * 3),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6)),
    flip=st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**geometry)
def test_nifti_geometry_round_trip(tmp_path, spacing, origin, angles, shape, flip):
    vol = _volume(spacing, origin, angles, shape, flip)
    back = read_nifti(write_nifti(vol, tmp_path / "v.nii.gz"))
    np.testing.assert_array_equal(back.array, vol.array)
    # NIfTI stores the sform in float32
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-3)
    # a voxel maps to the same LPS point
    ijk = np.array(shape[::-1]) - 1
    np.testing.assert_allclose(back.index_to_world(ijk), vol.index_to_world(ijk), atol=1e-2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**geometry)
def test_nrrd_geometry_round_trip(tmp_path, spacing, origin, angles, shape, flip):
    vol = _volume(spacing, origin, angles, shape, flip, dtype=np.float32)
    back = read_nrrd(write_nrrd(vol, tmp_path / "v.nrrd"))
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-9, rtol=1e-12)


def test_nifti_scaled_data_is_float32(tmp_path):
    img = nib.Nifti1Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    img.header.set_slope_inter(0.5, -1.0)
    nib.save(img, tmp_path / "s.nii")
    vol = read_nifti(tmp_path / "s.nii")
    assert vol.array.dtype == np.float32
    assert vol.array[1, 0, 0] == pytest.approx(0.5 * 1 - 1.0)  # nibabel [0, 0, 1] = value 1


def test_errors(tmp_path, totalseg):
    with pytest.raises(InputError, match="expected a .nii"):
        read_nifti(tmp_path / "x.nrrd")
    with pytest.raises(InputError, match="file not found"):
        read_nifti(tmp_path / "x.nii.gz")
    # truncated gzip
    data = (totalseg / "example_ct_sm.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError) as err:
        read_nifti(tmp_path / "cut.nii.gz")
    assert "cut.nii.gz" in str(err.value)
    (tmp_path / "text.nii").write_text("hello")
    with pytest.raises(InputError, match="text.nii"):
        read_nifti(tmp_path / "text.nii")
    (tmp_path / "text.nrrd").write_text("hello")
    with pytest.raises(InputError, match="not a readable NRRD"):
        read_nrrd(tmp_path / "text.nrrd")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(InputError, match="3-D"):
        read_image(tmp_path / "4d.nii")
    nib.save(nib.Nifti1Image(np.full((2, 2, 2), 0.5, np.float32), np.eye(4)), tmp_path / "f.nii")
    with pytest.raises(InputError, match="non-integer"):
        read_nifti_labels(tmp_path / "f.nii")
    (tmp_path / "bad.nii.gz").write_bytes(gzip.compress(b"\0" * 400))
    with pytest.raises(InputError, match="bad.nii.gz"):
        read_nifti(tmp_path / "bad.nii.gz")
    nrrd.write(str(tmp_path / "f.nrrd"), np.zeros((2, 2, 2), np.float32))
    with pytest.raises(InputError, match="integer"):
        read_nrrd_labels(tmp_path / "f.nrrd")
