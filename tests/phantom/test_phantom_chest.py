"""Synthetic chest: labels, nodule HU (ground glass), sizes, placement inside the lungs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from openir.core import InputError
from openir.phantom import TumourSpec, make_chest

CHEST = ("skin", "fat", "muscle", "ribs", "spine", "sternum", "lung_left", "lung_right", "heart", "aorta", "airways")


@pytest.fixture(scope="module")
def chest():
    return make_chest(seed=2, nodules=3, spacing_mm=(2, 2, 2))


def test_labels_and_anatomy(chest):
    present = chest.labels.present()
    for name in (*CHEST, "nodule_1", "nodule_2", "nodule_3"):
        assert present.get(name, 0) > 0, name
    lab = chest.labels

    def cx(name):
        return chest.ct.index_to_world(np.argwhere(lab.mask(name)).mean(0)[::-1])

    assert cx("lung_right")[0] < 0 < cx("lung_left")[0]
    assert cx("sternum")[1] < cx("heart")[1] < cx("spine")[1]
    assert np.median(chest.ct.array[lab.mask("lung_left", "lung_right")]) < -750
    assert np.percentile(chest.ct.array[lab.mask("airways")], 10) < -700  # air lumen inside the wall


def test_nodules_ground_glass(chest):
    assert len(chest.tumours) == 3
    for info in chest.tumours:
        m = chest.labels.array == info.label
        assert -600 <= info.hu <= -300
        assert -650 <= np.mean(chest.ct.array[m]) <= -250
        assert 6 <= info.diameter_mm <= 20
        organ = chest.labels.mask(info.organ)
        shell = ndimage.binary_dilation(m, iterations=1) & ~m
        assert organ[shell].mean() > 0.9  # surrounded by its lung


def test_nodule_specs_sizes():
    specs = [TumourSpec(12, "sphere", organ="lung_left"), TumourSpec(20, "lobulated", organ="lung_right", hu=-400)]
    p = make_chest(seed=4, nodules=specs, spacing_mm=(1.5, 1.5, 1.5), fov_mm=(360, 300, 240))
    vv = p.labels.grid.voxel_volume_mm3
    for info, spec in zip(p.tumours, specs, strict=True):
        d = (6 * (p.labels.array == info.label).sum() * vv / np.pi) ** (1 / 3)
        assert abs(d - spec.diameter_mm) <= 0.1 * spec.diameter_mm
        assert info.organ == spec.organ
    assert p.tumours[1].hu == -400


def test_chest_errors():
    with pytest.raises(InputError):
        TumourSpec(35, organ="lung")
    with pytest.raises(InputError):
        make_chest(nodules=[TumourSpec(20, organ="liver")], spacing_mm=(4, 4, 4))
