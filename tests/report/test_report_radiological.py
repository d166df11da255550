"""Every 2D view follows the radiological convention whatever the file orientation: checked on the
real RAS NIfTI CT and the real DICOM series against known anatomy (spine posterior, liver on the
patient's right, lungs superior), and on a flipped copy of the file (same picture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openir.core import LabelMap, Volume
from openir.report.slices import radiological_slice
from openir.testing import need

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "totalseg-abdomen-ct"


@pytest.fixture(scope="module")
def nifti_case():
    from openir import io

    need((DATA / "example_ct_sm.nii.gz").exists(), "../shared/data/totalseg-abdomen-ct not present")
    ct = io.read_image(DATA / "example_ct_sm.nii.gz")
    lm = io.read_labels(DATA / "example_seg.nii.gz", DATA / "labels.json")
    return ct, lm


def _centroid(mask2d: np.ndarray) -> np.ndarray:
    rc = np.argwhere(mask2d)
    assert len(rc), "structure not in the view"
    return rc.mean(axis=0) / np.array(mask2d.shape)  # (row, col) as fractions


def _mask_of(lm: LabelMap, *patterns: str) -> Volume:
    vals = [v for v, n in lm.labels.items() if any(n.startswith(p) for p in patterns)]
    return Volume(np.isin(lm.array, vals).astype(np.uint8), lm.affine)


def _anatomy_checks(lm: LabelMap):
    liver = _mask_of(lm, "liver")
    spine = _mask_of(lm, "vertebrae")
    centre = lm.index_to_world(np.argwhere(liver.array).mean(axis=0)[::-1])
    ax_l = _centroid(radiological_slice(liver, "axial", centre).pixels > 0)
    ax_s = _centroid(radiological_slice(spine, "axial", centre).pixels > 0)
    assert ax_l[1] < 0.5, "axial: the liver (patient's right) must be on the image left"
    assert ax_s[0] > 0.5 and ax_s[0] > ax_l[0], "axial: the spine (posterior) must be at the bottom"
    spine_c = lm.index_to_world(np.argwhere(spine.array).mean(axis=0)[::-1])
    co_l = _centroid(radiological_slice(liver, "coronal", spine_c - [0, 40, 0]).pixels > 0)
    assert co_l[1] < 0.5, "coronal: the liver must be on the image left"
    lung = _mask_of(lm, "lung")
    co_lung = _centroid(radiological_slice(lung, "coronal", spine_c - [0, 40, 0]).pixels > 0)
    assert co_lung[0] < co_l[0], "coronal: the lungs (superior) must be above the liver"
    sa_s = _centroid(radiological_slice(spine, "sagittal", spine_c).pixels > 0)
    sa_l = _centroid(radiological_slice(liver, "sagittal", centre).pixels > 0)
    assert sa_s[1] > 0.5 and sa_s[1] > sa_l[1], "sagittal: the spine (posterior) must be on the image right"


def test_views_of_the_ras_nifti_follow_the_radiological_convention(nifti_case):
    ct, lm = nifti_case
    assert ct.affine[0, 0] < 0  # the file runs toward the patient's right: array slicing would mirror it
    _anatomy_checks(lm)


def test_a_flipped_file_gives_the_same_picture(nifti_case):
    ct, lm = nifti_case
    # the same anatomy stored with i and k reversed (another file orientation, same patient frame)
    n = np.array(lm.grid.shape_ijk) - 1
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[:3, 3] = [n[0], 0, n[2]]
    aff = lm.affine @ flip
    flipped = LabelMap(lm.array[::-1, :, ::-1].copy(), aff, {}, dict(lm.labels))
    _anatomy_checks(flipped)
    c = lm.index_to_world(n // 2)  # on a voxel centre: no tie on the fixed axis
    for plane in ("axial", "coronal", "sagittal"):
        # pixels on the voxel centres (3 mm): no rounding ties between the two files
        a = radiological_slice(lm, plane, c, pixel_mm=3.0).pixels
        b = radiological_slice(flipped, plane, c, pixel_mm=3.0).pixels
        assert np.array_equal(a, b)


def test_rendered_png_has_the_liver_on_the_left_and_the_spine_at_the_bottom(nifti_case, tmp_path):
    """The whole figure path (imshow extents, axes limits), read back from the PNG's pixels."""
    import matplotlib.pyplot as plt

    from openir.report.views import ViewSpec, draw_views

    _, lm = nifti_case
    liver = lm.mask("liver")
    centre = lm.index_to_world(np.argwhere(liver).mean(axis=0)[::-1])
    sub = lm.subset(["liver", "vertebrae_L1", "vertebrae_T12", "vertebrae_L2"])
    fig, ax = plt.subplots(figsize=(4, 4), facecolor="black")
    draw_views(ViewSpec(labels=sub, centre_lps=centre), [ax], planes=("axial",))
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    bbox = ax.get_window_extent()
    h = rgb.shape[0]
    panel = rgb[int(h - bbox.y1):int(h - bbox.y0), int(bbox.x0):int(bbox.x1)]
    plt.close(fig)
    from openir.report.figures import label_colours

    col = label_colours(sub)
    def where(name):
        c = np.asarray(col[sub.value_of(name)]) * 0.8  # alpha 0.8 over black
        m = np.abs(panel - c).max(axis=2) < 0.03
        assert m.sum() > 20, name
        return np.argwhere(m).mean(axis=0) / np.array(m.shape)
    lv = where("liver")
    sp = where("vertebrae_L1") if (sub.mask("vertebrae_L1")).any() else where("vertebrae_T12")
    assert lv[1] < 0.5 and sp[0] > lv[0]


def test_dicom_series_spine_posterior():
    from openir import io

    folder = DATA / "example_ct_dicom"
    need(folder.exists(), "../shared/data/totalseg-abdomen-ct/example_ct_dicom not present")
    try:
        ct = io.read_image(folder)
    except Exception as exc:  # pragma: no cover - decoder missing
        pytest.skip(f"cannot decode the JPEG 2000 series here: {exc}")
    c = ct.index_to_world((np.array(ct.grid.shape_ijk) - 1) / 2)
    ax = radiological_slice(ct, "axial", c, order=1, pixel_mm=2.0, cval=-1000).pixels
    body = ax > -300
    bone = ax > 250
    # the spine: bone pixels near the midline, below the body's centre
    b = _centroid(bone)
    assert b[0] > _centroid(body)[0], "axial: bone (spine) must be posterior = lower in the image"
    sag = radiological_slice(ct, "sagittal", c, order=1, pixel_mm=2.0, cval=-1000).pixels
    assert _centroid(sag > 250)[1] > _centroid(sag > -300)[1], "sagittal: the spine must be on the image right"
    # flipping the file (i reversed) leaves the axial picture unchanged
    n = ct.grid.shape_ijk[0] - 1
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, n
    ct2 = Volume(ct.array[:, :, ::-1].copy(), ct.affine @ flip)
    ax2 = radiological_slice(ct2, "axial", c, order=1, pixel_mm=2.0, cval=-1000).pixels
    assert np.allclose(ax, ax2, atol=1e-3)
