"""Implant a synthetic tumour into the real TotalSegmentator CT (liver = label 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openir.core import InputError, LabelMap, Volume
from openir.phantom import TumourSpec, implant_tumour

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _read(path):
    import nibabel as nib

    img = nib.load(str(path))
    arr = np.asanyarray(img.dataobj).transpose(2, 1, 0)  # [i, j, k] -> [k, j, i]
    return arr, RAS_TO_LPS @ img.affine


@pytest.fixture(scope="module")
def case(shared_data):
    d = shared_data / "totalseg-abdomen-ct"
    ct_arr, aff = _read(d / "example_ct_sm.nii.gz")
    seg_arr, aff2 = _read(d / "example_seg.nii.gz")
    names = {int(k): v for k, v in json.loads((d / "labels.json").read_text())["labels"].items()}
    ct = Volume(ct_arr.astype(np.int16), aff, {"modality": "CT"})
    labels = LabelMap(seg_arr.astype(np.uint8), aff2, {}, names)
    return ct, labels


@pytest.mark.parametrize("spec", [TumourSpec(20, "sphere", "central"), TumourSpec(20, "lobulated", "subcapsular"),
                                  TumourSpec(15, "ellipsoid", "perivascular")])
def test_implant_into_totalseg(case, spec):
    ct, labels = case
    p = implant_tumour(ct, labels, spec, seed=1, organ_label=5)
    info = p.tumours[0]
    assert info.name == "tumour_1" and p.labels.has("tumour_1") and info.organ == "liver"
    m = p.labels.array == info.label
    assert m.any() and labels.array[m].tolist() == [5] * int(m.sum())  # only liver voxels became tumour
    d_eq = (6 * m.sum() * ct.grid.voxel_volume_mm3 / np.pi) ** (1 / 3)
    assert abs(d_eq - spec.diameter_mm) <= 0.15 * spec.diameter_mm  # 3 mm voxels
    liver_hu = np.median(ct.array[labels.array == 5])
    assert np.median(p.ct.array[m]) < liver_hu - 20
    # nothing changed far from the tumour; the input arrays are untouched
    far = np.ones(m.shape, bool)
    idx = np.argwhere(m)
    lo, hi = idx.min(0) - 3, idx.max(0) + 4
    far[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = False
    assert np.array_equal(p.ct.array[far], ct.array[far])
    assert not (labels.array == info.label).any()
    assert p.ct.meta["synthetic_tumour"] is True


def test_implant_deterministic_and_errors(case):
    ct, labels = case
    a = implant_tumour(ct, labels, TumourSpec(20), seed=3, organ_label="liver")
    b = implant_tumour(ct, labels, TumourSpec(20), seed=3, organ_label="liver")
    assert np.array_equal(a.ct.array, b.ct.array) and a.tumours[0].centre_lps == b.tumours[0].centre_lps
    with pytest.raises(InputError):
        implant_tumour(ct, labels, TumourSpec(20), organ_label="brain")
