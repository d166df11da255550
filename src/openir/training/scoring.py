"""`score_plan`: a trainee's ablation plan scored against the ground truth (tumour + 5 mm margin,
must-spare structures, needle paths) and against the expert plan of the same teaching case.

Every measurement reuses the planning package, so a trainee is judged by the same rules the planner
plans with: the target is `build_target` (margin from the rubric, the expert's capsule clipping),
coverage / margin / structures touched are `evaluate_zone`, needle paths are traced with
`prepare_case` + `trace_one` under the planner's path policy. Zones follow the probes: a zone keeps
the size of its setting and moves with its probe's tip and direction, so editing a probe's pose in
the JSON moves its zone; a probe without a zone gets the catalogue's `predict_zone`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openir.core import LabelMap
from openir.core.enums import ARRAY_MODALITIES
from openir.core.errors import InputError
from openir.plan import (
    Ellipsoid,
    Plan,
    PlannedProbe,
    Probe,
    evaluate_zone,
    load_policy,
    predict_zone,
    prepare_case,
    rasterise_zones,
    target_from_label,
    trace_one,
)
from openir.plan.target import PlanningTarget, TargetOverrides, build_target
from openir.plan.trajectories import REASONS
from openir.plan.zones import ellipsoid_from
from openir.seeds import SeedPlan

from .models import CriterionScore, PathCheck, PlanScore
from .rubric import Rubric, load_rubric
from .seed_scoring import score_seed_plan

_FEASIBLE = 0  # openir.plan._march.FEASIBLE


@dataclass
class Insertion:
    """One needle insertion: the probes on one straight line (pull-backs share it)."""

    entry: np.ndarray
    tip: np.ndarray  # deepest tip on the line
    direction: np.ndarray
    probes: list[int]


def plan_zones(plan: Plan, tumour: str | None = None) -> list[Ellipsoid]:
    """The zones of ``plan`` (one tumour's, or all) placed by their probes' current poses.

    A thermal single-applicator zone keeps its size (the setting) and sits ``tip_offset_mm`` behind
    its probe's tip along the shaft; an array zone (cryo, IRE) is taken as planned; a probe whose
    ``zone_index`` names no zone gets the device catalogue's predicted zone.
    """
    out: list[Ellipsoid] = []
    seen: set[int] = set()
    for pr in plan.probes:
        if tumour is not None and pr.tumour != tumour:
            continue
        has_zone = 0 <= pr.zone_index < len(plan.zones)
        if has_zone and pr.zone_index in seen:
            continue
        if has_zone:
            seen.add(pr.zone_index)
            z = plan.zones[pr.zone_index]
            if pr.modality in ARRAY_MODALITIES:
                out.append(z)
                continue
            d = np.asarray(pr.direction_lps, float)
            centre = np.asarray(pr.tip_lps, float) - d * float(pr.tip_offset_mm)
            out.append(ellipsoid_from(centre, d, z.semi_axes_mm, device=z.device, setting=z.setting,
                                      thermal=z.thermal, modality=z.modality, sources=z.sources))
        else:
            out.append(predict_zone(Probe(device=pr.device, power_w=pr.power_w, time_s=pr.time_s,
                                          tip_lps=pr.tip_lps, direction_lps=pr.direction_lps,
                                          isotherm_c=pr.isotherm_c, exposure_mm=pr.exposure_mm,
                                          spacing_mm=pr.spacing_mm, centre_offset_mm=pr.tip_offset_mm)))
    return out


def insertions(probes: Sequence[PlannedProbe], angle_deg: float = 1.0, off_mm: float = 1.0) -> list[Insertion]:
    """Group probes into needle insertions: the same line (parallel within ``angle_deg``, the other
    tip within ``off_mm`` of it) is one insertion with pull-back positions."""
    groups: list[Insertion] = []
    cos_tol = math.cos(math.radians(angle_deg))
    for n, pr in enumerate(probes):
        d = np.asarray(pr.direction_lps, float)
        tip = np.asarray(pr.tip_lps, float)
        for g in groups:
            if float(d @ g.direction) >= cos_tol:
                rel = tip - g.tip
                if float(np.linalg.norm(rel - (rel @ g.direction) * g.direction)) <= off_mm:
                    g.probes.append(n)
                    if float(rel @ g.direction) > 0:  # deeper
                        g.tip = tip
                    break
        else:
            groups.append(Insertion(np.asarray(pr.entry_lps, float), tip, d, [n]))
    return groups


def _pad_mm(zones: Sequence[Ellipsoid], centre: np.ndarray) -> float:
    if not zones:
        return 10.0
    reach = max(float(np.linalg.norm(np.asarray(z.centre_lps) - centre)) + max(z.semi_axes_mm) for z in zones)
    return float(min(reach + 4.0, 150.0))


@dataclass
class _Measured:
    tumour_pct: float
    target_pct: float
    margin_mm: float
    spare: dict[str, float]
    zone: np.ndarray
    n_insertions: int
    paths: list[PathCheck]


def _target(labels: LabelMap, tumour: str, expert: Plan, rubric: Rubric, body: np.ndarray | None,
            pad_mm: float) -> PlanningTarget:
    spec = next((t.target for t in expert.targets if t.tumour == tumour), None)
    organ_label = spec.organ_label if spec else None
    clip = spec.clip_to_organ if spec else None
    return build_target(labels, tumour, organ_label=organ_label,
                        overrides=TargetOverrides(margin_mm=rubric.thresholds.margin_mm.value, clip_to_organ=clip,
                                                  uncertainty_mm=0.0),
                        pad_mm=pad_mm, plan_voxel_mm=0.0, body_mask=body)


def _paths(labels: LabelMap, tumour: str, groups: Sequence[Insertion], expert: Plan,
           body: np.ndarray | None) -> list[PathCheck]:
    params = expert.provenance.parameters
    needle = float(params.get("needle_length_mm", 150.0))  # type: ignore[arg-type]
    keep = params.get("keep_away") or None
    prep = prepare_case(labels, target_from_label(labels, tumour), load_policy(), needle, body_mask=body,
                        keep_away=keep if isinstance(keep, dict) and keep else None)
    out = []
    for g in groups:
        st, b, _length = trace_one(prep, g.tip, -g.direction)
        name = prep.names[b] if 0 <= b < len(prep.names) else ""
        ok = st == _FEASIBLE
        out.append(PathCheck(entry_lps=tuple(map(float, g.entry)), tip_lps=tuple(map(float, g.tip)), feasible=ok,
                             blocker="" if ok else name,
                             reason="" if ok else f"needle path {REASONS.get(st, 'blocked')} {name}".strip()))
    return out


def _measure(labels: LabelMap, tumour: str, plan: Plan, pt: PlanningTarget, expert: Plan,
             body: np.ndarray | None) -> _Measured:
    zones = plan_zones(plan, tumour)
    zone = rasterise_zones(zones, pt.native_grid) if zones else np.zeros(pt.native["tumour"].shape, bool)
    out = evaluate_zone(labels, pt, zone)
    probes = [p for p in plan.probes if p.tumour == tumour]
    groups = insertions(probes)
    return _Measured(out.tumour_pct, out.target_pct, out.margin_mm, out.spare, zone, len(groups),
                     _paths(labels, tumour, groups, expert, body) if groups else [])


def _crit(cid: str, max_points: float, lost: float, **kw) -> CriterionScore:
    lost = round(min(max(lost, 0.0), max_points), 2)
    return CriterionScore(id=cid, points=round(max_points - lost, 2), max_points=max_points, lost=lost, **kw)


def _coverage(cid: str, r, measured: float, expert: float, threshold: float, what_en: str, what_zh: str,
              source: str) -> CriterionScore:
    ref = min(threshold, expert)
    short = max(0.0, ref - measured)
    lost = r.lost_per_pct * short if short > 1e-9 else 0.0
    en = zh = ""
    if lost > 0:
        en = (f"{what_en} covered {measured:.1f} %, {short:.1f} points below the reference {ref:.1f} % "
              f"(expert {expert:.1f} %); {r.lost_per_pct:g} points per percentage point")
        zh = f"{what_zh}覆盖率 {measured:.1f}%, 比参考值 {ref:.1f}% 低 {short:.1f} 个百分点 (专家 {expert:.1f}%)"
    return _crit(cid, r.points, lost, measured=round(measured, 3), reference=round(ref, 3), unit="%",
                 expert=round(expert, 3), explanation_en=en, explanation_zh=zh, source=source)


def score_plan(case, trainee: Plan | SeedPlan, *, tumour: str | None = None,
               procedure_time_min: float | None = None, rubric: Rubric | None = None) -> PlanScore:
    """Score ``trainee`` on teaching ``case`` (a `TeachingCase`: labels, body mask, expert plan).

    A seed-implant plan (`SeedPlan`) goes to `score_seed_plan`; the case's expert plan must be of the
    same kind.

    Each criterion of the rubric gives its points, the measured value, the reference (the clinical
    threshold, or the expert's value where the anatomy kept the expert below it) and, for every
    point lost, an explanation in English and Chinese. A plan equal to the expert's scores full marks.
    """
    if isinstance(trainee, SeedPlan) or isinstance(case.expert, SeedPlan):
        if not (isinstance(trainee, SeedPlan) and isinstance(case.expert, SeedPlan)):
            kind = "seed-implant" if isinstance(case.expert, SeedPlan) else "ablation"
            raise InputError(f"this case's expert plan is a {kind} plan: score a plan of the same kind",
                             field="plan")
        return score_seed_plan(case, trainee, tumour=tumour, rubric=rubric)
    t0 = time.perf_counter()
    r = rubric or load_rubric()
    labels: LabelMap = case.labels
    expert: Plan = case.expert
    tumour = tumour or case.entry.tumour
    labels.value_of(tumour)  # unknown tumour: UnknownLabelError names the labels
    if not any(p.tumour == tumour for p in trainee.probes):
        raise InputError(f"the plan has no probe for tumour {tumour!r}", field="probes")
    body = case.body
    centre = target_from_label(labels, tumour)
    pad = _pad_mm(plan_zones(trainee, tumour) + plan_zones(expert, tumour), centre)
    pt = _target(labels, tumour, expert, r, body, pad)
    me = _measure(labels, tumour, trainee, pt, expert, body)
    ex = _measure(labels, tumour, expert, pt, expert, body)
    c = r.criteria
    th = r.thresholds
    crits = [
        _coverage("target_coverage", c.target_coverage, me.target_pct, ex.target_pct, th.required_coverage_pct.value,
                  f"tumour + {th.margin_mm.value:g} mm margin", f"肿瘤+{th.margin_mm.value:g} mm 边界",
                  th.required_coverage_pct.source),
        _coverage("tumour_coverage", c.tumour_coverage, me.tumour_pct, ex.tumour_pct, 100.0, "tumour", "肿瘤",
                  "complete ablation of the tumour itself (100 %)"),
    ]
    # minimal margin: full points at the reference, none at 0 mm or when the tumour sticks out
    m_ref = min(th.margin_mm.value, ex.margin_mm) if math.isfinite(ex.margin_mm) else th.margin_mm.value
    m = me.margin_mm if math.isfinite(me.margin_mm) else -1.0
    lost = 0.0
    en = zh = ""
    if m < m_ref - 1e-9:
        lost = c.min_margin.points * (1.0 if m <= 0 or m_ref <= 0 else (m_ref - m) / m_ref)
        en = (f"minimal margin {m:.1f} mm, below the reference {m_ref:.1f} mm (required "
              f"{th.margin_mm.value:g} mm, expert {ex.margin_mm:.1f} mm)")
        zh = f"最小消融边界 {m:.1f} mm, 低于参考值 {m_ref:.1f} mm (要求 {th.margin_mm.value:g} mm)"
    crits.append(_crit("min_margin", c.min_margin.points, lost, measured=round(m, 2), reference=round(m_ref, 2),
                       unit="mm", expert=round(ex.margin_mm, 2), explanation_en=en, explanation_zh=zh,
                       source=th.margin_mm.source))
    # must-spare structures inside a zone, beyond what the expert accepted
    over = {k: v for k, v in me.spare.items() if v > ex.spare.get(k, 0.0) + c.must_spare.tolerance_ml}
    en = "; ".join(f"{k}: {v:.2f} mL inside the ablation zone" for k, v in sorted(over.items()))
    zh = "; ".join(f"{k}: {v:.2f} mL 位于消融区内" for k, v in sorted(over.items()))
    crits.append(_crit("must_spare", c.must_spare.points, c.must_spare.lost_per_structure * len(over),
                       measured=round(sum(over.values()), 3), reference=c.must_spare.tolerance_ml, unit="mL",
                       expert=round(sum(ex.spare.values()), 3), explanation_en=en, explanation_zh=zh,
                       source=th.must_spare.source))
    # needle paths: blocked under the planner's policy (vessel, organ at risk, too long...)
    expert_bad = {p.reason for p in ex.paths if not p.feasible}
    bad = [p for p in me.paths if not p.feasible and p.reason not in expert_bad]
    crits.append(_crit("path_risk", c.path_risk.points, c.path_risk.lost_per_path * len(bad),
                       measured=float(len(bad)), reference=0.0, unit="paths",
                       expert=float(sum(not p.feasible for p in ex.paths)),
                       explanation_en="; ".join(f"insertion to {np.round(p.tip_lps, 1).tolist()}: {p.reason}" for p in bad),
                       explanation_zh="; ".join(f"进针路径 (针尖 {np.round(p.tip_lps, 1).tolist()}) 经过或过近: {p.blocker}"
                                                for p in bad),
                       source=th.path_policy.source))
    extra = max(0, me.n_insertions - ex.n_insertions)
    crits.append(_crit("probe_count", c.probe_count.points, c.probe_count.lost_per_extra_probe * extra,
                       measured=float(me.n_insertions), reference=float(ex.n_insertions), unit="insertions",
                       expert=float(ex.n_insertions),
                       explanation_en=(f"{me.n_insertions} needle insertions, {extra} more than the expert's "
                                       f"{ex.n_insertions}") if extra else "",
                       explanation_zh=f"进针 {me.n_insertions} 次, 比专家多 {extra} 次" if extra else "",
                       source="teaching policy: every insertion adds bleeding and seeding risk"))
    notes: list[str] = []
    expert_time = getattr(case.entry, "expert_time_min", None)
    if procedure_time_min is not None and expert_time:
        if not (math.isfinite(procedure_time_min) and procedure_time_min > 0):
            raise InputError(f"procedure time must be a positive number of minutes, got {procedure_time_min}",
                             field="procedure_time_min")
        ratio = procedure_time_min / expert_time
        over_pct = max(0.0, (ratio - c.procedure_time.allowed_ratio) * 100.0)
        crits.append(_crit("procedure_time", c.procedure_time.points, c.procedure_time.lost_per_10pct_over * over_pct / 10,
                           measured=procedure_time_min, reference=expert_time * c.procedure_time.allowed_ratio,
                           unit="min", expert=expert_time,
                           explanation_en=(f"{procedure_time_min:g} min, {ratio:.2f} x the expert's {expert_time:g} min"
                                           if over_pct > 0 else ""),
                           explanation_zh=f"手术时间 {procedure_time_min:g} 分钟, 为专家的 {ratio:.2f} 倍" if over_pct > 0 else "",
                           source="teaching policy"))
    elif procedure_time_min is not None:
        notes.append("procedure time not scored: the case has no expert time")
    total = round(sum(x.points for x in crits), 2)
    max_total = round(sum(x.max_points for x in crits), 2)
    vv = pt.native_grid.voxel_volume_mm3 / 1000.0
    missed = pt.native["target"] & ~me.zone
    inter = float((me.zone & ex.zone).sum())
    dice = 2 * inter / max(float(me.zone.sum() + ex.zone.sum()), 1.0)
    pct = 100.0 * total / max_total if max_total else 0.0
    return PlanScore(entry_id=getattr(case.entry, "entry_id", ""), tumour=tumour, total=total, max_total=max_total,
                     percent=round(pct, 2), passed=pct >= r.pass_pct, criteria=crits, paths=me.paths,
                     n_probes=me.n_insertions, expert_n_probes=ex.n_insertions, zone_dice_vs_expert=round(dice, 4),
                     missed_target_ml=round(float(missed.sum() * vv), 3), rubric_version=r.rubric_version,
                     notes=notes, seconds=round(time.perf_counter() - t0, 3))


def score_masks(case, trainee: Plan, tumour: str | None = None) -> dict[str, np.ndarray | object]:
    """The masks a figure needs (native crop): tumour, target, trainee and expert zones, missed target."""
    r = load_rubric()
    tumour = tumour or case.entry.tumour
    centre = target_from_label(case.labels, tumour)
    tz, ez = plan_zones(trainee, tumour), plan_zones(case.expert, tumour)
    pt = _target(case.labels, tumour, case.expert, r, case.body, _pad_mm(tz + ez, centre))
    g = pt.native_grid
    z = rasterise_zones(tz, g) if tz else np.zeros(pt.native["tumour"].shape, bool)
    e = rasterise_zones(ez, g) if ez else np.zeros_like(z)
    return {"grid": g, "tumour": pt.native["tumour"], "target": pt.native["target"], "trainee": z, "expert": e,
            "missed": pt.native["target"] & ~z, "box": pt.box}
