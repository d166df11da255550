"""Difficulty from the labels (difficulty.yaml), checked on a hand-built label map whose distances
are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core import LabelMap, make_affine
from openir.core.errors import DataFileError
from openir.training import case_difficulty, load_difficulty_rule


def _case(gap_mm: int, capsule_mm: int) -> LabelMap:
    """1 mm voxels: a liver block, a 12 mm cube 'tumour' ``capsule_mm`` inside the liver's right face,
    a gallbladder slab ``gap_mm`` below the tumour, skin around everything."""
    a = np.zeros((80, 80, 80), np.uint8)
    a[:] = 1  # skin / body wall
    a[5:75, 5:75, 5:75] = 2  # liver
    i0 = 75 - capsule_mm - 12
    a[34:46, 34:46, i0:i0 + 12] = 3  # tumour, 12 mm cube
    a[34 - gap_mm - 4:34 - gap_mm, 30:50, i0 - 2:i0 + 14] = 4  # gallbladder slab, gap_mm below
    return LabelMap(a, make_affine((1.0, 1.0, 1.0)), {}, {1: "skin", 2: "liver", 3: "tumour_1", 4: "gallbladder"})


def test_criteria_follow_the_distances():
    d = case_difficulty(_case(gap_mm=3, capsule_mm=4), "tumour_1")
    by = {c.id: c for c in d.criteria}
    assert by["must_spare_near"].met and by["must_spare_near"].value == pytest.approx(3.0, abs=0.6)  # 3 mm gap (surface estimate)
    assert by["subcapsular"].met and by["subcapsular"].value == pytest.approx(3.0, abs=0.01)
    # 3 mm: the liver surface facing the gallbladder is nearer than the 4 mm to the right face
    assert not by["size"].met and by["size"].value == pytest.approx(2 * (3 * 1728 / (4 * np.pi)) ** (1 / 3), abs=0.01)
    assert not by["deep"].met and not by["heat_sink"].met
    assert d.points == 3 and d.level == "intermediate"
    far = case_difficulty(_case(gap_mm=12, capsule_mm=20), "tumour_1")
    assert far.points == 0 and far.level == "basic"
    assert all(c.source for c in far.criteria)
    assert any("NOT SOURCED" in c.source for c in far.criteria)  # unsourced thresholds say so


def test_a_bad_rule_file_names_the_field(tmp_path):
    bad = tmp_path / "d.yaml"
    bad.write_text("difficulty_version: x\ncriteria: [{id: a}]\nlevels: []\n")
    with pytest.raises(DataFileError, match=r"d.yaml \[criteria.0"):
        load_difficulty_rule(bad)
