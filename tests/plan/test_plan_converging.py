"""Converging cryoprobes: a shaft whose parallel path crosses a rib may lean toward the array axis
(at most the configured angle, never crossing the axis before the skin); the tip stays where the
array model put it. IRE electrodes may lean either way (pair spacing checked by the caller). Truth: the straight segment from entry to tip is
sampled every 0.5 mm against the label map, independently of the ray marcher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openir.core import Grid, LabelMap, make_affine
from openir.plan import load_configurations
from openir.plan.placement import _PathCheck
from openir.plan.policy import load_policy
from openir.plan.trajectories import prepare_case

TIP = np.array([10.0, 0.0, 0.0])  # 10 mm lateral of the array axis (x = 0), at the tumour's depth
D = np.array([0.0, 1.0, 0.0])  # insertion from anterior (-y) toward posterior


@pytest.fixture(scope="module")
def case():
    n = (30, 60, 60)  # k, j, i at 2 mm
    grid = Grid(n, make_affine((2.0, 2.0, 2.0), (-59.0, -59.0, -29.0)))
    p = grid.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 56) ** 2 + (y / 56) ** 2 <= 1.0
    liver = body & (x**2 + y**2 + z**2 <= 36**2)
    tumour = x**2 + y**2 + z**2 <= 8**2
    rib = body & (x >= 8) & (x <= 20) & (y >= -47) & (y <= -43)  # in front of the lateral probe only
    masks = {"fat": body & ~liver & ~rib, "liver": liver & ~tumour, "ribs": rib, "tumour_1": tumour}
    lm = LabelMap.from_masks(masks, grid)
    return lm, prepare_case(lm, (0.0, 0.0, 0.0), load_policy(), 150.0)


def _crosses(lm: LabelMap, entry: np.ndarray, tip: np.ndarray, name: str) -> bool:
    v = lm.value_of(name)
    n = int(np.linalg.norm(tip - entry) / 0.5) + 1
    pts = entry[None] + np.linspace(0.0, 1.0, n)[:, None] * (tip - entry)[None]
    ijk = np.rint(lm.grid.world_to_index(pts)).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.array(lm.shape)[::-1]), axis=1)
    return bool((lm.array[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]] == v).any())


def test_parallel_path_crosses_the_rib_a_converging_one_does_not(case):
    lm, prep = case
    assert _crosses(lm, TIP - 70 * D, TIP, "ribs")  # the set-up: the parallel shaft meets the rib
    ok, why, _, _ = _PathCheck(prep, {}, {}, 0.0).probe(TIP, D, TIP.copy())
    assert not ok and "ribs" in why
    limit = float(load_configurations().modalities["cryo"].converging_max_deg)
    ok, _, length, dd = _PathCheck(prep, {}, {}, limit).probe(TIP, D, TIP.copy())
    assert ok and length > 0
    lean = math.degrees(math.acos(float(np.clip(dd @ D, -1, 1))))
    assert 0.5 < lean <= limit + 1e-6
    entry = TIP - dd * length
    assert not _crosses(lm, entry, TIP, "ribs")
    assert 0.0 <= entry[0] < TIP[0]  # leans toward the axis and stays on its side of it at the skin


def test_ire_electrodes_lean_only_within_the_pair_spacing_limits():
    ire = load_configurations().modalities["ire"]
    assert ire.converging_max_deg and ire.diverging and ire.pair_spacing_mm is not None
    assert (ire.pair_spacing_mm.min, ire.pair_spacing_mm.max) == (10, 25)
    assert "NOT SOURCED" in (ire.converging_source or "") and "NOT SOURCED" in (ire.pair_spacing_source or "")
