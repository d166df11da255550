"""DICOM SEG: the dcmqi bar (SEG == NRRD voxel for voxel), highdicom files, overlap, round trip."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from openir.core import GeometryError, Grid, InputError, LabelMap, Volume, make_affine
from openir.io import (
    read_dicom_datasets,
    read_dicom_seg,
    read_dicom_seg_masks,
    read_dicom_series,
    read_labels,
    read_nrrd_labels,
    write_dicom_seg,
    write_dicom_series,
)
from openir.testing import need

CT2 = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "77654033" / "CT2"


@pytest.fixture(scope="module")
def dcmqi(shared_data):
    folder = shared_data / "dcmqi-liver-seg"
    need((folder / "liver.dcm").is_file(), f"{folder} missing")
    return folder


@pytest.fixture(scope="module")
def hdseg(shared_data):
    folder = shared_data / "highdicom-seg"
    need((folder / "seg_image_ct_binary.dcm").is_file(), f"{folder} missing")
    return folder


def test_dcmqi_liver_seg_equals_its_nrrd_voxel_for_voxel(dcmqi):
    ct = read_dicom_series(dcmqi / "ct-3slice")
    seg = read_dicom_seg(dcmqi / "liver.dcm", reference=ct)
    ref = read_nrrd_labels(dcmqi / "liver_seg.nrrd")
    # same frame: the NRRD grid is the CT grid (LPS, same origin/spacing to header precision)
    assert ref.grid.same_as(ct.grid, tol_mm=1e-3)
    assert seg.grid.same_as(ref.grid, tol_mm=1e-3)
    assert seg.labels == {1: "Liver"}
    np.testing.assert_array_equal(seg.array.astype(np.int16), ref.array)
    assert int(seg.mask("liver").sum()) == 107098
    # without a reference, the grid spanned by the frames is the same grid
    own = read_dicom_seg(dcmqi / "liver.dcm")
    assert own.grid.same_as(ct.grid, tol_mm=1e-3)
    np.testing.assert_array_equal(own.array, seg.array)
    # dispatch by content
    assert read_labels(dcmqi / "liver.dcm", reference=dcmqi / "ct-3slice").grid.same_as(ct.grid)


def test_partial_overlaps_policy(dcmqi):
    ct = read_dicom_series(dcmqi / "ct-3slice")
    with pytest.raises(InputError, match="segments overlap: 'GREEN'/'ORANGE'"):
        read_dicom_seg(dcmqi / "partial_overlaps.dcm", ct)
    masks, grid, meta = read_dicom_seg_masks(dcmqi / "partial_overlaps.dcm", ct)
    assert list(masks) == ["GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE", "DARK_BLUE"]
    assert (masks["GREEN"] & masks["ORANGE"]).any()
    lm = read_dicom_seg(dcmqi / "partial_overlaps.dcm", ct, overlap="later_wins")
    assert lm.meta["overlaps"]
    # later (higher-numbered) segments win; every voxel of the last segment keeps its label
    assert np.all(lm.array[masks["DARK_BLUE"]] == 5)
    union = np.logical_or.reduce(list(masks.values()))
    np.testing.assert_array_equal(lm.array > 0, union)


def _highdicom_by_source(path: Path, ct_files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Per source SOP instance: highdicom's own (rows, cols, segments) pixels."""
    seg = hd.seg.segread(path)
    out = {}
    for uid in ct_files:
        try:
            px = seg.get_pixels_by_source_instance([uid], combine_segments=False)
        except (KeyError, ValueError):
            continue
        out[uid] = px[0]
    return out


@pytest.mark.parametrize(
    "name",
    [
        "seg_image_ct_binary.dcm",
        "seg_image_ct_binary_fractional.dcm",
        "seg_image_ct_true_fractional.dcm",
        "seg_image_ct_binary_overlap.dcm",
    ],
)
def test_highdicom_segs_on_pydicom_ct2(hdseg, name):
    ct_files = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in CT2.iterdir()}
    masks, grid, meta = read_dicom_seg_masks(hdseg / name)
    names = list(masks)
    expected = _highdicom_by_source(hdseg / name, ct_files)
    assert expected, "highdicom found no frames for CT2 instances"
    threshold = 0.5  # fractional segments are read as "at least half"
    for uid, px in expected.items():
        ds = pydicom.dcmread(ct_files[uid])
        i, j, k = np.rint(grid.world_to_index([float(v) for v in ds.ImagePositionPatient])).astype(int)
        assert (i, j) == (0, 0)
        if not 0 <= k < grid.shape[0]:  # a source slice the SEG has no frame for
            assert not np.any(px)
            continue
        for s, seg_name in enumerate(names):
            np.testing.assert_array_equal(masks[seg_name][k], px[..., s] >= threshold if px.dtype.kind == "f" else px[..., s] > 0)
    # the CT2 stack has a 202 mm gap, so the SEG grid spans it with empty slices (1.25 mm steps)
    np.testing.assert_allclose(grid.spacing, [0.488281, 0.488281, 1.25], atol=1e-5)


def test_seg_on_a_reference_made_from_three_ct2_slices(hdseg):
    files = [f for f in CT2.iterdir() if float(pydicom.dcmread(f).ImagePositionPatient[2]) > 0]
    ct = read_dicom_series(files)
    seg = read_dicom_seg(hdseg / "seg_image_ct_binary.dcm", reference=ct)
    assert seg.shape == ct.shape == (3, 16, 16)
    own = read_dicom_seg(hdseg / "seg_image_ct_binary.dcm")
    np.testing.assert_array_equal(seg.array, own.array)
    assert seg.array.any()


def test_single_frame_seg_on_its_ct_image(hdseg):
    ct = read_dicom_series(hdseg / "ct_image.dcm")
    seg = read_dicom_seg(hdseg / "seg_image_ct_binary_single_frame.dcm", reference=ct)
    assert seg.shape == (1, 128, 128)
    expected = hd.seg.segread(hdseg / "seg_image_ct_binary_single_frame.dcm").pixel_array
    np.testing.assert_array_equal(seg.array[0] > 0, np.asarray(expected).reshape(128, 128) > 0)


def test_seg_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    ct_arr = rng.integers(-100, 100, size=(4, 12, 10)).astype(np.int16)
    ct = Volume(ct_arr, make_affine((0.8, 0.8, 2.0), (-5.0, 7.0, 100.0)))
    write_dicom_series(ct, tmp_path / "ct")
    arr = np.zeros(ct.shape, np.uint8)
    arr[1:3, 2:6, 3:7] = 2
    arr[2, 8:10, 1:4] = 7
    labels = LabelMap(arr, ct.affine.copy(), {}, {2: "liver", 7: "tumour 1"})
    out = write_dicom_seg(labels, tmp_path / "ct", tmp_path / "seg.dcm")
    back = read_dicom_seg(out, reference=tmp_path / "ct")
    assert back.names == ["liver", "tumour 1"]
    np.testing.assert_array_equal(back.mask("liver"), labels.mask("liver"))
    np.testing.assert_array_equal(back.mask("tumour 1"), labels.mask("tumour 1"))
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG"
    ref_uids = {i.ReferencedSOPInstanceUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert ref_uids <= {d.SOPInstanceUID for d in read_dicom_datasets(tmp_path / "ct")}
    # data sets in, same result
    out2 = write_dicom_seg(labels, read_dicom_datasets(tmp_path / "ct"), tmp_path / "seg2.dcm")
    np.testing.assert_array_equal(read_dicom_seg(out2, reference=tmp_path / "ct").array, back.array)


def test_seg_errors(tmp_path, dcmqi):
    with pytest.raises(InputError, match="not a DICOM SEG"):
        read_dicom_seg(dcmqi / "ct-3slice" / "01.dcm")
    # wrong reference grids

    g = Grid((3, 512, 512), make_affine((0.5, 0.5, 1.0), (-235.2, -226.8, -128.69)))
    with pytest.raises(GeometryError, match="pixel spacing"):
        read_dicom_seg(dcmqi / "liver.dcm", reference=g)
    g = Grid((1, 512, 512), make_affine((0.810547, 0.810547, 1.0), (-235.2, -226.8, -128.69)))
    with pytest.raises(GeometryError, match="outside"):
        read_dicom_seg(dcmqi / "liver.dcm", reference=g)
    # a label map on another grid cannot be written against this series
    lm = LabelMap(np.ones((2, 4, 4), np.uint8), np.eye(4), {}, {1: "x"})
    with pytest.raises(GeometryError, match="resample"):
        write_dicom_seg(lm, dcmqi / "ct-3slice", tmp_path / "x.dcm")
    data = (dcmqi / "liver.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.dcm"):
        read_dicom_seg(tmp_path / "cut.dcm")
