"""`plan_ablation` end to end on the synthetic phantom (2 mm) and `openir plan` on a small case."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.core import Volume
from openir.plan.models import Plan
from openir.plan.planner import plan_ablation

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import small_case  # noqa: E402

phantom = pytest.importorskip("openir.phantom")


@pytest.fixture(scope="module")
def chest_plan():
    p = phantom.make_chest(seed=3, nodules=(phantom.TumourSpec(diameter_mm=12, organ="lung_right"),
                                            phantom.TumourSpec(diameter_mm=10, organ="lung_left")),
                           spacing_mm=(2.0, 2.0, 2.0))
    targets: dict = {}
    plan = plan_ablation(p.labels, [t.name for t in p.tumours], n_directions=2000, targets_out=targets)
    return p, plan, targets


def test_several_nodules_in_one_procedure(chest_plan):
    p, plan, targets = chest_plan
    assert [t.tumour for t in plan.targets] == [t.name for t in p.tumours]
    for t in plan.targets:
        assert t.recommendation.features.organ == "lung"
        assert t.modality == t.recommendation.chosen
        if t.full_coverage:
            assert t.target_coverage_pct >= 99.0 and t.tumour_coverage_pct == pytest.approx(100.0)
        else:
            assert t.blocked_ml or t.notes  # says what blocks it
        assert not t.must_spare_touched_ml
        assert any("measured in liver" in n or "lung" in n for n in t.notes) or t.n_probes == 0
    orders = [pr.order for pr in plan.probes]
    assert orders == list(range(1, len(orders) + 1))
    for pr in plan.probes:  # entry -> tip along the insertion direction
        d = np.subtract(pr.tip_lps, pr.entry_lps)
        assert np.allclose(d / np.linalg.norm(d), pr.direction_lps, atol=1e-6)
    assert set(targets) == {t.name for t in p.tumours}


def test_plan_json_roundtrip_and_zone_mask(chest_plan):
    p, plan, _ = chest_plan
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again.provenance.catalogue_version == plan.provenance.catalogue_version
    m = again.zone_mask(p.labels.grid)
    assert m.shape == p.labels.shape
    assert m.any() == bool(plan.zones)


def test_cli_plan_writes_every_output(tmp_path):
    labels, _ = small_case(spacing=(2.0, 2.0, 2.0), shape_ijk=(32, 28, 20))
    io = pytest.importorskip("openir.io")
    ct = Volume(np.where(labels.array > 0, 40, -1000).astype(np.int16), labels.affine)
    io.write_nifti(ct, tmp_path / "ct.nii.gz")
    io.write_nifti(labels, tmp_path / "labels.nii.gz")
    (tmp_path / "names.json").write_text(json.dumps({"labels": {str(k): v for k, v in labels.labels.items()}}))
    from openir.cli import app

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["plan", str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"),
                                 "--names", str(tmp_path / "names.json"), "--tumor", "tumour_1",
                                 "--needle", "60", "--margin", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    plan = json.loads((out / "plan.json").read_text())
    assert plan["targets"][0]["target"]["margin_mm"] == 3.0
    assert (out / "plan.mrk.json").exists() and (out / "plan_segmentation.nii.gz").exists()
    assert "Ablation plan" in (out / "plan_report.html").read_text()
    bad = CliRunner().invoke(app, ["plan", str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz"),
                                   "--names", str(tmp_path / "names.json"), "--tumor", "tumour_9", "-o", str(out)])
    assert bad.exit_code != 0


def test_one_device_per_tumour_and_the_others_are_reported():
    """Two microwave systems in the catalogue: a tumour's probes all come from one of them."""
    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=30.0),), spacing_mm=(2.0, 2.0, 2.0))
    plan = plan_ablation(p.labels, [t.name for t in p.tumours], modality="microwave", n_directions=2000)
    t = plan.targets[0]
    # 3 cm + 5 mm margin with at most 3 antennas: full coverage, or near-full and the plan says which limit
    assert t.n_probes >= 2 and t.target_coverage_pct >= 95.0
    assert t.full_coverage or any("configuration limit" in w for w in plan.warnings)
    assert len({pr.device for pr in plan.probes}) == 1
    assert any("one device per tumour" in n and "also tried" in n for n in t.notes)
    only = plan_ablation(p.labels, [t.name for t in p.tumours], modality="microwave", devices=["neuwave_pr"],
                         n_directions=2000)
    assert {pr.device for pr in only.probes} == {"neuwave_pr"}
    assert all("[manufacturer]" in pr.setting for pr in only.probes)
    clinical = plan_ablation(p.labels, [t.name for t in p.tumours], modality="microwave", devices=["neuwave_pr"],
                             n_directions=2000, evidence="clinical")
    # the clinical zone (36 x 27 mm) is smaller than the manufacturer's (47 x 35 mm): more zones or,
    # at the configuration limit, less coverage; each plan shows what the other table would give
    c, m = clinical.targets[0], only.targets[0]
    assert (c.n_zones, -c.target_coverage_pct) > (m.n_zones, -m.target_coverage_pct)
    assert m.evidence_used == "manufacturer" and c.evidence_used == "clinical"
    other = {e.evidence: e for e in m.evidence_comparison}["clinical"]
    assert other.target_coverage_pct is not None and other.target_coverage_pct < m.target_coverage_pct
    assert {e.evidence for e in c.evidence_comparison} == {"manufacturer"}
    assert max(c.n_probes, m.n_probes) <= 3  # microwave: at most 3 antennas per tumour (configurations.yaml)
    assert all("[clinical]" in pr.setting for pr in clinical.probes)
    assert clinical.provenance.parameters["evidence"] == "clinical"
