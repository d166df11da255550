"""Any label layout: one map holding both labels, separate files, SEG with overlapping segments."""

from __future__ import annotations

import numpy as np
import pytest
from verify_synth import ball, grid_for

from openir.core import LabelMap, Volume
from openir.io import write_dicom_series
from openir.report.verify_report import write_verification
from openir.verify import Structures, VerifyOptions, read_structures, verify, zone_behind_tumour

SPACING = (1.0, 1.0, 2.0)


@pytest.fixture(scope="module")
def scene():
    g = grid_for(48.0, SPACING)
    c = np.array([24.2, 23.9, 24.6])
    return g, c, ball(g, c, 7.0), ball(g, c, 13.0)  # exact margin 6 mm


def test_one_map_with_both_labels_tumour_inside(scene):
    g, c, t, z = scene
    one = LabelMap.from_masks({"liver": ball(g, c, 23.0), "ablation_zone": z, "tumour": t}, g)
    assert not (one.mask("ablation_zone") & one.mask("tumour")).any()  # the tumour hides the zone
    r = verify(one, options=VerifyOptions(organ="liver")).report
    assert r.zone_restored_under_tumour and r.tumour_covered_pct == 100.0
    assert r.verdict.complete and abs(r.min_margin_mm - 6.0) <= max(SPACING) / 2
    assert r.residual.volume_ml == 0.0 and r.residual.n_components == 0


def test_one_map_tumour_reaching_outside_is_incomplete(scene):
    g, c, t, _ = scene
    z = ball(g, c + [6.0, 0, 0], 9.0)  # tumour sticks out on the right (-x)
    one = LabelMap.from_masks({"ablation_zone": z, "tumour": t}, g)
    r = verify(one).report
    assert not r.verdict.complete and r.verdict.term == "incomplete ablation"
    assert 0.0 < r.tumour_covered_pct < 100.0 and "estimate" in r.layout_note
    assert r.residual.n_components == 1 and r.residual.direction.startswith("right")


def test_zone_behind_tumour_is_exact_for_a_covered_tumour(scene):
    g, _, t, z = scene
    restored, changed = zone_behind_tumour(t, z & ~t, g.spacing[::-1])
    assert changed and np.array_equal(restored, z)
    same, changed = zone_behind_tumour(t, z, g.spacing[::-1])  # overlapping layout: left alone
    assert not changed and same is z


def test_overlapping_segments_kept_apart(scene):
    g, c, t, z = scene
    s = Structures({"ablation_zone": z, "tumour": t}, g, exclusive=False)
    r = verify(s).report
    assert not r.zone_restored_under_tumour and r.verdict.complete and abs(r.min_margin_mm - 6.0) <= 1.0


def test_dicom_seg_with_overlapping_segments(scene, tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from openir.io import read_dicom_datasets

    g, c, t, z = scene
    ct = Volume(np.where(z, 30.0, 100.0).astype(np.int16), g.affine)
    write_dicom_series(ct, tmp_path / "ct")
    items = read_dicom_datasets(tmp_path / "ct")
    items = sorted(items, key=lambda ds: float(ds.ImagePositionPatient[2]))
    descs = [hd.seg.SegmentDescription(segment_number=n, segment_label=name,
                                       segmented_property_category=codes.SCT.Tissue,
                                       segmented_property_type=codes.SCT.Tissue,
                                       algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
             for n, name in ((1, "ablation_zone"), (2, "tumour"))]
    seg = hd.seg.Segmentation(
        source_images=items, pixel_array=np.stack([z, t], axis=-1),  # zone drawn over the tumour
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descs,
        series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="test", manufacturer_model_name="test", software_versions="0", device_serial_number="0",
    )
    seg.save_as(tmp_path / "seg.dcm")
    s = read_structures(tmp_path / "seg.dcm", g)
    assert not s.exclusive and (s.mask("tumour") & s.mask("ablation_zone")).sum() == t.sum()
    r = verify(s).report
    assert r.tumour_covered_pct == 100.0 and r.verdict.complete and abs(r.min_margin_mm - 6.0) <= 1.0


def test_labels_outside_the_image_are_a_clear_error(scene):
    g, c, t, z = scene
    from openir.core import InputError

    img = Volume(np.ones(g.shape, np.float32), g.affine.copy())
    img.affine[:3, 3] += [0.0, 0.0, 500.0]
    with pytest.raises(InputError, match="do not overlap in patient coordinates"):
        verify(LabelMap.from_masks({"ablation_zone": z, "tumour": t}, g), pre_image=img)


def test_image_on_another_grid_is_resampled_for_the_report(scene, tmp_path):
    g, c, t, z = scene
    from openir.core import Grid, make_affine

    coarse = Grid((20, 20, 20), make_affine((2.5, 2.5, 2.5), (0.0, 0.0, 0.0)))
    img = Volume(np.ones(coarse.shape, np.float32), coarse.affine)
    v = verify(LabelMap.from_masks({"ablation_zone": z, "tumour": t}, g), pre_image=img)
    write_verification(v, tmp_path / "o")
    assert v.image.shape == g.shape and (tmp_path / "o" / "report.html").exists()


def test_rtstruct_with_overlapping_rois(tmp_path):
    """Zone and tumour drawn as overlapping RTSTRUCT ROIs (pydicom's rtstruct.dcm, ROIs redrawn)."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from openir.core import Grid, make_affine

    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)

    def square(half, zs):
        items = []
        for z in zs:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = 4
            c.ContourData = [-half, -half, z, half, -half, z, half, half, z, -half, half, z]
            items.append(c)
        return Sequence(items)

    names = {int(r.ROINumber): r for r in ds.StructureSetROISequence}
    for rc in ds.ROIContourSequence:
        num = int(rc.ReferencedROINumber)
        if num == 1:
            names[1].ROIName = "ablation_zone"
            rc.ContourSequence = square(40.0, [-220.0 + 5 * k for k in range(13)])  # 60 mm of slices
        elif num == 2:
            names[2].ROIName = "tumour"
            rc.ContourSequence = square(20.0, [-200.0 + 5 * k for k in range(5)])  # inside, overlapping
        else:
            names[num].ROIName = "marker"
    ds.save_as(tmp_path / "rt.dcm")
    ref = Grid((24, 60, 60), make_affine((2.0, 2.0, 5.0), (-59.0, -59.0, -240.0)))
    s = read_structures(tmp_path / "rt.dcm", ref)
    assert set(s.names) >= {"ablation_zone", "tumour"} and not s.exclusive
    assert (s.mask("tumour") & s.mask("ablation_zone")).sum() == s.mask("tumour").sum()
    r = verify(s).report
    assert r.tumour_covered_pct == 100.0 and r.verdict.complete and not r.zone_restored_under_tumour
    assert r.min_margin_mm > 5.0  # 20 mm in-plane, 15-20 mm along the slices
