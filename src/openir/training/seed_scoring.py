"""`score_seed_plan`: a trainee's seed-implant plan (the `SeedPlan` JSON of ``openir seeds plan``)
scored against the ground truth and the expert seed plan of the same teaching case.

Nothing is re-derived: the dose is the seeds package's TG-43U1 engine (`total_dose_gy`, each seed
with its own strength), the planning target is `planning_target` (tumour + the expert's margin,
organ-at-risk voxels excluded, as the planner builds it), D90 / V100 / V150 / organ doses are
`dose_metrics` with the site protocol's limits, and each needle is traced with the trajectory
module under the policy the seed planner uses (site needle gauge, the plan's patient position).
Thresholds are the site protocol's (``openir/seeds/data/sites.yaml``, sourced there); the points are
the rubric's ``seeds`` block (teaching policy).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from openir.core import LabelMap
from openir.core.errors import InputError
from openir.core.volume import Grid
from openir.plan import prepare_case, trace_one
from openir.plan.policy import is_target_label, load_policy
from openir.plan.trajectories import REASONS
from openir.seeds import OrganMask, SeedPlan, dose_metrics, get_site, planning_target, total_dose_gy
from openir.seeds.models import DoseMetrics
from openir.seeds.planner import mask_box

from .models import CriterionScore, PathCheck, PlanScore
from .rubric import Rubric, load_rubric

DOSE_BOX_MARGIN_MM = 30.0  # as `SeedPlanOptions.dose_box_margin_mm`: organ doses near the target


@dataclass
class SeedGround:
    """The case's ground truth on the dose box: target, tumour, organs at risk, grid, prescription."""

    grid: Grid
    box: tuple[slice, slice, slice]
    target: np.ndarray
    tumour: np.ndarray
    organs: list[OrganMask]
    prescription_gy: float
    v100_min_pct: float
    v150_max_pct: float
    sources: dict[str, str]


@dataclass
class SeedMeasured:
    metrics: DoseMetrics
    dose: np.ndarray
    paths: list[PathCheck]
    n_needles: int
    n_seeds: int


def seed_ground(labels: LabelMap, expert: SeedPlan, body: np.ndarray | None = None,
                tumour: str | None = None) -> SeedGround:
    """Target and organs of the expert's site protocol on a box around the tumour (the planner's rules)."""
    site = get_site(expert.site)
    tumour = tumour or expert.tumour
    tum = labels.mask(tumour)
    if not tum.any():
        raise InputError(f"tumour label {tumour!r} is empty", field="tumour")
    box = mask_box(tum, labels.grid, expert.margin_mm + DOSE_BOX_MARGIN_MM)
    grid = labels.grid.subgrid([s.start for s in box], [s.stop - s.start for s in box])
    sub = LabelMap(labels.array[box], grid.affine, {}, labels.labels)
    organs = []
    for o in site.organs_at_risk:
        vals = o.values_in(sub)
        if vals:
            organs.append(OrganMask(o.name, np.isin(sub.array, vals), o.metric, o.limit_gy, o.source))
    excl = np.zeros(sub.shape, bool)
    for o in organs:
        excl |= o.mask
    b = body[box] if body is not None else sub.array > 0
    target = planning_target(sub, tumour, expert.margin_mm, b, excl if excl.any() else None)
    q = site.quality
    if q is None:
        raise InputError(f"site protocol {expert.site!r} has no quality limits (V100 / V150): seed plans on it "
                         "cannot be scored", field="site")
    return SeedGround(grid, box, target, sub.mask(tumour), organs, float(expert.prescription_gy), q.v100_min_pct,
                      q.v150_max_pct, {"prescription": site.prescription_source, "v100": q.v100_min_source,
                                       "v150": q.hot_source})


def seed_dose(plan: SeedPlan, grid: Grid) -> np.ndarray:
    """Permanent-implant total dose (Gy) of the plan's seeds on ``grid`` (TG-43U1 of the seeds package)."""
    if not plan.seeds:
        return np.zeros(grid.shape, float)
    return total_dose_gy(plan.seeds, plan.seed_model, grid)


def _paths(labels: LabelMap, plan: SeedPlan, tumour: str, site_gauge: int) -> list[PathCheck]:
    """Each needle traced back from its tip under the seed planner's policy (gauge, position)."""
    if not plan.needles:
        return []
    tv = labels.value_of(tumour)
    path_labels = LabelMap(labels.array, labels.affine, labels.meta,
                           {v: (n if v != tv or is_target_label(n) else f"target_{n}") for v, n in labels.labels.items()})
    pol = load_policy().model_copy(update={"needle_gauge": site_gauge, "needle_diameter_mm": None,
                                           "patient_position": plan.patient_position})
    length = max([150.0] + [float(n.depth_mm) + 20.0 for n in plan.needles])
    prep = prepare_case(path_labels, plan.target_centroid_lps, pol, needle_length_mm=length)
    out = []
    for n in plan.needles:
        d = np.asarray(n.direction_lps, float)
        tip = np.asarray(n.tip_lps, float)
        st, b, _len = trace_one(prep, tip, -d)
        name = prep.names[b] if 0 <= b < len(prep.names) else ""
        ok = st == 0
        out.append(PathCheck(entry_lps=tuple(map(float, n.entry_lps)), tip_lps=tuple(map(float, tip)), feasible=ok,
                             blocker="" if ok else name,
                             reason="" if ok else f"needle {n.hole}: path {REASONS.get(st, 'blocked')} {name}".strip()))
    return out


def measure_seed_plan(labels: LabelMap, plan: SeedPlan, ground: SeedGround, tumour: str) -> SeedMeasured:
    dose = seed_dose(plan, ground.grid)
    m = dose_metrics(dose, ground.target, ground.grid.voxel_volume_mm3, ground.prescription_gy, ground.organs)
    gauge = get_site(plan.site).needle_gauge if plan.site else 18
    return SeedMeasured(m, dose, _paths(labels, plan, tumour, gauge), len(plan.needles), len(plan.seeds))


def _crit(cid: str, max_points: float, lost: float, **kw) -> CriterionScore:
    lost = round(min(max(lost, 0.0), max_points), 2)
    return CriterionScore(id=cid, points=round(max_points - lost, 2), max_points=max_points, lost=lost, **kw)


def score_seed_plan(case, trainee: SeedPlan, *, tumour: str | None = None, rubric: Rubric | None = None) -> PlanScore:
    """Score a trainee's seed plan on teaching ``case`` whose expert plan is a `SeedPlan`.

    References: D90 >= the prescription and V100 >= the site minimum (or the expert's value where the
    anatomy kept the expert below it); V150 <= the site ceiling (or the expert's value if higher);
    no organ-at-risk limit broken that the expert kept; no needle blocked under the path policy; no
    more needles than the expert, no more seeds than the expert + tolerance. Every point lost is
    explained in English and Chinese.
    """
    t0 = time.perf_counter()
    r = rubric or load_rubric()
    if r.seeds is None:
        raise InputError("the rubric has no 'seeds' block: it cannot score seed plans", field="seeds")
    c = r.seeds
    labels: LabelMap = case.labels
    expert: SeedPlan = case.expert
    tumour = tumour or expert.tumour
    labels.value_of(tumour)
    if not trainee.seeds:
        raise InputError("the seed plan holds no seeds", field="seeds")
    ground = seed_ground(labels, expert, case.body, tumour)
    me = measure_seed_plan(labels, trainee, ground, tumour)
    ex = measure_seed_plan(labels, expert, ground, tumour)
    rx = ground.prescription_gy
    crits: list[CriterionScore] = []
    # D90 vs prescription, in % of the prescription
    ref = min(rx, ex.metrics.d90_gy)
    short = max(0.0, 100.0 * (ref - me.metrics.d90_gy) / rx)
    lost = c.d90.lost_per_pct * short if short > 1e-9 else 0.0
    crits.append(_crit(
        "d90", c.d90.points, lost, measured=round(me.metrics.d90_gy, 3), reference=round(ref, 3), unit="Gy",
        expert=round(ex.metrics.d90_gy, 3), source=ground.sources["prescription"],
        explanation_en=(f"target D90 {me.metrics.d90_gy:.1f} Gy, {short:.1f} % of the prescription below the "
                        f"reference {ref:.1f} Gy (prescription {rx:g} Gy, expert {ex.metrics.d90_gy:.1f} Gy)") if lost else "",
        explanation_zh=(f"靶区 D90 {me.metrics.d90_gy:.1f} Gy, 比参考值 {ref:.1f} Gy 低处方剂量的 {short:.1f}% "
                        f"(处方 {rx:g} Gy)") if lost else ""))
    ref = min(ground.v100_min_pct, ex.metrics.v100_pct)
    short = max(0.0, ref - me.metrics.v100_pct)
    lost = c.v100.lost_per_pct * short if short > 1e-9 else 0.0
    crits.append(_crit(
        "v100", c.v100.points, lost, measured=round(me.metrics.v100_pct, 3), reference=round(ref, 3), unit="%",
        expert=round(ex.metrics.v100_pct, 3), source=ground.sources["v100"],
        explanation_en=(f"V100 {me.metrics.v100_pct:.1f} %, {short:.1f} points below the reference {ref:.1f} % "
                        f"(expert {ex.metrics.v100_pct:.1f} %)") if lost else "",
        explanation_zh=f"V100 {me.metrics.v100_pct:.1f}%, 比参考值 {ref:.1f}% 低 {short:.1f} 个百分点" if lost else ""))
    ceil = max(ground.v150_max_pct, ex.metrics.v150_pct)
    over = max(0.0, me.metrics.v150_pct - ceil)
    lost = c.v150.lost_per_pct * over if over > 1e-9 else 0.0
    crits.append(_crit(
        "v150", c.v150.points, lost, measured=round(me.metrics.v150_pct, 3), reference=round(ceil, 3), unit="%",
        expert=round(ex.metrics.v150_pct, 3), source=ground.sources["v150"],
        explanation_en=(f"hot spot: V150 {me.metrics.v150_pct:.1f} %, {over:.1f} points above the ceiling "
                        f"{ceil:.1f} %") if lost else "",
        explanation_zh=f"热点: V150 {me.metrics.v150_pct:.1f}%, 超过上限 {ceil:.1f}% 共 {over:.1f} 个百分点" if lost else ""))
    expert_over = {o.name for o in ex.metrics.organs if o.within_limit is False}
    over_organs = [o for o in me.metrics.organs if o.within_limit is False and o.name not in expert_over]
    crits.append(_crit(
        "organ_limits", c.organ_limits.points, c.organ_limits.lost_per_organ * len(over_organs),
        measured=float(len(over_organs)), reference=0.0, unit="organs", expert=float(len(expert_over)),
        source="; ".join(f"{o.name}: {o.limit_source}" for o in me.metrics.organs) or "openir/seeds/data/sites.yaml",
        explanation_en="; ".join(f"{o.name}: {o.limit_metric} above its limit {o.limit_gy:g} Gy (D_max "
                                 f"{o.d_max_gy:.1f} Gy)" for o in over_organs),
        explanation_zh="; ".join(f"{o.name}: {o.limit_metric} 超过限量 {o.limit_gy:g} Gy" for o in over_organs)))
    expert_bad = {p.blocker for p in ex.paths if not p.feasible}
    bad = [p for p in me.paths if not p.feasible and p.blocker not in expert_bad]
    crits.append(_crit(
        "path_risk", c.path_risk.points, c.path_risk.lost_per_path * len(bad), measured=float(len(bad)),
        reference=0.0, unit="needles", expert=float(sum(not p.feasible for p in ex.paths)),
        source=r.thresholds.path_policy.source,
        explanation_en="; ".join(p.reason for p in bad),
        explanation_zh="; ".join(f"穿刺针 (针尖 {np.round(p.tip_lps, 1).tolist()}) 经过或过近: {p.blocker}" for p in bad)))
    extra = max(0, me.n_needles - ex.n_needles)
    crits.append(_crit(
        "needle_count", c.needle_count.points, c.needle_count.lost_per_extra_needle * extra,
        measured=float(me.n_needles), reference=float(ex.n_needles), unit="needles", expert=float(ex.n_needles),
        source=c.weights_source,
        explanation_en=f"{me.n_needles} needles, {extra} more than the expert's {ex.n_needles}" if extra else "",
        explanation_zh=f"穿刺针 {me.n_needles} 根, 比专家多 {extra} 根" if extra else ""))
    allowed = ex.n_seeds * (1.0 + c.seed_count.tolerance_pct / 100.0)
    extra_s = max(0, math.ceil(me.n_seeds - allowed - 1e-9))
    crits.append(_crit(
        "seed_count", c.seed_count.points, c.seed_count.lost_per_extra_seed * extra_s,
        measured=float(me.n_seeds), reference=round(allowed, 2), unit="seeds", expert=float(ex.n_seeds),
        source=c.weights_source,
        explanation_en=(f"{me.n_seeds} seeds, {extra_s} beyond the expert's {ex.n_seeds} + "
                        f"{c.seed_count.tolerance_pct:g} %") if extra_s else "",
        explanation_zh=f"粒子 {me.n_seeds} 颗, 超过专家 {ex.n_seeds} 颗 + {c.seed_count.tolerance_pct:g}% 共 {extra_s} 颗"
        if extra_s else ""))
    notes: list[str] = []
    if trainee.prescription_gy != expert.prescription_gy:
        notes.append(f"the trainee's prescription {trainee.prescription_gy:g} Gy is ignored: scored against the "
                     f"case's {rx:g} Gy")
    total = round(sum(x.points for x in crits), 2)
    max_total = round(sum(x.max_points for x in crits), 2)
    pct = 100.0 * total / max_total if max_total else 0.0
    a, b = me.dose >= rx, ex.dose >= rx
    dice = 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)
    missed = ground.target & ~a
    return PlanScore(entry_id=getattr(case.entry, "entry_id", ""), tumour=tumour, total=total, max_total=max_total,
                     percent=round(pct, 2), passed=pct >= r.pass_pct, criteria=crits, paths=me.paths,
                     n_probes=me.n_needles, expert_n_probes=ex.n_needles, zone_dice_vs_expert=round(dice, 4),
                     missed_target_ml=round(float(missed.sum() * ground.grid.voxel_volume_mm3 / 1000.0), 3),
                     rubric_version=r.rubric_version, notes=notes, seconds=round(time.perf_counter() - t0, 3),
                     kind="seeds", n_seeds=me.n_seeds, expert_n_seeds=ex.n_seeds)
