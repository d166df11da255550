"""Template export: needle table, watertight STL with one through hole per needle, binary format."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from openir.core.errors import InputError
from openir.seeds.needles import NeedleOptions
from openir.seeds.planner import SeedPlanOptions, plan_seeds
from openir.seeds.template import (
    TemplateOptions,
    mesh_is_closed,
    needle_table_csv,
    needle_table_rows,
    read_stl,
    template_mesh,
    write_stl,
)

sys.path.insert(0, str(Path(__file__).parent))
from seed_cases import ball_case  # noqa: E402


@pytest.fixture(scope="module")
def planned():
    lm = ball_case()
    res = plan_seeds(None, lm, SeedPlanOptions(tumour="tumour", site="liver",
                                               needles=NeedleOptions(direction_lps=(1.0, 0.0, 0.0))))
    return lm, res.plan


def _genus(tri: np.ndarray) -> int:
    v = np.round(tri.reshape(-1, 3), 4)
    _u, inv = np.unique(v, axis=0, return_inverse=True)
    f = inv.reshape(-1, 3)
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    chi = len(_u) - len(edges) + len(f)
    return (2 - chi) // 2


def test_stl_is_closed_with_one_hole_per_needle_on_the_skin(planned, tmp_path):
    lm, plan = planned
    mesh = template_mesh(plan, lm.array > 0, lm, TemplateOptions(thickness_mm=4.0))
    assert mesh_is_closed(mesh.triangles)
    assert _genus(mesh.triangles) == len(plan.needles)  # a plate with n through holes has genus n
    t = mesh.triangles
    signed = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0
    assert signed > 0  # outward normals (counter-clockwise seen from outside), as printers expect
    assert signed == pytest.approx(mesh.size_mm[0] * mesh.size_mm[1] * 4.0, rel=0.1)  # flat skin: area x thickness
    # the plate lies on the skin (x = 2.5 mm: first body voxel at i = 3) and 4 mm outside it
    x = mesh.triangles[..., 0]
    assert x.max() == pytest.approx(2.5, abs=0.6) and x.min() == pytest.approx(2.5 - 4.0, abs=0.6)
    p = write_stl(tmp_path / "t.stl", mesh.triangles)
    back = read_stl(p)
    assert back.shape == mesh.triangles.shape
    np.testing.assert_allclose(back, mesh.triangles, atol=1e-4)
    assert not (tmp_path / "t.stl.part").exists()
    (tmp_path / "bad.stl").write_bytes(b"x" * 90)
    with pytest.raises(InputError):
        read_stl(tmp_path / "bad.stl")


def test_needle_table_depths_and_seeds(planned):
    _lm, plan = planned
    rows = needle_table_rows(plan, thickness_mm=5.0)
    assert len(rows) == len(plan.needles)
    assert sum(r["seeds"] for r in rows) == len(plan.seeds)
    for r, n in zip(rows, plan.needles, strict=True):
        assert r["template_depth_mm"] == pytest.approx(n.depth_mm + 5.0, abs=0.11)
        entry = np.asarray(n.entry_lps)
        assert entry[0] == pytest.approx(2.5, abs=1.0)  # skin entry on the left body surface
        assert all(0 < d < n.depth_mm for d in n.seed_depths_mm)
    csv = needle_table_csv(plan)
    assert csv.splitlines()[0].startswith("needle,hole,row,col,depth_from_skin_mm")
    assert len(csv.strip().splitlines()) == len(rows) + 1
