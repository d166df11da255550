"""The case viewer draws every file radiologically through its affine, with true aspect ratio."""

from __future__ import annotations

import numpy as np

from openir.core import Volume, make_affine
from openir.web.imaging import LETTERS, lps_canonical, pixel_mm, render_slice, square_pixels, take


def test_the_same_anatomy_comes_out_the_same_whatever_the_file_direction():
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(5, 6, 7)).astype(np.float32)
    lps = Volume(arr, make_affine((0.8, 0.9, 2.5)))
    want, sp = lps_canonical(lps.array, lps.direction, lps.spacing)
    assert np.array_equal(want, arr) and sp == (2.5, 0.9, 0.8)
    # the same voxels stored as RAS (i and j reversed) and with k and j swapped
    ras = np.diag([-1.0, -1.0, 1.0])
    flipped = arr[:, ::-1, ::-1]
    got, sp2 = lps_canonical(flipped, ras, lps.spacing)
    assert np.array_equal(got, arr) and sp2 == sp
    swapped = np.transpose(arr, (1, 0, 2))  # array [j, k, i]: index axis j runs superior, k posterior
    d = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    got, sp3 = lps_canonical(swapped, d, (0.8, 2.5, 0.9))
    assert np.array_equal(got, arr) and sp3 == sp


def test_pixels_are_square_in_mm_for_any_ratio():
    rgb = np.zeros((30, 100, 3), np.uint8)
    out = square_pixels(rgb, 2.5, 0.8)  # 2.5 mm slices, 0.8 mm pixels: ratio 3.125, not a whole number
    assert out.shape[0] == round(30 * 3.125)
    assert pixel_mm((2.5, 0.9, 0.8), "coronal") == (2.5, 0.8) and pixel_mm((2.5, 0.9, 0.8), "sagittal") == (2.5, 0.9)
    img = np.zeros((30, 40, 50), np.float32)
    png = render_slice(img, None, (2.5, 0.9, 0.8), axis="coronal", index=3, centre=0, width=100)
    h, w = int.from_bytes(png[20:24], "big"), int.from_bytes(png[16:20], "big")
    assert w == 50 and abs(h / w - (30 * 2.5) / (50 * 0.8)) < 1.0 / w  # physical aspect, within a pixel


def test_real_ras_nifti_liver_is_on_the_image_left_and_spine_at_the_bottom(shared_data):
    from openir.io import read_image, read_labels

    folder = shared_data / "totalseg-abdomen-ct"
    ct, seg = read_image(folder / "example_ct_sm.nii.gz"), read_labels(folder / "example_seg.nii.gz")
    img, _ = lps_canonical(np.asarray(ct.array, np.float32), ct.direction, ct.spacing)
    lab, _ = lps_canonical(np.asarray(seg.array, np.int16), seg.grid.direction, seg.grid.spacing)
    k = int(np.argmax((lab == 5).sum(axis=(1, 2))))  # the slice with the most liver
    liver = take(lab, "axial", k) == 5
    cols = np.nonzero(liver)[1]
    assert cols.mean() < liver.shape[1] / 2  # patient's right (liver) on the image left
    bone = take(img, "axial", k) > 250
    rows = np.nonzero(bone[:, liver.shape[1] * 2 // 5: liver.shape[1] * 3 // 5])[0]  # midline: vertebra
    assert rows.mean() > bone.shape[0] / 2  # posterior (spine) at the bottom, anterior up
    assert LETTERS["axial"] == ("A", "P", "R", "L")


def test_real_dicom_series_spine_at_the_bottom(shared_data):
    from openir.io import read_image

    ct = read_image(shared_data / "totalseg-abdomen-ct" / "example_ct_dicom")
    img, _ = lps_canonical(np.asarray(ct.array, np.float32), ct.direction, ct.spacing)
    sl = take(img, "axial", img.shape[0] // 2)
    bone = sl[:, sl.shape[1] * 2 // 5: sl.shape[1] * 3 // 5] > 250
    assert np.nonzero(bone)[0].mean() > sl.shape[0] / 2


def test_planned_needles_are_drawn_where_they_cross_the_slice():
    import zlib

    img = np.zeros((20, 30, 40), np.float32)
    sp = (2.0, 1.0, 1.0)  # (k, j, i) mm
    needle = ([2.0, 15.0, 20.0], [30.0, 15.0, 20.0])  # along x at j = 15, k = 10 (z = 20 mm)

    def pixels(png):
        w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        raw = zlib.decompress(png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8])
        return np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)[:, 1:].reshape(h, w, 3)

    on = pixels(render_slice(img, None, sp, axis="axial", index=10, centre=0, width=100, needles=[needle]))
    ys, xs = np.nonzero((on == [255, 235, 59]).all(axis=2))
    assert set(ys) == {15} and xs.min() == 2 and xs.max() == 30  # the needle, on its row, entry to tip
    off = pixels(render_slice(img, None, sp, axis="axial", index=3, centre=0, width=100, needles=[needle]))
    assert not (off == [255, 235, 59]).all(axis=2).any()  # far from the slice: not drawn


def test_the_margin_map_colours_the_tumour_surface_by_class():
    import zlib

    from openir.web.imaging import MARGIN_RGB
    from openir.web.seed import case_volume

    vol = case_volume(3)
    m = vol["margin_mm"]
    surf = np.isfinite(m)
    assert surf.any() and (vol["labels"][surf] == 1).all()  # only at the tumour surface
    k = int(np.argmax(surf.sum(axis=(1, 2))))
    png = render_slice(vol["image"], vol["labels"], tuple(vol["spacing"]), axis="axial", index=k, centre=40,
                       width=400, margin=m)
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    raw = zlib.decompress(png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8])
    rgb = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)[:, 1:].reshape(h, w, 3)
    for cls, sel in (("below_0", m[k] < 0), ("0_5", (m[k] >= 0) & (m[k] < 5)), ("5_up", m[k] >= 5)):
        assert ((rgb == MARGIN_RGB[cls]).all(axis=2) == sel).all(), cls  # exactly those voxels, in their class colour
