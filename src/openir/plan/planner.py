"""`plan_ablation`: modality choice, target, probe configuration and predicted outcome for one or
several tumours in one procedure, returned as a `Plan` (pydantic, the JSON the CLI writes).

Configurations follow practice (``data/configurations.yaml``): cryoprobes and IRE electrodes are
placed as one array whose zone comes from the physics model (with pull-backs for IRE); microwave and
RF antennas one zone per position, at most a few per tumour. Limits per tumour and per session are
never exceeded: a target they cannot cover gets the best coverage within them, what blocks the rest
and the alternatives a tumour board would discuss. Several modalities near the top of the rule
ranking are planned and weighed (coverage, probe count, risk, evidence; ``modality_rules.yaml``,
``tradeoff``), with the reasons in ``TargetPlan.modality_options``.

Outcome metrics are computed on the native-resolution crop from the chosen ellipsoids (the
optimiser may work on a coarser planning grid): coverage of the tumour and of tumour + margin,
a minimal-margin estimate (inside distance transform of the zone union at the tumour, minus half a
voxel), healthy volume ablated, every structure touched, and heat-sink checks for thermal zones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from scipy import ndimage

from openir.core import LabelMap
from openir.core.enums import ARRAY_MODALITIES
from openir.core.errors import InputError, OpenIRError

from .arrays import Configurations, ModalityConfiguration, load_configurations
from .devices import DeviceCatalogue, load_catalogue
from .modality import describe_tumour, recommend_modality
from .models import (
    CaseRef,
    EvidenceCoverage,
    HeatSinkReport,
    ModalityOption,
    ModalityRecommendation,
    PhysicsSummary,
    PhysicsTargetOutcome,
    Plan,
    PlannedProbe,
    Probe,
    ProbeScheduleStep,
    Provenance,
    TargetPlan,
    TumourFeatures,
)
from .options import PlanOptions
from .placement import (
    Placement,
    PlacementSearch,
    array_options,
    place_array,
    place_probes,
    zone_options,
)
from .policy import TrajectoryPolicy, is_target_label, load_policy
from .rules import MarginTable, ModalityRules, Tradeoff, load_margins, load_modality_rules, matches
from .target import PlanningTarget, TargetOverrides, build_target
from .trajectories import find_trajectories, prepare_case, target_from_label
from .zones import heat_sink_check, predict_zone, rasterise_zones

TIP_OFFSET_UNSOURCED = ("unsourced: the catalogue gives no tip-to-zone-centre offset for this setting; the "
                        "tip is placed {off:g} mm beyond the zone centre (user/default) - check the device IFU")


def _directions(labels: LabelMap, tumour: str, policy: TrajectoryPolicy, needle_length_mm: float,
                body_mask, n_directions: int, n_paths: int, keep_away) -> tuple[list[np.ndarray], object, list[str]]:
    notes: list[str] = []
    centre = target_from_label(labels, tumour)
    try:
        prep = prepare_case(labels, centre, policy, needle_length_mm, body_mask=body_mask, keep_away=keep_away)
        res = find_trajectories(labels, centre, policy, needle_length_mm, n_directions, prep=prep,
                                shortlist_size=n_paths, min_separation_deg=20.0)
    except OpenIRError as exc:
        notes.append(f"no feasible needle path to {tumour}: {exc}")
        return [], None, notes
    return [np.asarray(t.direction_lps) for t in res.shortlist], prep, notes


def _array_directions(labels: LabelMap, tumour: str, policy: TrajectoryPolicy, needle_length_mm: float,
                      body_mask, n_directions: int, n_paths: int, keep_away,
                      pool_size: int = 64, separation_deg: float = 6.0) -> tuple[list[np.ndarray], object, list[str]]:
    """Directions for a parallel array: the ranked shortlist first, then every other feasible direction
    to the tumour centre, widest corridor (largest clearance) first, spread ``separation_deg`` apart.

    A parallel array needs a corridor as wide as its layout, which the single-needle shortlist (five
    or six Pareto paths) rarely offers near vessels or ribs; the placement screens these poses."""
    short, prep, notes = _directions(labels, tumour, policy, needle_length_mm, body_mask, n_directions, n_paths,
                                     keep_away)
    if not short:
        return short, prep, notes
    from .trajectories import evaluate_directions, fibonacci_directions

    rays = evaluate_directions(prep, fibonacci_directions(n_directions))  # type: ignore[arg-type]
    idx = np.flatnonzero(rays.feasible)
    clear = rays.clearance_mm[idx].min(axis=1) if rays.clearance_mm.shape[1] else np.zeros(idx.size)
    pool = list(short)
    cos_sep = math.cos(math.radians(separation_deg))
    for n in idx[np.argsort(-clear, kind="stable")]:
        d = -np.asarray(rays.directions[n], float)
        if all(float(d @ q) < cos_sep for q in pool):
            pool.append(d)
        if len(pool) >= pool_size:
            break
    return pool, prep, notes


def _min_margin_mm(zone: np.ndarray, tumour: np.ndarray, sp: np.ndarray) -> float:
    if not tumour.any() or not zone.any():
        return float("nan")
    half = float(sp.min()) / 2
    inside = ndimage.distance_transform_edt(zone, sampling=sp)
    if (tumour & ~zone).any():  # tumour sticks out: negative margin = how far
        outside = ndimage.distance_transform_edt(~zone, sampling=sp)
        return -float(outside[tumour].max()) + half
    return float(inside[tumour].min()) - half


@dataclass
class ZoneOutcome:
    """What a zone (mask on the target's native crop) does to one target."""

    zone: np.ndarray
    tumour_pct: float
    target_pct: float
    healthy_ml: float
    outside_ml: float
    touched: dict[str, float]
    spare: dict[str, float]
    margin_mm: float

    @property
    def margin_or_minus_one(self) -> float:
        return round(self.margin_mm, 2) if math.isfinite(self.margin_mm) else -1.0


def evaluate_zone(labels: LabelMap, pt: PlanningTarget, zone: np.ndarray) -> ZoneOutcome:
    """Coverage, margin, healthy tissue and structures touched by ``zone`` (native crop of ``pt``)."""
    nat = pt.native
    g = pt.native_grid
    vv = g.voxel_volume_mm3 / 1000.0
    tm, tg = nat["tumour"], nat["target"]
    cov_t = 100.0 * float((zone & tm).sum()) / max(int(tm.sum()), 1)
    cov_g = 100.0 * float((zone & tg).sum()) / max(int(tg.sum()), 1)
    healthy = zone & nat["body"] & ~tm
    outside = zone & nat["body"] & ~tg
    touched: dict[str, float] = {}
    spare: dict[str, float] = {}
    arr = nat["labels"]
    for v in np.unique(arr[zone]).tolist():
        name = labels.labels.get(int(v))
        if not v or name is None or is_target_label(name):
            continue
        ml = round(float((zone & (arr == v)).sum() * vv), 3)
        touched[name] = ml
        if name in pt.must_spare_names:
            spare[name] = ml
    margin = _min_margin_mm(zone, tm, g.spacing[::-1])
    return ZoneOutcome(zone, cov_t, cov_g, float(healthy.sum() * vv), float(outside.sum() * vv), touched, spare,
                       margin)


@dataclass
class _Case:
    """What every tumour of one plan shares."""

    labels: LabelMap
    options: PlanOptions
    catalogue: DeviceCatalogue
    margins: MarginTable
    rules: ModalityRules
    policy: TrajectoryPolicy
    configurations: Configurations
    body_mask: np.ndarray | None
    required: float

    @property
    def label_names(self) -> dict[int, str]:
        return dict(self.labels.labels)

    @property
    def vessel_labels(self) -> list[str]:
        return [n for n in self.labels.names if matches(n, self.margins.vessels)]


@dataclass(frozen=True)
class PracticeCount:
    """The practice probe count for this tumour's size (configurations.yaml ``practice_probes``): held
    to, or lifted by the user (``beyond_practice``)."""

    modality: str
    max_probes: int
    max_diameter_mm: float
    size_mm: int  # the tumour's volume-equivalent diameter, rounded as reported
    allowed: int  # insertions the plan may use
    lifted: bool
    source: str

    @property
    def rule(self) -> str:
        return (f"at most {self.max_probes} {self.modality} probes for a tumour up to {self.max_diameter_mm:g} mm "
                f"(this one {self.size_mm} mm, volume-equivalent diameter)")

    @property
    def note(self) -> str:
        head = " ".join(self.source.split())
        head = head if len(head) < 90 else head[:87] + "..."
        if self.lifted:
            return (f"{PRACTICE_LIFTED}: up to {self.allowed} {self.modality} probes allowed for this {self.size_mm} mm "
                    f"tumour, above the {self.max_probes} practice uses up to {self.max_diameter_mm:g} mm "
                    f"(beyond_practice set by the user)")
        return f"{PRACTICE_CEILING}: {self.rule} [configurations.yaml practice_probes; {head}]"


PRACTICE_CEILING = "practice probe count"
PRACTICE_LIFTED = "practice probe count lifted"


@dataclass
class ModalityAttempt:
    """One modality planned for one tumour: placement, target, outcome and what was noted."""

    modality: str
    cfg: ModalityConfiguration
    placement: Placement
    target: PlanningTarget
    outcome: ZoneOutcome
    notes: list[str] = field(default_factory=list)
    heat: list[HeatSinkReport] = field(default_factory=list)
    probe_cap: int = 0
    full_coverage: bool = False
    practice: PracticeCount | None = None  # set when the size band bound (or was lifted from) the probe count

    @property
    def n_probes(self) -> int:
        """Distinct insertions: array probes (pull-backs reuse them) or antenna tracks."""
        ch = self.placement.chosen
        if not ch:
            return 0
        opt = self.placement.options[ch[0].option]
        if opt.template is not None:
            return opt.template.n_probes
        return len({c.lattice for c in ch})

    @property
    def configuration(self) -> str:
        ch = self.placement.chosen
        if not ch:
            return "none"
        opt = self.placement.options[ch[0].option]
        if opt.template is not None:
            kind = "IRE array" if self.modality == "ire" else "cryoprobe array"
            pb = f", {len(ch) - 1} pull-back(s)" if len(ch) > 1 else ""
            st = opt.array_zone.settings if opt.array_zone is not None else {}
            if self.modality == "cryo" and st.get("schedule_min"):
                pb += (f", freeze-thaw-freeze {'-'.join(f'{m:g}' for m in st['schedule_min'])} min, lethal "
                       f"isotherm {st.get('isotherm_c', -40):g} C")
            elif self.modality == "ire" and st.get("field_v_per_cm"):
                pb += f", {st['field_v_per_cm']:g} V/cm, {st.get('pulses_per_pair', '?')} pulses per pair"
            return f"{kind}: {opt.template.label()}{pb}"
        n_tr = self.n_probes
        return (f"{self.modality}: {n_tr} {opt.device} probe insertion(s), {len(ch)} zone(s) "
                f"({opt.setting})")

    @property
    def evidence(self) -> str:
        ch = self.placement.chosen
        if not ch:
            return ""
        opt = self.placement.options[ch[0].option]
        if opt.template is not None:  # arrays: the physics model, and the experiments it is fitted to
            return "model" + (f" ({_ARRAY_EVIDENCE[opt.modality]}; device {opt.device})"
                              if opt.modality in _ARRAY_EVIDENCE else f" (device {opt.device})")
        return opt.row.evidence or "unspecified"


# Which published evidence an array zone comes from (the physics model is fitted to it).
_ARRAY_EVIDENCE = {
    "cryo": "phase-change model, probe fitted to the 2.4 mm argon-probe gel phantom of Littrup 2009 (PMC2762356); "
            "its 2-4 probe predictions in benchmarks/RESULTS.md",
}


def _probe_cap(case: _Case, cfg: ModalityConfiguration, budget: int, feats: TumourFeatures,
               mod: str) -> tuple[int, PracticeCount | None]:
    """Insertions allowed for this tumour, and the practice count when its size band binds (or was lifted)."""
    cap = min(cfg.probes_per_tumour.max, budget)
    if case.options.max_probes is not None:
        cap = min(cap, case.options.max_probes)
    band = cfg.practice_band(feats.equivalent_diameter_mm)
    if band is None or band.max_probes >= cap:
        return cap, None
    lifted = case.options.beyond_practice
    allowed = cap if lifted else band.max_probes
    return allowed, PracticeCount(mod, band.max_probes, band.max_diameter_mm, round(feats.equivalent_diameter_mm),
                                  allowed, lifted, cfg.practice_probes_source or "")


def _plan_modality(case: _Case, name: str, feats: TumourFeatures, mod: str, budget: int) -> ModalityAttempt:
    """Plan ``name`` with modality ``mod`` within its configuration limits and the session budget."""
    o = case.options
    cfg = case.configurations.for_modality(mod)
    cap, practice = _probe_cap(case, cfg, budget, feats, mod)
    notes: list[str] = [practice.note] if practice else []
    devices = o.devices or None
    if mod in ARRAY_MODALITIES:
        opts, onotes = array_options(case.catalogue, mod, cfg, devices=devices, max_probes=cap, tissue=feats.organ)
    else:
        opts, onotes = zone_options(case.catalogue, mod, feats.organ, devices=devices, tissue=o.tissue,
                                    evidence=o.evidence)
    notes += onotes
    reach = max((float(np.abs(op.offsets()).max()) for op in opts), default=0.0)
    pad = 2 * max((max(op.semi_mm) for op in opts), default=10.0) + reach
    pt = build_target(case.labels, name, organ=feats.organ, organ_label=feats.organ_label,
                      overrides=TargetOverrides(margin_mm=o.margin_mm, clip_to_organ=o.clip_to_organ,
                                                uncertainty_mm=o.uncertainty_mm),
                      pad_mm=pad, plan_voxel_mm=o.plan_voxel_mm, body_mask=case.body_mask, margins=case.margins)
    find = _array_directions if mod in ARRAY_MODALITIES else _directions
    dirs, prep, dnotes = (find(case.labels, name, case.policy, o.needle_length_mm, case.body_mask,
                               o.n_directions, o.n_paths, o.keep_away or None) if opts and cap > 0
                          else ([], None, []))
    notes += dnotes
    strided = pt.stride != (1, 1, 1)
    req = min(1.0, case.required + (0.005 if strided else 0.0))
    if cap < cfg.probes.min:
        n = int(pt.target.sum())
        notes.append(f"session limit: {budget} probe insertion(s) left, a {mod} configuration needs "
                     f"{cfg.probes.min}")
        pl = Placement([], opts, n, 0, n, 0, 0, {"session probe limit reached": n})
    elif opts and dirs and mod in ARRAY_MODALITIES:
        pl = place_array(pt, opts, dirs, prep, cfg, required_coverage=req,
                         partial_tolerance_pct=case.rules.tradeoff.coverage_tolerance_pct)
    elif opts and dirs:
        # One device per tumour: antennas of different systems need different generators, so the
        # devices are planned separately and the best plan kept (full coverage, fewest probes, most
        # coverage), never a mix.
        by_device: dict[str, list] = {}
        for op in opts:
            by_device.setdefault(op.device, []).append(op)
        tried = []
        for dev_id, dev_opts in by_device.items():
            pl_d = place_probes(pt, dev_opts, dirs, prep, required_coverage=req,
                                max_probes=cfg.positions_per_tumour.max, max_tracks=cap,
                                search=PlacementSearch(lattice_fraction=o.lattice_fraction,
                                                       tip_offset_mm=o.tip_offset_mm),
                                label_names=case.label_names)
            score = (pl_d.covered >= pl_d.required, -len({c.lattice for c in pl_d.chosen}), -len(pl_d.chosen),
                     pl_d.covered)
            tried.append((score, dev_id, pl_d))
        tried.sort(key=lambda t: t[0], reverse=True)
        pl = tried[0][2]
        if len(tried) > 1:
            others = "; ".join(f"{d}: {len({c.lattice for c in x.chosen})} probe(s), "
                               f"{'full' if sc[0] else 'partial'} coverage" for sc, d, x in tried[1:])
            notes.append(f"planned with {tried[0][1]} (one device per tumour); also tried {others}")
        if pl.covered < pl.required and (len(pl.chosen) >= cfg.positions_per_tumour.max
                                         or len({c.lattice for c in pl.chosen}) >= cap):
            notes.append(f"configuration limit reached before full coverage ({cap} probe(s), "
                         f"{cfg.positions_per_tumour.max} zone(s) per tumour)")
    else:
        n = int(pt.target.sum())
        pl = Placement([], opts, n, 0, n, 0, 0,
                       {"no usable device setting" if not opts else "no feasible needle path": n})
    notes += pl.notes
    zones = [c.ellipsoid for c in pl.chosen]
    zone = rasterise_zones(zones, pt.native_grid) if zones else np.zeros(pt.native["target"].shape, bool)
    out = evaluate_zone(case.labels, pt, zone)
    heat = []
    for z in zones:
        if z.thermal and case.vessel_labels:
            rep, _ = heat_sink_check(z, case.labels, case.vessel_labels, case.margins.heat_sink_min_diameter_mm,
                                     clip=False)
            if rep.flagged:
                heat.append(rep)
    att = ModalityAttempt(mod, cfg, pl, pt, out, notes, heat, cap, practice=practice)
    att.full_coverage = out.target_pct >= 100.0 * case.required - 1e-9 and not out.spare and bool(pl.chosen)
    return att


def _coverage_points(t: Tradeoff, pct: float) -> float:
    step = t.coverage_tolerance_pct
    return t.coverage_points_per_pct * step * math.floor(min(pct, 100.0) / step + 1e-9)


def weigh_modalities(attempts: Sequence[ModalityAttempt], rec: ModalityRecommendation, rules: ModalityRules,
                     host_label: str | None) -> tuple[list[ModalityOption], ModalityAttempt]:
    """Score each planned modality (rule points + coverage, probes, risk, evidence); best first."""
    tradeoff, risk_classes = rules.tradeoff, rules.structure_classes
    rule = {m.modality: m.score for m in rec.ranking}
    scored: list[tuple[float, int, ModalityOption, ModalityAttempt]] = []
    for i, a in enumerate(attempts):
        reasons = [f"{rule.get(a.modality, 0.0):+g} rules (see ranking)"]
        sc = rule.get(a.modality, 0.0)
        if a.full_coverage:
            sc += tradeoff.full_coverage_points
            reasons.append(f"{tradeoff.full_coverage_points:+g} tumour + margin fully covered within limits")
        cp = _coverage_points(tradeoff, a.outcome.target_pct)
        sc += cp
        reasons.append(f"{cp:+.1f} coverage {a.outcome.target_pct:.1f}% (counted in "
                       f"{tradeoff.coverage_tolerance_pct:g}-point steps)")
        extra = max(0, a.n_probes - 1)
        if extra:
            sc += extra * tradeoff.points_per_extra_probe
            reasons.append(f"{extra * tradeoff.points_per_extra_probe:+.1f} {a.n_probes} probes")
        structs = [n for n in a.outcome.touched if n != host_label and any(
            matches(n, pats) for cls, pats in risk_classes.items() if cls != "heat_sink_vessel")]
        if structs:
            sc += len(structs) * tradeoff.points_per_structure_touched
            reasons.append(f"{len(structs) * tradeoff.points_per_structure_touched:+.1f} zone reaches "
                           f"{', '.join(sorted(structs))}")
        vessels = {v.label for h in a.heat for v in h.vessels}
        if vessels:
            sc += len(vessels) * tradeoff.points_per_heat_sink_vessel
            reasons.append(f"{len(vessels) * tradeoff.points_per_heat_sink_vessel:+.1f} heat sink "
                           f"({', '.join(sorted(vessels))})")
        ev = a.evidence
        ep = tradeoff.evidence_points.get(ev, min(tradeoff.evidence_points.values(), default=0.0)) if ev else 0.0
        if ep:
            sc += ep
            reasons.append(f"{ep:+g} evidence: {ev}")
        if not a.placement.chosen:
            sc = -math.inf
            reasons.append("no plan")
        opt = ModalityOption(modality=a.modality, planned=True, score=round(sc, 3) if math.isfinite(sc) else -999.0,
                             rule_points=rule.get(a.modality, 0.0), target_coverage_pct=round(a.outcome.target_pct, 2),
                             full_coverage=a.full_coverage, n_probes=a.n_probes, configuration=a.configuration,
                             evidence=ev, reasons=reasons)
        scored.append((sc, -i, opt, a))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    scored[0][2].chosen = True
    return [s[2] for s in scored], scored[0][3]


def _candidate_modalities(case: _Case, rec: ModalityRecommendation) -> list[str]:
    """Modalities to plan for one tumour: the user's, else the plannable ones near the top of the rules."""
    o = case.options
    if o.modality:
        return [o.modality]
    plannable = [m for m in rec.ranking if m.plannable]
    if o.devices:
        mods = {case.catalogue.get(d).modality for d in o.devices}
        plannable = [m for m in plannable if m.modality in mods]
    if not plannable:
        return [rec.chosen]
    best = plannable[0].score
    window = case.rules.tradeoff.consider_within_points
    return [m.modality for m in plannable if m.score >= best - window]


def _check_inputs(labels: LabelMap, tumours: Sequence[str], o: PlanOptions, cat: DeviceCatalogue) -> None:
    if not tumours:
        raise InputError("no tumour given", field="tumor")
    sp = np.asarray(labels.grid.spacing, float)
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(f"voxel size must be positive, got {tuple(float(x) for x in sp)} mm", field="spacing")
    for d in o.devices:
        dev = cat.get(d)  # unknown device: InputError naming the catalogue's ids
        if o.modality and dev.modality != o.modality:
            raise InputError(f"device {d!r} is a {dev.modality} device, not {o.modality}", field="device")


def _alternatives(case: _Case, chosen: ModalityAttempt, attempts: Sequence[ModalityAttempt],
                  feats: TumourFeatures) -> list[str]:
    out = []
    for alt in case.configurations.alternatives:
        text = alt.text
        if alt.id == "other_modality":
            others = [a for a in attempts if a is not chosen and a.full_coverage]
            if others:
                text += f": {others[0].modality} ({others[0].configuration}) covers it within limits"
            elif len(attempts) > 1:
                text += " (none of those planned here does: " + ", ".join(a.modality for a in attempts) + ")"
        if alt.id == "tace" and feats.longest_axis_mm < 30:
            continue
        out.append(f"{text} [source: {alt.source}]")
    return out


def _add_probes(plan: Plan, name: str, att: ModalityAttempt, o: PlanOptions) -> tuple[int, int, list[str]]:
    """Write the chosen zones and probes into ``plan``; return (insertions, zones, unsourced offsets)."""
    pl = att.placement
    unsourced: list[str] = []
    tracks: dict[tuple, int] = {}
    chosen = sorted(pl.chosen, key=lambda c: (c.lattice, -c.depth_index))
    group = len(plan.targets) + 1
    order = len(plan.probes)
    for pos_i, c in enumerate(chosen):
        opt = pl.options[c.option]
        zi = len(plan.zones)
        plan.zones.append(c.ellipsoid)
        plan.zone_tumour.append(name)
        sourced = opt.tip_offset_mm is not None
        off = opt.tip_offset_mm if sourced else o.tip_offset_mm
        if opt.array_zone is not None:
            off_src = f"physics array model: {opt.array_zone.model}"
        elif sourced:
            off_src = opt.row.source
        else:
            off_src = TIP_OFFSET_UNSOURCED.format(off=o.tip_offset_mm)
            unsourced.append(f"{opt.device} ({opt.setting})")
        layout = opt.offsets()
        array = opt.template is not None
        for j, (tip, entry, length) in enumerate(zip(c.tips, c.entries, c.path_mm, strict=True)):
            order += 1
            track = tracks.setdefault((c.lattice, j), len(tracks) + 1)
            plan.probes.append(PlannedProbe(
                order=order, group=group if array else order, tumour=name,
                device=opt.device, modality=opt.modality, setting=opt.setting, power_w=opt.row.power_w,
                time_s=opt.row.time_s, isotherm_c=opt.row.isotherm_c, spacing_mm=opt.row.spacing_mm,
                exposure_mm=opt.row.exposure_mm, entry_lps=tuple(map(float, entry)),
                tip_lps=tuple(map(float, tip)), direction_lps=tuple(map(float, _probe_direction(tip, entry, c.direction))),
                zone_centre_lps=tuple(map(float, c.centre)), zone_index=zi, track=track,
                path_length_mm=round(float(length), 2), tip_offset_mm=float(off or 0.0), tip_offset_source=off_src,
                tip_offset_sourced=sourced, array_position=pos_i + 1 if array else 1,
                layout_offset_mm=(float(layout[j][0]), float(layout[j][1])), sources=list(opt.sources),
                schedule=_schedule(opt)))
    return len(tracks), len(chosen), sorted(set(unsourced))


NOT_A_PLAN = "NOT A TREATMENT PLAN"


def _max_lean_deg(probes: Sequence[PlannedProbe]) -> float:
    """Largest angle (deg) between a probe's shaft and the array's mean direction (0: parallel)."""
    if len(probes) < 2:
        return 0.0
    d = np.array([p.direction_lps for p in probes], float)
    m = d.mean(axis=0)
    m /= np.linalg.norm(m)
    return float(np.degrees(np.arccos(np.clip(d @ m, -1.0, 1.0))).max())


def _probe_direction(tip, entry, axis) -> np.ndarray:
    """The probe's own insertion direction (a converging cryoprobe leans from the array axis)."""
    v = np.asarray(tip, float) - np.asarray(entry, float)
    n = float(np.linalg.norm(v))
    return v / n if n > 1.0 else np.asarray(axis, float)


def _schedule(opt) -> list[ProbeScheduleStep] | None:
    """Cryo arrays: the freeze-thaw-freeze schedule their zone was computed with (power 1 = freeze)."""
    if opt.array_zone is None or opt.modality != "cryo":
        return None
    minutes = opt.array_zone.settings.get("schedule_min") or []
    return [ProbeScheduleStep(duration_s=60.0 * float(m), power_w=0.0 if k % 2 else 1.0)
            for k, m in enumerate(minutes)] or None


def _evidence_comparison(case: _Case, plan: Plan, name: str, att: ModalityAttempt) -> tuple[str, list[EvidenceCoverage]]:
    """The evidence table used and, for each other table of the device, the coverage of the same poses."""
    ev = att.evidence
    if not att.placement.chosen or ev.startswith("model"):
        return ev, []
    opt = att.placement.options[att.placement.chosen[0].option]
    dev = case.catalogue.get(opt.device)
    out = []
    probes = [p for p in plan.probes if p.tumour == name]
    for other in dev.evidence_kinds:
        if other is None or other == ev:
            continue
        zones = []
        try:
            for p in probes:
                kw = dict(device=p.device, power_w=p.power_w, time_s=p.time_s, tip_lps=p.tip_lps,
                          direction_lps=p.direction_lps, isotherm_c=p.isotherm_c, exposure_mm=p.exposure_mm,
                          evidence=other, centre_offset_mm=0.0)  # the centre is set below
                rows = dev.table(other)
                tissues = {r.tissue for r in rows}
                if len(tissues) > 1:
                    kw["tissue"] = att.target.spec.organ_label or "liver"
                z = predict_zone(Probe(**kw), case.catalogue)  # type: ignore[arg-type]
                # the pose keeps the planned zone centre: compare zone sizes, not offsets
                zones.append(z.model_copy(update={"centre_lps": p.zone_centre_lps}))
        except (OpenIRError, ValueError) as exc:
            out.append(EvidenceCoverage(evidence=str(other), note=f"not comparable: {exc}"))
            continue
        zone = rasterise_zones(zones, att.target.native_grid)
        r = evaluate_zone(case.labels, att.target, zone)
        out.append(EvidenceCoverage(evidence=str(other), tumour_coverage_pct=round(r.tumour_pct, 2),
                                    target_coverage_pct=round(r.target_pct, 2), min_margin_mm=r.margin_or_minus_one,
                                    note="same probe poses and zone centres, zone size from this table"))
    return ev, out


def _limits_text(cfg: ModalityConfiguration, mod: str, cap: int) -> list[str]:
    out = [f"{mod}: {cfg.probes.min}-{cfg.probes.max} probes per array/zone [{cfg.probes_source.strip()}]",
           f"{mod}: at most {cap} probe insertion(s) and {cfg.positions_per_tumour.max} zone(s) for this tumour"
           + (f" [{cfg.positions_source.strip()}]" if cfg.positions_source else "")]
    if cfg.spacing_mm:
        out.append(f"{mod}: spacing {cfg.spacing_mm.min:g}-{cfg.spacing_mm.max:g} mm [{(cfg.spacing_source or '').strip()}]")
    if cfg.exposure_mm:
        out.append(f"{mod}: exposure {cfg.exposure_mm.min:g}-{cfg.exposure_mm.max:g} mm "
                   f"[{(cfg.exposure_source or '').strip()}]")
    if cfg.pullbacks:
        out.append(f"{mod}: at most {cfg.pullbacks.max} pull-back(s) [{(cfg.pullbacks_source or '').strip()}]")
    return out


ZoneModel = Literal["table", "physics", "both"]
ZONE_MODELS = ("table", "physics", "both")
PHYSICS_PLACEMENT_NOTE = ("probes were placed with the catalogue's table zones; the physics zones (bioheat "
                          "simulation in this case's tissues, large vessels as heat sinks) are computed for the "
                          "placed probes afterwards, one probe at a time (union, no thermal synergy)")


def _physics_outcome(plan: Plan, labels: LabelMap, pt: PlanningTarget, tp: TargetPlan,
                     zone_model: str, spacing_mm: float) -> None:
    """Simulate the tumour's probes, record their zones and the coverage by their union in ``plan.physics``;
    with ``zone_model='physics'`` the target's headline metrics become the physics ones."""
    from .physics_zone import physics_zone

    assert plan.physics is not None
    name = tp.tumour
    masks: list[np.ndarray] = []
    failed: dict[str, str] = {}  # device -> error, once per device
    for p in [p for p in plan.probes if p.tumour == name]:
        if p.device in failed:
            continue
        try:
            z = physics_zone(p, labels, spacing_mm=spacing_mm, table_zone=plan.zones[p.zone_index],
                             probe_order=p.order, tumour=name)
        except OpenIRError as exc:  # uncalibrated device, probe outside the image, ...
            if zone_model == "physics":
                raise
            failed[p.device] = str(exc)
            continue
        plan.physics.zones.append(z.record)
        masks.append(z.on_grid(pt.native_grid))
        r = z.record
        if r.vessels and r.volume_shrinkage_pct > 5.0:
            plan.warnings.append(f"{name}: physics - probe {r.probe_order} "
                                 f"lethal zone {r.volume_shrinkage_pct:.0f}% smaller than in homogeneous liver "
                                 f"(heat sink: {', '.join(r.vessels)})")
    if failed or not masks:
        why = "; ".join(failed.values()) or "no probes"
        plan.physics.notes.append(f"{name}: no physics coverage ({why})")
        if failed:
            plan.warnings.append(f"{name}: physics zones not computed for every probe - {why}")
        return
    union = np.logical_or.reduce(masks)
    r2 = evaluate_zone(labels, pt, union)
    req = float(plan.provenance.parameters.get("required_coverage", 0.99))  # type: ignore[arg-type]
    vv = pt.native_grid.voxel_volume_mm3 / 1000.0
    out = PhysicsTargetOutcome(
        tumour=name, tumour_coverage_pct=round(r2.tumour_pct, 3), target_coverage_pct=round(r2.target_pct, 3),
        min_margin_mm=r2.margin_or_minus_one, zone_volume_ml=round(float(union.sum() * vv), 3),
        table_tumour_coverage_pct=tp.tumour_coverage_pct, table_target_coverage_pct=tp.target_coverage_pct,
        table_min_margin_mm=tp.min_margin_mm, full_coverage=r2.target_pct >= 100.0 * req - 1e-9 and not r2.spare)
    plan.physics.targets.append(out)
    if zone_model == "physics":
        tp.tumour_coverage_pct, tp.target_coverage_pct, tp.min_margin_mm = (
            out.tumour_coverage_pct, out.target_coverage_pct, out.min_margin_mm)
        tp.ablated_healthy_ml, tp.ablated_outside_target_ml = round(r2.healthy_ml, 3), round(r2.outside_ml, 3)
        tp.structures_touched_ml, tp.must_spare_touched_ml = r2.touched, r2.spare
        tp.full_coverage = out.full_coverage
        tp.notes.append("coverage, margin and healthy volume are from the physics zones; " + PHYSICS_PLACEMENT_NOTE)


def _plan_tumour(case: _Case, plan: Plan, tum: str, budget: int) -> tuple[TargetPlan, PlanningTarget, int]:
    """Plan one tumour (modalities weighed) into ``plan``; return its TargetPlan, target, insertions."""
    o = case.options
    t0 = time.perf_counter()
    name = case.labels.labels[case.labels.value_of(tum)]
    feats = describe_tumour(case.labels, name, tumour_type=o.tumour_type, rules=case.rules, margins=case.margins)
    rec = recommend_modality(feats, override=o.modality, rules=case.rules, catalogue=case.catalogue)
    notes = [rec.note] if rec.note else []
    mods = _candidate_modalities(case, rec)
    attempts: list[ModalityAttempt] = []
    for mod in mods:
        attempts.append(_plan_modality(case, name, feats, mod, budget))
        if not o.compare_modalities and attempts[-1].full_coverage:
            break
    options_out, att = weigh_modalities(attempts, rec, case.rules, feats.organ_label)
    for m in rec.ranking:
        if m.modality not in mods:
            options_out.append(ModalityOption(
                modality=m.modality, planned=False, rule_points=m.score,
                reasons=["not plannable: no sourced zone model" if not m.plannable else
                         f"not planned: rule score {m.score:g} more than "
                         f"{case.rules.tradeoff.consider_within_points:g} below the best"]))
    if att.modality != rec.chosen:
        notes.append(f"planned with {att.modality}: weighed best of {', '.join(a.modality for a in attempts)} "
                     f"(rules ranked {rec.chosen} first; see modality options)")
        rec = rec.model_copy(update={"chosen": att.modality})
    notes += att.notes
    pt, out, pl = att.target, att.outcome, att.placement
    tp = TargetPlan(tumour=name, recommendation=rec, modality=att.modality, target=pt.spec, n_probes=0, n_tracks=0,
                    tumour_coverage_pct=round(out.tumour_pct, 3), target_coverage_pct=round(out.target_pct, 3),
                    min_margin_mm=out.margin_or_minus_one, ablated_healthy_ml=round(out.healthy_ml, 3),
                    ablated_outside_target_ml=round(out.outside_ml, 3), structures_touched_ml=out.touched,
                    must_spare_touched_ml=out.spare, heat_sink=att.heat, full_coverage=att.full_coverage,
                    blocked_ml={k: round(v * pt.grid.voxel_volume_mm3 / 1000.0, 3) for k, v in pl.blocked.items()},
                    n_candidates=pl.n_candidates, notes=notes, configuration=att.configuration,
                    limits=_limits_text(att.cfg, att.modality, att.probe_cap), modality_options=options_out)
    practice = att.practice
    if practice:
        tp.limits.append(f"{att.modality}: {practice.note}")
    if practice and practice.lifted:
        plan.warnings.append(f"{name}: {practice.note} - more probes than practice uses; the tumour board should "
                             "weigh the alternatives first")
    n_ins, n_zones, unsourced = _add_probes(plan, name, att, o)
    tp.n_probes, tp.n_tracks, tp.n_zones = n_ins, n_ins, n_zones
    tp.within_limits = n_ins <= att.probe_cap and n_zones <= att.cfg.positions_per_tumour.max
    for u in unsourced:
        plan.warnings.append(f"{name}: tip-to-zone-centre offset unsourced for {u}; the tip is placed "
                             f"{o.tip_offset_mm:g} mm beyond the zone centre - check the device IFU")
    lean = _max_lean_deg([p for p in plan.probes if p.tumour == name]) if att.modality in ARRAY_MODALITIES else 0.0
    if lean > 0.5 and att.modality == "ire":
        tp.configuration += f", not parallel (shafts lean up to {lean:.0f} deg; pair spacing checked along the exposure)"
        tp.notes.append(f"electrodes not parallel: the tips are at the modelled layout, the shafts lean up to {lean:.0f} "
                        f"deg to reach safe paths [{att.cfg.converging_source or 'unsourced'}]")
    elif lean > 0.5:
        tp.configuration += f", converging (shafts lean up to {lean:.0f} deg toward the array axis)"
        tp.notes.append(f"converging array: the tips are at the modelled layout, the shafts lean up to {lean:.0f} deg "
                        f"toward the array axis to reach safe paths [{att.cfg.converging_source or 'unsourced'}]")
    if n_zones > n_ins or (n_zones > 1 and att.modality in ARRAY_MODALITIES):
        tp.notes.append("pull-back: several zones share one track (deepest first)")
    if att.modality == "cryo":
        length = next((n for n in att.notes if n.startswith("cryo freezing (active) length")), "")
        if "NOT SOURCED" in length:
            plan.warnings.append(f"{name}: {length.split(' [')[0]}: NOT SOURCED for this needle - the zone along "
                                 "the probes is the model's; check the device IFU")
        if n_zones > 1:
            plan.warnings.append(f"{name}: cryo pull-back (unsourced, configurations.yaml): the array is drawn back "
                                 f"along its tracks and a second freeze-thaw-freeze is run ({n_zones} positions)")
    tp.evidence_used, tp.evidence_comparison = _evidence_comparison(case, plan, name, att)
    if o.zone_model != "table":
        _physics_outcome(plan, case.labels, pt, tp, o.zone_model, o.physics_spacing_mm)
    if rec.flags:
        plan.warnings += [f"{name}: {f}" for f in rec.flags]
    for h in att.heat:
        for v in h.vessels:
            plan.warnings.append(f"{name}: heat sink - {v.label} ({v.diameter_mm:.1f} mm) "
                                 f"{'touches' if v.touching_only else 'runs through'} a {h.zone_device} zone")
    if not tp.full_coverage:
        why = "; ".join(f"{k}: {v:.2f} mL" for k, v in sorted(tp.blocked_ml.items(), key=lambda kv: -kv[1])[:4])
        by = " by the physics zones" if o.zone_model == "physics" else ""
        lim = [n for n in att.notes if "limit" in n or "within the configuration" in n]
        plan.warnings.append(f"{name}: full coverage{by} not reached ({tp.target_coverage_pct:.1f}% of tumour + "
                             "margin) within the configuration limits" + (f"; blocked by {why}" if why else "")
                             + (f"; {lim[0]}" if lim else ""))
        tp.alternatives = _alternatives(case, att, attempts, feats)
        if practice and not practice.lifted:
            small = any(n.startswith("no array within the limits is as large as the target") for n in att.notes)
            plan.warnings.append(f"{name}: the {att.modality} probe count is held to practice for this size "
                                 f"({practice.rule})" + ("; no array of that many probes has a modelled zone as "
                                                         "large as tumour + margin" if small else ""))
            tp.alternatives.append(f"more {att.modality} probes than practice uses for this size, planned with "
                                   "--beyond-practice (PlanOptions.beyond_practice), if the team accepts it "
                                   "[source: configurations.yaml practice_probes_source]")
        if n_ins:  # a plan that leaves tumour + margin untreated is no treatment plan, whatever the modality
            tp.configuration = f"{NOT_A_PLAN}: best within the limits shown - {tp.configuration}"
            what = {"ire": "IRE electrode array", "cryo": "cryoprobe array"}.get(att.modality, f"{att.modality} plan")
            plan.warnings.append(f"{name}: {NOT_A_PLAN}: no {what} within the limits covers tumour + margin with safe "
                                 f"paths; the best ({n_ins} insertion(s), {tp.target_coverage_pct:.1f}%) is shown for "
                                 "the tumour board with the alternatives")
    tp.seconds = round(time.perf_counter() - t0, 3)
    return tp, pt, n_ins


def plan_ablation(labels: LabelMap, tumours: Sequence[str], options: PlanOptions | None = None, *,
                  body_mask: np.ndarray | None = None, case: CaseRef | None = None,
                  targets_out: dict[str, np.ndarray] | None = None, catalogue: DeviceCatalogue | None = None,
                  margins: MarginTable | None = None, policy: TrajectoryPolicy | None = None,
                  **overrides) -> Plan:
    """Plan the ablation of every tumour label in ``tumours`` (one procedure).

    ``options`` (`PlanOptions`) holds every setting; keyword ``overrides`` (e.g. ``modality="cryo"``)
    are applied on top and validated the same way (a bad value raises ``InputError`` naming it).
    ``targets_out``, when given, receives each tumour's target (tumour + margin) mask on the full grid.
    ``zone_model``: "table" (catalogue / array-model zones), "both" (each probe also simulated with
    the bioheat model, recorded in ``plan.physics``) or "physics" (coverage from the physics zones).
    ``evidence``: which table of each device to plan with (manufacturer, clinical, in vivo animal,
    ex vivo, phantom); the plan also shows the coverage the other tables would give.

    >>> from openir.phantom import TumourSpec, make_abdomen
    >>> p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=20.0),), spacing_mm=(2.0, 2.0, 2.0))
    >>> plan = plan_ablation(p.labels, ["tumour_1"], modality="microwave", n_directions=500)
    >>> plan.targets[0].modality, plan.targets[0].n_probes <= 3
    ('microwave', True)
    """
    o = PlanOptions.build(options, **overrides)
    cat = catalogue or load_catalogue()
    _check_inputs(labels, tumours, o, cat)
    margins = margins or load_margins()
    rules = load_modality_rules()
    pol = policy or load_policy()
    cfgs = load_configurations()
    req = margins.required_coverage if o.required_coverage is None else float(o.required_coverage)
    params = o.model_dump() | {"required_coverage": req}
    from openir import __version__ as oir_version

    plan = Plan(case=case or CaseRef(grid=labels.grid.describe()),
                provenance=Provenance(catalogue_version=cat.catalogue_version, rules_version=rules.rules_version,
                                      margins_version=margins.margins_version, policy_version=pol.policy_version,
                                      openir_version=str(oir_version),
                                      created=datetime.now(UTC).isoformat(timespec="seconds"),
                                      parameters=params))
    plan.provenance.parameters["configurations_version"] = cfgs.configurations_version
    plan.zone_model = o.zone_model
    if o.zone_model != "table":
        plan.physics = PhysicsSummary(zone_model=o.zone_model, criterion="cem43", spacing_mm=o.physics_spacing_mm,
                                      notes=[PHYSICS_PLACEMENT_NOTE])
    ctx = _Case(labels, o, cat, margins, rules, pol, cfgs, body_mask, req)
    budget = cfgs.session.max_probe_insertions
    for tum in tumours:
        tp, pt, used = _plan_tumour(ctx, plan, tum, budget)
        budget -= used
        plan.targets.append(tp)
        if targets_out is not None:
            full_t = np.zeros(labels.shape, bool)
            full_t[pt.box] = pt.native["target"]
            targets_out[tp.tumour] = full_t
    return plan
