"""Targets and organs at risk for monitoring, from the ablation plan that `openir plan` writes.

The plan is read as the planner's own `openir.plan.Plan` model, and each target is rebuilt with the
planner's own public function (`openir.plan.target_mask`): monitoring and planning agree on the
target voxel for voxel, with no copy of either here. The plan holds no masks, so the targets and
organs are rebuilt from the case label map it was planned on (the planning CT grid and frame),
then moved into the MR frame by ``mr_from_plan`` (4x4, LPS -> LPS; identity when CT and MR share the
DICOM patient frame of one session) and resampled nearest-neighbour onto the MR grid.

- target: each planned tumour + the plan's margin, built on the planning grid before resampling so
  the margin keeps the CT resolution. The body mask the planner used comes from the planning CT
  (`openir.plan.body_from_ct`); without the CT the target can only be exact when the plan left no
  margin voxel out as "outside the body", else it is built over a larger body (never smaller:
  coverage is then reported late, not early) and a note says so;
- organs at risk: the structures the plan lists near the tumour (within its near distance), heat
  sinks, and structures its zones touch; each gets the temperature limit of its class from
  ``data/thermometry.yaml`` (``structure_kinds``: name patterns -> limit class, unknown names ->
  ``default_kind`` with a note); fat-like labels are masked (no PRF shift) instead;
- reference (drift fit): the host organ farther than 20 mm from every target, when big enough;
- points: each probe tip, so the live view shows its temperature curve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError
from scipy import ndimage

from openir.core.errors import InputError
from openir.core.labels import LabelMap, normalise_label_name
from openir.core.volume import Grid
from openir.plan import Plan, TargetPlan, is_target_label, matches, target_mask

from .config import ThermometryTable, load_thermometry
from .models import MonitorPlan, StructureInfo
from .structures import MonitorStructures, OrganLimit, labels_on_grid

Vec3 = tuple[float, float, float]
REFERENCE_DISTANCE_MM = 20.0  # host tissue this far from the target is taken as unheated (drift fit)
OUTSIDE_BODY = "outside the body"  # the planner's excluded_ml reason (plan.target.build_target)


def is_ablation_plan(doc: object) -> bool:
    """True for the JSON of an ablation plan (`openir plan`), False for a monitoring plan."""
    return isinstance(doc, dict) and "targets" in doc and ("provenance" in doc or "plan_version" in doc)


def load_plan_input(path: str | Path) -> MonitorPlan | Plan:
    """Read ``--plan``: an ablation plan from `openir plan`, or a monitoring plan (labels + roles)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read plan: {exc.strerror}", source=p) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno})", source=p) from None
    model: type[BaseModel] = Plan if is_ablation_plan(doc) else MonitorPlan
    try:
        out = model.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], source=p, field=".".join(str(x) for x in err["loc"])) from None
    if isinstance(out, Plan) and not out.targets:
        raise InputError("the ablation plan has no targets (no tumour was planned): nothing to monitor",
                         source=p, field="targets")
    return out  # type: ignore[return-value]


def read_matrix(path: str | Path) -> np.ndarray:
    """A 4x4 LPS->LPS matrix (plan/CT frame -> MR frame) from JSON (a 4x4 list, or an object with
    ``mr_from_plan``/``matrix``) or whitespace-separated text (4 rows of 4 numbers)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the transform: {exc.strerror}", source=p) from None
    try:
        try:
            doc = json.loads(text)
            if isinstance(doc, dict):
                doc = doc.get("mr_from_plan", doc.get("matrix"))
            m = np.asarray(doc, float)
        except json.JSONDecodeError:
            m = np.asarray([[float(v) for v in ln.replace(",", " ").split()] for ln in text.splitlines()
                            if ln.strip() and not ln.lstrip().startswith("#")], float)
    except (TypeError, ValueError):
        raise InputError("expected a 4x4 matrix of numbers", source=p, field="mr_from_plan") from None
    if m.shape != (4, 4) or not np.all(np.isfinite(m)) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise InputError(f"expected a 4x4 affine matrix (last row 0 0 0 1), got shape {m.shape}", source=p,
                         field="mr_from_plan")
    return m


# ---- names -> limit kinds --------------------------------------------------------------------------

def structure_kind(name: str, table: ThermometryTable | None = None) -> tuple[str, str | None, str]:
    """(role, limit kind, note) for a label the plan names: role ``organ_at_risk`` or ``fat``."""
    sk = (table or load_thermometry()).structure_kinds
    if matches(name, sk.prf_invalid):
        return "fat", None, "fat: no PRF temperature shift, masked"
    for r in sk.rules:
        if matches(name, r.patterns):
            return "organ_at_risk", r.kind, f"{r.kind} (by name)"
    return "organ_at_risk", sk.default_kind, f"no limit kind for {name!r}: default {sk.default_kind!r}"


def planned_structures(plan: Plan, tumours: list[str] | None = None) -> list[str]:
    """Names the plan lists near the selected tumours (near, heat sinks, touched, must-spare)."""
    names: dict[str, None] = {}
    for t in _selected(plan, tumours):
        f = t.recommendation.features
        for d in (f.near_labels, f.heat_sink_vessels, t.structures_touched_ml, t.must_spare_touched_ml):
            names.update(dict.fromkeys(d))
    return list(names)


def _selected(plan: Plan, tumours: list[str] | None) -> list[TargetPlan]:
    if not tumours:
        return list(plan.targets)
    known = {normalise_label_name(t.tumour): t for t in plan.targets}
    out = []
    for name in tumours:
        if normalise_label_name(name) not in known:
            raise InputError(f"tumour {name!r} is not in the plan; planned: {', '.join(known) or '(none)'}",
                             field="tumour")
        out.append(known[normalise_label_name(name)])
    return out


# ---- the case label map ----------------------------------------------------------------------------

def find_case_labels(plan: Plan, plan_path: str | Path | None, labels: str | Path | None = None) -> Path:
    """The label map the plan was made on: ``labels`` if given, else ``case.labels`` (absolute as
    `openir plan` writes it; a relative one is resolved from the plan's folder, never the working
    directory), else ``labels.nii.gz``/``labels.nrrd`` beside the plan."""
    if labels is not None:
        p = Path(labels)
        if not p.exists():
            raise InputError("label map not found", source=p, field="--labels")
        return p
    base = Path(plan_path).parent if plan_path is not None else Path(".")
    tried: list[Path] = []
    if plan.case.labels:
        c = Path(plan.case.labels)
        tried += [c] if c.is_absolute() else [base / c, base / c.name]  # relative: from the plan's folder
    tried += [base / "labels.nii.gz", base / "labels.nrrd"]
    for c in tried:
        if c.exists():
            return c
    raise InputError("the plan's label map was not found (tried " + ", ".join(str(t) for t in dict.fromkeys(tried))
                     + "): give it with --labels", source=plan_path, field="case.labels")


def find_case_ct(plan: Plan, plan_path: str | Path | None, ct: str | Path | None = None) -> Path | None:
    """The planning CT: ``ct`` if given (must exist), else ``case.ct`` as written or beside the plan;
    None when the plan names none or it is not found (the target then follows `plan_target_masks`)."""
    if ct is not None:
        p = Path(ct)
        if not p.exists():
            raise InputError("planning CT not found", source=p, field="--ct")
        return p
    if not plan.case.ct:
        return None
    c = Path(plan.case.ct)
    base = Path(plan_path).parent if plan_path is not None else Path(".")
    for cand in ([c] if c.is_absolute() else [c, base / c, base / c.name]):
        if cand.exists():
            return cand
    return None


# ---- masks -----------------------------------------------------------------------------------------

@dataclass
class PlanStructures:
    """Masks on the MR grid plus what each is, where its limit comes from, and notes."""

    structures: MonitorStructures
    info: list[StructureInfo] = field(default_factory=list)
    points: dict[str, Vec3] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _transform(m: np.ndarray | None, p: Vec3) -> Vec3:
    if m is None:
        return tuple(float(v) for v in p)  # type: ignore[return-value]
    q = m @ np.array([*p, 1.0])
    return (float(q[0]), float(q[1]), float(q[2]))


def plan_target_masks(plan: Plan, labels: LabelMap, *, body_mask: np.ndarray | None = None,
                      ct_known: bool = False, tumours: list[str] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each selected target of ``plan`` on the planning grid, built by the planner's `target_mask`;
    and notes. ``body_mask``: the planner's body (`openir.plan.body_from_ct` of the planning CT).
    Without it, a plan that names a CT (``ct_known``, as `openir plan` writes) and left margin voxels
    out as outside the body gets a target over every voxel instead (larger, never smaller)."""
    out: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for tp in _selected(plan, tumours):
        body = body_mask
        if body is None and ct_known:
            body = np.ones(labels.shape, bool)  # exact when the plan left nothing out as outside the body
            if tp.target.excluded_ml.get(OUTSIDE_BODY):
                notes.append(f"target {tp.tumour}: the planning CT was not found, so the margin the plan left "
                             f"out as outside the body ({tp.target.excluded_ml[OUTSIDE_BODY]:.2f} mL) is kept: "
                             "coverage is reported late, never early; give the CT (--ct) for the plan's exact target")
        out[tp.tumour] = target_mask(labels, tp.target, body_mask=body)
    return out, notes


def _crop(mask: np.ndarray, grid: Grid) -> LabelMap:
    """``mask`` as a label map on its bounding box (resampling a crop is much cheaper)."""
    idx = np.nonzero(mask)
    lo = [int(a.min()) for a in idx]
    hi = [int(a.max()) + 1 for a in idx]
    sub = grid.subgrid(lo, [h - lo_ for h, lo_ in zip(hi, lo, strict=True)])
    arr = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.uint8)
    return LabelMap(arr, sub.affine.copy(), {}, {1: "target"})


def structures_from_ablation_plan(
    plan: Plan,
    labels: LabelMap,
    grid: Grid,
    *,
    mr_from_plan: np.ndarray | None = None,
    tumours: list[str] | None = None,
    table: ThermometryTable | None = None,
    body_mask: np.ndarray | None = None,
) -> PlanStructures:
    """Targets (tumour + margin), organs at risk with limits, fat, reference and probe tips on the
    MR ``grid``, from ``plan`` and the case ``labels`` it was planned on (planning CT frame).

    ``body_mask`` (planning grid): the body the planner was given (`openir.plan.body_from_ct` of
    the planning CT); see `plan_target_masks` for what happens without it."""
    t = table or load_thermometry()
    m = None if mr_from_plan is None else np.asarray(mr_from_plan, float)
    sel = _selected(plan, tumours)
    notes: list[str] = []
    for tp in sel:  # every name the plan uses must be in this label map (UnknownLabelError lists them)
        labels.value_of(tp.target.tumour)
        if tp.target.organ_label:
            labels.value_of(tp.target.organ_label)
    hosts = {normalise_label_name(tp.target.organ_label) for tp in sel if tp.target.organ_label}
    oar_names, fat_names, info = [], [], []
    kinds: dict[str, tuple[str | None, str]] = {}
    for name in planned_structures(plan, tumours):
        if is_target_label(name) or normalise_label_name(name) in hosts:
            continue
        if not labels.has(name):
            notes.append(f"{name}: named by the plan but not in the label map, not monitored")
            continue
        role, kind, note = structure_kind(name, t)
        kinds[name] = (kind, note)
        (fat_names if role == "fat" else oar_names).append(name)
    targets, tnotes = plan_target_masks(plan, labels, body_mask=body_mask, ct_known=bool(plan.case.ct),
                                        tumours=tumours)
    notes += tnotes
    on_mr = labels_on_grid(labels, grid, m)
    out = MonitorStructures()
    vv = grid.voxel_volume_mm3 / 1000.0
    missing = []
    for tp in sel:
        full = targets[tp.tumour]
        ml = float(full.sum() * labels.grid.voxel_volume_mm3 / 1000.0)
        tmask = labels_on_grid(_crop(full, labels.grid), grid, m).array > 0 if full.any() else np.zeros(grid.shape, bool)
        n = int(tmask.sum())
        note = f"the plan's target, {ml:.2f} mL on the planning grid"
        if tp.target.target_ml:
            note += f" (plan: {tp.target.target_ml:.2f} mL)"
            if abs(ml - tp.target.target_ml) > 0.1 * tp.target.target_ml:
                notes.append(f"target {tp.tumour}: {ml:.2f} mL here differs from the plan's "
                             f"{tp.target.target_ml:.2f} mL by more than 10 %")
        info.append(StructureInfo(name=f"{tp.tumour} + {tp.target.margin_mm:g} mm", role="target",
                                  voxels=n, volume_ml=n * vv, note=note))
        if n == 0:
            missing.append(tp.tumour)
            continue
        out.target = tmask if out.target is None else out.target | tmask
    if out.target is None:
        raise InputError(f"no planned target lies in the MR slices ({', '.join(missing)}; MR grid "
                         f"{grid.describe()}): check the slice positions or --mr-from-plan", field="targets")
    if missing:
        notes.append(f"outside the MR slices, not monitored: {', '.join(missing)}")
    outside = []
    for name in oar_names:
        mask = on_mr.array == on_mr.value_of(name)
        kind, note = kinds[name]
        lim = t.limit(kind)  # type: ignore[arg-type]
        if not mask.any():
            outside.append(name)
            continue
        out.organs.append(OrganLimit(name, mask, lim.max_c, lim.source))
        if lim.project_default:
            note += "; limit is a project default (unsourced)"
        info.append(StructureInfo(name=name, role="organ_at_risk", kind=kind, max_c=lim.max_c, source=lim.source,
                                  voxels=int(mask.sum()), volume_ml=float(mask.sum()) * vv, note=note))
        if "no limit kind" in note:
            notes.append(f"{name}: {note}")
    if outside:
        notes.append(f"organs at risk outside the MR slices: {', '.join(outside)}")
    for name in fat_names:
        mask = on_mr.array == on_mr.value_of(name)
        if mask.any():
            out.fat = mask if out.fat is None else out.fat | mask
            info.append(StructureInfo(name=name, role="fat", voxels=int(mask.sum()), volume_ml=float(mask.sum()) * vv,
                                      note=kinds[name][1]))
    if hosts:
        host = np.isin(on_mr.array, [on_mr.value_of(h) for h in hosts])
        sp = grid.spacing
        far = ndimage.distance_transform_edt(~out.target, sampling=(sp[2], sp[1], sp[0])) > REFERENCE_DISTANCE_MM
        ref = host & far
        if int(ref.sum()) >= 200:
            out.reference = ref
            info.append(StructureInfo(name=f"{'/'.join(sorted(hosts))} > {REFERENCE_DISTANCE_MM:g} mm from target",
                                      role="reference", voxels=int(ref.sum()), volume_ml=float(ref.sum()) * vv,
                                      note="unheated tissue for the drift fit"))
    return PlanStructures(out, info, plan_points(plan, mr_from_plan=m, tumours=tumours), notes)


def plan_points(plan: Plan, *, mr_from_plan: np.ndarray | None = None,
                tumours: list[str] | None = None) -> dict[str, Vec3]:
    """Probe tips of the selected tumours in the MR frame, named ``P<order> tip``."""
    m = None if mr_from_plan is None else np.asarray(mr_from_plan, float)
    names = {normalise_label_name(tp.tumour) for tp in _selected(plan, tumours)}
    return {f"P{p.order} tip": _transform(m, p.tip_lps) for p in plan.probes if normalise_label_name(p.tumour) in names}
