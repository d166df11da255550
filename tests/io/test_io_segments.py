"""Overlapping named segments: Slicer .seg.nrrd, 4-D NIfTI, DICOM SEG and RTSTRUCT round trips on a
real DICOM CT (pydicom's test series) and a synthetic one; independent checks with pydicom/highdicom."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core import Volume, make_affine

io = pytest.importorskip("openir.io")


def _masks(shape):
    k, j, i = np.indices(shape)
    ball = (k - shape[0] / 2) ** 2 + (j - 12) ** 2 + (i - 14) ** 2 <= 25
    ring = ((j - 12) ** 2 + (i - 14) ** 2 <= 64) & ~((j - 12) ** 2 + (i - 14) ** 2 <= 16) & (k >= 1)
    box = np.zeros(shape, bool)
    box[1:-1, 5:20, 8:22] = True
    return {"tumour_a": ball, "target_a": ball | ring, "zone_a": box, "ablation_zone": box | ring}


def test_round_trips(tmp_path):
    ct = Volume(np.zeros((6, 24, 28), np.int16), make_affine((0.8, 0.8, 2.5), (-10, -12, 30)))
    io.write_dicom_series(ct, tmp_path / "ct")
    m = _masks(ct.shape)
    io.write_segmentation_nrrd(m, ct.grid, tmp_path / "s.seg.nrrd")
    back, g = io.read_segmentation_nrrd(tmp_path / "s.seg.nrrd")
    assert g.same_as(ct.grid) and all(np.array_equal(back[k], v) for k, v in m.items())
    io.write_segments_nifti(m, ct.grid, tmp_path / "s.nii.gz")
    back, g = io.read_segments_nifti(tmp_path / "s.nii.gz")
    assert g.same_as(ct.grid) and all(np.array_equal(back[k], v) for k, v in m.items())
    io.write_dicom_seg_masks(m, ct.grid, tmp_path / "ct", tmp_path / "seg.dcm")
    back, g, _ = io.read_dicom_seg_masks(tmp_path / "seg.dcm", reference=tmp_path / "ct")
    assert all(np.array_equal(back[k], v) for k, v in m.items())
    io.write_rtstruct(m, ct.grid, tmp_path / "ct", tmp_path / "rt.dcm")
    import pydicom

    ds = pydicom.dcmread(tmp_path / "rt.dcm")
    assert ds.Modality == "RTSTRUCT" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert [r.ROIName for r in ds.StructureSetROISequence] == list(m)
    ct_uids = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "ct").iterdir()}
    refs = {c.ContourImageSequence[0].ReferencedSOPInstanceUID for rc in ds.ROIContourSequence for c in rc.ContourSequence}
    assert refs <= ct_uids
    for name, v in m.items():
        assert np.array_equal(io.read_rtstruct(tmp_path / "rt.dcm", ct.grid, names=[name]).array > 0, v), name


def test_seg_on_a_real_ct_validates_with_highdicom(tmp_path):
    import highdicom as hd
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    src = pydicom.dcmread(path)
    grid = io.series_grid([src])
    m = {"tumour_x": np.zeros(grid.shape, bool), "zone_x": np.zeros(grid.shape, bool)}
    m["tumour_x"][0, 30:40, 30:40] = True
    m["zone_x"][0, 25:50, 28:45] = True
    io.write_dicom_seg_masks(m, grid, [src], tmp_path / "seg.dcm")
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(tmp_path / "seg.dcm"))
    assert seg.number_of_segments == 2
    assert seg.get_segment_description(1).segment_label == "tumour_x"
