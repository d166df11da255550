"""`--plan` with an ablation plan from `openir plan`: targets and organs at risk on the MR grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, make_affine
from openir.io import write_nifti
from openir.monitor import MonitorPlan
from openir.monitor.plan_input import (
    find_case_labels,
    load_plan_input,
    read_matrix,
    structure_kind,
    structures_from_ablation_plan,
)
from openir.plan.models import (
    ModalityRecommendation,
    Plan,
    PlannedProbe,
    Provenance,
    TargetPlan,
    TargetSpec,
    TumourFeatures,
)

CENTRE = np.array([0.0, 0.0, 0.0])
R_TUMOUR, MARGIN = 6.0, 4.0


def make_plan(tumour: str = "tumour_1", tip=(0.0, 0.0, 0.0), near=None, organ: str | None = "liver",
              clip: bool = False, margin: float = MARGIN) -> Plan:
    feats = TumourFeatures(label=tumour, organ="liver", organ_label=organ, volume_ml=1.0, equivalent_diameter_mm=12.0,
                           longest_axis_mm=12.0, near_labels=near or {}, heat_sink_vessels={})
    rec = ModalityRecommendation(tumour=tumour, features=feats, ranking=[], chosen="microwave")
    spec = TargetSpec(tumour=tumour, organ_label=organ, margin_mm=margin, margin_source="test", clip_to_organ=clip,
                      uncertainty_mm=0.0, uncertainty_source="test", tumour_ml=1.0, target_ml=0.0,
                      uncertainty_band_ml=0.0)
    tp = TargetPlan(tumour=tumour, recommendation=rec, modality="microwave", target=spec, n_probes=1, n_tracks=1,
                    tumour_coverage_pct=100, target_coverage_pct=100, min_margin_mm=5, ablated_healthy_ml=1,
                    ablated_outside_target_ml=0, full_coverage=True)
    probe = PlannedProbe(order=1, group=1, tumour=tumour, device="emprint", modality="microwave", setting="test",
                         entry_lps=(tip[0], tip[1] - 80.0, tip[2]), tip_lps=tuple(tip), direction_lps=(0, 1, 0),
                         zone_centre_lps=tuple(tip), zone_index=0, track=1, path_length_mm=80.0, tip_offset_mm=0.0,
                         tip_offset_source="test")
    return Plan(targets=[tp], probes=[probe], provenance=Provenance(catalogue_version="t", rules_version="t",
                                                                     margins_version="t", policy_version="t"))


@pytest.fixture(scope="module")
def case_labels() -> LabelMap:
    """Planning 'CT' label map, 1 mm voxels, 41^3 around the origin: liver block, tumour sphere
    at the origin, portal vein tube along k at x = +12 mm, bowel at z = +17 mm (outside thin MR slabs)."""
    n = 41
    grid = Grid((n, n, n), make_affine((1.0, 1.0, 1.0), (-20.0, -20.0, -20.0)))
    k, j, i = np.meshgrid(*(np.arange(n) - 20.0 for _ in range(3)), indexing="ij")
    lab = np.zeros((n, n, n), np.uint8)
    lab[2:-2, 2:-2, 2:-2] = 1  # liver
    lab[np.sqrt(i**2 + j**2 + k**2) <= R_TUMOUR] = 2
    lab[((i - 12) ** 2 + j**2 <= 4) & (lab == 1)] = 3
    lab[(k >= 16) & (lab == 1) & (i < -10)] = 4
    lab[:, :2, :] = 5  # fat layer at the posterior edge (y < -18)
    lab[(i < -15) & (k < 5) & (k > 0)] = 6
    names = {1: "liver", 2: "tumour_1", 3: "portal_vein", 4: "bowel", 5: "fat", 6: "mystery_organ"}
    return LabelMap(lab, grid.affine.copy(), {}, names)


def mr_grid(origin_z: float = -4.0, shift=(0.0, 0.0)) -> Grid:
    """Axial MR slab: 2 mm in-plane, 3 slices of 4 mm."""
    return Grid((3, 30, 30), make_affine((2.0, 2.0, 4.0), (-29.0 + shift[0], -29.0 + shift[1], origin_z)))


def _centroid_lps(mask: np.ndarray, grid: Grid) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return grid.index_to_world(np.stack([i, j, k], 1).astype(float)).mean(0)


def _file(plan: Plan) -> Plan:
    return Plan.model_validate(plan.model_dump(mode="json"))


def test_target_and_organs_on_the_mr_grid(case_labels):
    near = {"liver": 0.5, "portal_vein": 3.0, "bowel": 9.0, "fat": 8.0, "mystery_organ": 7.0}
    g = mr_grid()
    ps = structures_from_ablation_plan(_file(make_plan(near=near)), case_labels, g)
    st = ps.structures
    # target: tumour + margin, a sphere of radius 10 mm centred at the origin, on the slices z = -4, 0, 4
    c = _centroid_lps(st.target, g)
    assert np.allclose(c, CENTRE, atol=0.6)
    k, j, i = np.nonzero(st.target)
    pts = g.index_to_world(np.stack([i, j, k], 1).astype(float))
    r = np.linalg.norm(pts, axis=1)
    assert r.max() <= R_TUMOUR + MARGIN + 1.5 and set(k.tolist()) == {0, 1, 2}
    on_mid = st.target[1]  # z = 0: a disc of radius 10 mm -> about pi*100/4 voxels of 2x2 mm
    assert abs(int(on_mid.sum()) - np.pi * 100 / 4) < 12
    organs = {o.name: o for o in st.organs}
    assert set(organs) == {"portal_vein", "mystery_organ"}  # liver is the host, bowel is outside the slab
    assert organs["portal_vein"].max_c == 50.0
    assert np.allclose(_centroid_lps(organs["portal_vein"].mask, g)[:2], [12.0, 0.0], atol=1.0)
    assert any("bowel" in n and "outside the MR slices" in n for n in ps.notes)
    assert any("mystery_organ" in n and "default" in n for n in ps.notes)
    info = {s.name: s for s in ps.info}
    assert info["mystery_organ"].kind == "critical_structure"
    assert st.fat is not None and st.fat.any() and info["fat"].role == "fat"
    assert ps.points == {"P1 tip": (0.0, 0.0, 0.0)}


def test_registration_transform_moves_the_structures(case_labels):
    """mr_from_plan translates plan LPS by (+10, -6, +4) mm: the target centre follows, voxel-exact."""
    m = np.eye(4)
    m[:3, 3] = (10.0, -6.0, 4.0)
    g = mr_grid(origin_z=0.0)  # slices at z = 0, 4, 8 -> the moved centre (z = 4) is the middle slice
    ps = structures_from_ablation_plan(_file(make_plan(near={"portal_vein": 3.0})), case_labels, g, mr_from_plan=m)
    c = _centroid_lps(ps.structures.target, g)
    assert np.allclose(c, [10.0, -6.0, 4.0], atol=0.6)
    pv = next(o for o in ps.structures.organs if o.name == "portal_vein")
    assert np.allclose(_centroid_lps(pv.mask, g)[:2], [22.0, -6.0], atol=1.0)
    assert ps.points["P1 tip"] == (10.0, -6.0, 4.0)


def test_clip_to_organ_and_plan_volume_check(case_labels):
    """Clipped to the liver, the target leaves out the portal vein; the rebuilt volume is reported."""
    ps = structures_from_ablation_plan(_file(make_plan(near={"portal_vein": 3.0}, clip=True)), case_labels, mr_grid())
    pv = next(o for o in ps.structures.organs if o.name == "portal_vein")
    assert not (ps.structures.target & pv.mask).any()
    assert "the plan's target" in ps.info[0].note


@pytest.mark.parametrize("name, role, kind", [
    ("portal_vein", "organ_at_risk", "vessel"), ("hepatic_veins", "organ_at_risk", "vessel"),
    ("IVC", "organ_at_risk", "vessel"), ("aorta", "organ_at_risk", "vessel"),
    ("Hepatic Artery", "organ_at_risk", "vessel"), ("stomach", "organ_at_risk", "bowel"),
    ("small_bowel", "organ_at_risk", "bowel"), ("gallbladder", "organ_at_risk", "gallbladder"),
    ("common_bile_duct", "organ_at_risk", "bile_duct"), ("Hepatic Duct Left", "organ_at_risk", "bile_duct"),
    ("skin", "organ_at_risk", "skin"),
    ("sciatic_nerve", "organ_at_risk", "nerve"), ("spinal_canal", "organ_at_risk", "nerve"),
    ("fat", "fat", None), ("kidney_left", "organ_at_risk", "critical_structure"),
])
def test_name_to_limit_kind(name, role, kind):
    r, k, note = structure_kind(name)
    assert (r, k) == (role, kind)
    assert ("default" in note) == (name == "kidney_left")


def test_errors(case_labels, tmp_path):
    empty = make_plan().model_copy(update={"targets": []})
    p = tmp_path / "plan.json"
    p.write_text(empty.model_dump_json())
    with pytest.raises(InputError, match="no targets"):
        load_plan_input(p)
    p.write_text(make_plan().model_dump_json())
    pf = load_plan_input(p)
    assert isinstance(pf, Plan)
    with pytest.raises(InputError, match="--labels"):
        find_case_labels(pf, p)
    far = Grid((3, 10, 10), make_affine((2.0, 2.0, 4.0), (-9.0, -9.0, 200.0)))
    with pytest.raises(InputError, match="tumour_1"):
        structures_from_ablation_plan(pf, case_labels, far)
    with pytest.raises(InputError, match="not in the plan"):
        structures_from_ablation_plan(pf, case_labels, mr_grid(), tumours=["tumour_9"])
    (tmp_path / "m.txt").write_text("1 0 0 5\n0 1 0 0\n0 0 1 0\n")
    with pytest.raises(InputError, match="4x4"):
        read_matrix(tmp_path / "m.txt")
    (tmp_path / "m.txt").write_text("# plan -> MR\n1 0 0 5\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    assert read_matrix(tmp_path / "m.txt")[0, 3] == 5.0
    (tmp_path / "m.json").write_text(json.dumps({"mr_from_plan": np.eye(4).tolist()}))
    assert np.allclose(read_matrix(tmp_path / "m.json"), np.eye(4))


def test_monitoring_plan_format_still_detected(tmp_path):
    p = tmp_path / "mp.json"
    p.write_text(MonitorPlan(labels="x.nii.gz", structures=[]).model_dump_json())
    assert isinstance(load_plan_input(p), MonitorPlan)


# ---- end to end: `openir thermo replay/watch --plan plan.json` on a synthetic DICOM series ------------

@pytest.fixture(scope="module")
def planned_series(tmp_path_factory):
    from openir.core.resample import resample
    from openir.monitor.synthetic_series import (
        HeatingSeriesSpec,
        make_heating_series,
        write_heating_dicom,
    )

    s = make_heating_series(HeatingSeriesSpec(shape=(3, 40, 40), heat_s=30, cool_s=4, power_w=4.0,
                                              breathing_amplitude_mm=0.0, n_baselines=3, seed=3))
    root = tmp_path_factory.mktemp("planned")
    write_heating_dicom(s, root / "series")
    # the planning label map: the series anatomy on a finer 'CT' grid, with planning names
    ct = Grid((9, 80, 80), make_affine((1.0, 1.0, 1.0), (-39.5, -39.5, -4.0)))
    lm = resample(s.labels, ct)
    lm = LabelMap(lm.array, lm.affine, {}, {1: "liver", 2: "tumour_1", 3: "fat", 4: "bowel"})
    (root / "case").mkdir()
    write_nifti(lm, root / "case" / "labels.nii.gz")
    (root / "case" / "labels.json").write_text(json.dumps({"labels": {str(k): v for k, v in lm.labels.items()}}))
    plan = make_plan(tip=s.tip_lps, near={"liver": 0.0, "bowel": 6.0, "fat": 20.0}, margin=2.0)
    plan.case.labels = "case/labels.nii.gz"
    (root / "out").mkdir()
    (root / "out" / "plan.json").write_text(plan.model_dump_json(indent=1))
    return s, root


def test_replay_with_an_ablation_plan(planned_series, tmp_path):
    s, root = planned_series
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["thermo", "replay", str(root / "series"), "--plan", str(root / "out" / "plan.json"),
                                   "--labels", str(root / "case" / "labels.nii.gz"), "--baselines", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    st = json.loads((out / "structures.json").read_text())
    roles = {x["name"]: (x["role"], x["kind"], x["max_c"]) for x in st["structures"]}
    assert roles["bowel"] == ("organ_at_risk", "bowel", 45.0)
    assert roles["fat"][0] == "fat" and roles["tumour_1 + 2 mm"][0] == "target"
    doc = json.loads((out / "summary.json").read_text())
    assert 0.0 < doc["frames"][-1]["target_coverage"] < 1.0  # 30 s of 4 W: a partial ablation
    assert "bowel" in doc["frames"][-1]["structure_max_c"]
    tip = next(c for c in doc["curves"] if c["name"] == "P1 tip")
    assert max(tip["temperature_c"]) > 45.0
    assert "time to stop" in res.output or "not fully covered" in res.output


def test_watch_with_an_ablation_plan_finds_case_labels_and_transform(planned_series, tmp_path):
    """case.labels is resolved next to the plan's folder; --mr-from-plan moves everything."""
    _, root = planned_series
    (tmp_path / "m.json").write_text(json.dumps([[1, 0, 0, 200], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    # the plan refers to case/labels.nii.gz relative to where `openir plan` ran: found via the plan's parent
    plan_copy = root / "plan_here.json"
    plan_copy.write_text((root / "out" / "plan.json").read_text())
    res = CliRunner().invoke(app, ["thermo", "watch", str(root / "series"), "--plan", str(plan_copy),
                                   "--mr-from-plan", str(tmp_path / "m.json"), "--baselines", "3",
                                   "--interval", "0.01", "--idle-timeout", "0.2", "-o", str(tmp_path / "w")])
    assert res.exit_code != 0
    assert isinstance(res.exception, InputError) and "no planned target lies in the MR slices" in str(res.exception)
    res = CliRunner().invoke(app, ["thermo", "watch", str(root / "series"), "--plan", str(plan_copy), "--baselines",
                                   "3", "--interval", "0.01", "--idle-timeout", "0.2", "-o", str(tmp_path / "w2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "w2" / "structures.json").exists() and (tmp_path / "w2" / "live.html").exists()


# ---- monitor and plan agree on the target (issue 23): the planner's own targets_out, voxel for voxel ----

@pytest.fixture(scope="module")
def planned_case():
    """A liver tumour under the skin, next to the gallbladder (must-spare) and unlabelled tissue:
    the margin is cut by the body outline (from the CT), by the gallbladder, and runs into label-0
    tissue that only the CT body keeps."""
    from openir.plan import plan_ablation
    from openir.plan.models import CaseRef

    g = Grid((24, 34, 40), make_affine((2.0, 2.0, 2.0), (-40.0, -34.0, -24.0)))
    p = g.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = (x / 36) ** 2 + (y / 30) ** 2 <= 1
    liver = body & (x > -8) & ((x / 34) ** 2 + (y / 28) ** 2 + (z / 30) ** 2 <= 1)
    tumour = (x - 22) ** 2 + (y + 12) ** 2 + z**2 <= 7.0**2
    gall = liver & ((x - 16) ** 2 + (y + 2) ** 2 + z**2 <= 5.0**2) & ~tumour
    lm = LabelMap.from_masks({"liver": liver & ~gall, "gallbladder": gall, "tumour_1": tumour & body}, g)
    ct = np.where(body, 40.0, -1000.0)
    from openir.plan import body_from_ct

    bm = body_from_ct(ct, lm.array)
    targets: dict[str, np.ndarray] = {}
    plan = plan_ablation(lm, ["tumour_1"], modality="microwave", margin_mm=8.0, clip_to_organ=False, body_mask=bm,
                         n_directions=100, n_paths=2, case=CaseRef(ct="ct.nii.gz", labels="labels.nii.gz"),
                         targets_out=targets)
    return lm, ct, bm, plan, targets["tumour_1"]


def test_monitor_target_is_the_plans_target(planned_case):
    from openir.plan import body_from_ct

    lm, ct, _, plan, planned = planned_case
    spec = plan.targets[0].target
    # the case is built so that each cut matters: outside the body, the gallbladder, unlabelled tissue
    assert spec.excluded_ml.get("outside the body", 0) > 0 and any("gallbladder" in k for k in spec.excluded_ml)
    assert (planned & (lm.array == 0)).any()
    doc = Plan.model_validate_json(plan.model_dump_json())  # what monitoring reads: the JSON the CLI writes
    ps = structures_from_ablation_plan(doc, lm, lm.grid, body_mask=body_from_ct(ct, lm.array))
    assert ps.structures.target is not None
    assert np.array_equal(ps.structures.target, planned)  # same voxels
    assert not any("late" in n for n in ps.notes)


def test_without_the_ct_the_target_is_never_smaller(planned_case):
    lm, _, _, plan, planned = planned_case
    ps = structures_from_ablation_plan(plan, lm, lm.grid)
    t = ps.structures.target
    assert not (planned & ~t).any() and (t & ~planned).any()  # a superset: coverage reported late, never early
    assert any("CT was not found" in n for n in ps.notes)
