"""`plan_ablation`: modality choice, target, multi-probe placement and predicted outcome for one or
several tumours in one procedure, returned as a `Plan` (pydantic, the JSON the CLI writes).

Outcome metrics are computed on the native-resolution crop from the chosen ellipsoids (the
optimiser may work on a coarser planning grid): coverage of the tumour and of tumour + margin,
a minimal-margin estimate (inside distance transform of the zone union at the tumour, minus half a
voxel), healthy volume ablated, every structure touched, and heat-sink checks for thermal zones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from scipy import ndimage

from openir.core import LabelMap
from openir.core.errors import InputError, OpenIRError

from .devices import DeviceCatalogue, load_catalogue
from .modality import describe_tumour, recommend_modality
from .models import (
    CaseRef,
    PhysicsSummary,
    PhysicsTargetOutcome,
    Plan,
    PlannedProbe,
    Provenance,
    TargetPlan,
)
from .placement import Placement, place_probes, zone_options
from .policy import TrajectoryPolicy, is_target_label, load_policy
from .rules import MarginTable, load_margins, load_modality_rules, matches
from .target import PlanningTarget, build_target
from .trajectories import find_trajectories, prepare_case, target_from_label
from .zones import heat_sink_check, rasterise_zones

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


def _min_margin_mm(zone: np.ndarray, tumour: np.ndarray, sp: np.ndarray) -> float:
    if not tumour.any() or not zone.any():
        return float("nan")
    half = float(sp.min()) / 2
    inside = ndimage.distance_transform_edt(zone, sampling=sp)
    if (tumour & ~zone).any():  # tumour sticks out: negative margin = how far
        outside = ndimage.distance_transform_edt(~zone, sampling=sp)
        return -float(outside[tumour].max()) + half
    return float(inside[tumour].min()) - half


def _evaluate(labels: LabelMap, pt: PlanningTarget, zones, margins: MarginTable, tumour: str,
              zone: np.ndarray | None = None):
    nat = pt.native
    g = pt.native_grid
    if zone is None:
        zone = rasterise_zones(zones, g) if zones else np.zeros(nat["target"].shape, bool)
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
    return zone, cov_t, cov_g, float(healthy.sum() * vv), float(outside.sum() * vv), touched, spare, margin


def _place_one(labels, name, mod, feats, cat, margins, pol, *, devices, tissue, margin_mm, clip_to_organ,
               uncertainty_mm, plan_voxel_mm, body_mask, needle_length_mm, n_directions, n_paths, keep_away,
               req, max_probes, lattice_fraction, tip_offset_mm, label_names, evidence=None):
    notes: list[str] = []
    opts, onotes = zone_options(cat, mod, feats.organ, devices=devices, tissue=tissue, evidence=evidence)
    notes += onotes
    pad = 2 * max((max(o.semi_mm) + (o.pair_spacing_mm or 0) / 2 for o in opts), default=10.0)
    pt = build_target(labels, name, organ=feats.organ, organ_label=feats.organ_label, margin_mm=margin_mm,
                      clip_to_organ=clip_to_organ, uncertainty_mm=uncertainty_mm, pad_mm=pad,
                      plan_voxel_mm=plan_voxel_mm, body_mask=body_mask, margins=margins)
    dirs, prep, dnotes = _directions(labels, name, pol, needle_length_mm, body_mask, n_directions, n_paths,
                                     keep_away) if opts else ([], None, [])
    notes += dnotes
    strided = pt.stride != (1, 1, 1)
    if opts and dirs:
        # One device per tumour: antennas of different systems need different generators, so the
        # devices are planned separately and the best plan kept (full coverage, fewest probes, most
        # coverage), never a mix.
        by_device: dict[str, list] = {}
        for o in opts:
            by_device.setdefault(o.device, []).append(o)
        tried = []
        for dev_id, dev_opts in by_device.items():
            pl_d = place_probes(pt, dev_opts, dirs, prep,
                                required_coverage=min(1.0, req + (0.005 if strided else 0.0)),
                                max_probes=max_probes, lattice_fraction=lattice_fraction,
                                tip_offset_mm=tip_offset_mm, label_names=label_names)
            score = (pl_d.covered >= pl_d.required, -len(pl_d.chosen), pl_d.covered)
            tried.append((score, dev_id, pl_d))
        tried.sort(key=lambda t: t[0], reverse=True)
        pl = tried[0][2]
        if len(tried) > 1:
            others = "; ".join(f"{d}: {len(x.chosen)} probe(s), {'full' if sc[0] else 'partial'} coverage"
                               for sc, d, x in tried[1:])
            notes.append(f"planned with {tried[0][1]} (one device per tumour); also tried {others}")
        if len(pl.chosen) >= max_probes and pl.covered < pl.required:
            notes.append(f"probe limit ({max_probes}) reached before full coverage")
    else:
        n = int(pt.target.sum())
        pl = Placement([], opts, n, 0, n, 0, 0,
                       {"no usable device setting" if not opts else "no feasible needle path": n})
    return pl, pt, notes


ZoneModel = Literal["table", "physics", "both"]
ZONE_MODELS = ("table", "physics", "both")
PHYSICS_PLACEMENT_NOTE = ("probes were placed with the catalogue's table zones; the physics zones (bioheat "
                          "simulation in this case's tissues, large vessels as heat sinks) are computed for the "
                          "placed probes afterwards, one probe at a time (union, no thermal synergy)")


def _physics_outcome(plan: Plan, labels: LabelMap, pt: PlanningTarget, tp: TargetPlan, margins: MarginTable,
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
    _, cov_t, cov_g, healthy, outside, touched, spare, margin = _evaluate(labels, pt, [], margins, name, zone=union)
    req = float(plan.provenance.parameters.get("required_coverage", 0.99))  # type: ignore[arg-type]
    vv = pt.native_grid.voxel_volume_mm3 / 1000.0
    out = PhysicsTargetOutcome(
        tumour=name, tumour_coverage_pct=round(cov_t, 3), target_coverage_pct=round(cov_g, 3),
        min_margin_mm=round(margin, 2) if math.isfinite(margin) else -1.0, zone_volume_ml=round(float(union.sum() * vv), 3),
        table_tumour_coverage_pct=tp.tumour_coverage_pct, table_target_coverage_pct=tp.target_coverage_pct,
        table_min_margin_mm=tp.min_margin_mm, full_coverage=cov_g >= 100.0 * req - 1e-9 and not spare)
    plan.physics.targets.append(out)
    if zone_model == "physics":
        tp.tumour_coverage_pct, tp.target_coverage_pct, tp.min_margin_mm = (
            out.tumour_coverage_pct, out.target_coverage_pct, out.min_margin_mm)
        tp.ablated_healthy_ml, tp.ablated_outside_target_ml = round(healthy, 3), round(outside, 3)
        tp.structures_touched_ml, tp.must_spare_touched_ml = touched, spare
        tp.full_coverage = out.full_coverage
        tp.notes.append("coverage, margin and healthy volume are from the physics zones; " + PHYSICS_PLACEMENT_NOTE)


def plan_ablation(labels: LabelMap, tumours: Sequence[str], *, modality: str | None = None,
                  devices: Sequence[str] | None = None, tumour_type: str = "unknown",
                  margin_mm: float | None = None, clip_to_organ: bool | None = None,
                  uncertainty_mm: float | None = None, needle_length_mm: float = 150.0,
                  policy: TrajectoryPolicy | None = None, keep_away: dict[str, float] | None = None,
                  body_mask: np.ndarray | None = None, n_directions: int = 4000, n_paths: int = 6,
                  plan_voxel_mm: float = 2.0, required_coverage: float | None = None,
                  tip_offset_mm: float = 0.0, tissue: str = "prefer", max_probes: int = 16,
                  lattice_fraction: float = 0.5, catalogue: DeviceCatalogue | None = None,
                  margins: MarginTable | None = None, case: CaseRef | None = None,
                  targets_out: dict[str, np.ndarray] | None = None, zone_model: ZoneModel = "table",
                  physics_spacing_mm: float = 2.0, evidence: str | None = None) -> Plan:
    """Plan the ablation of every tumour label in ``tumours`` (one procedure).

    ``targets_out``, when given, receives each tumour's target (tumour + margin) mask on the full grid.
    ``zone_model``: "table" (catalogue ellipsoids), "both" (placement and headline metrics from the
    table; each probe also simulated with the bioheat model in the case's tissues, recorded in
    ``plan.physics`` with the coverage by the physics zones) or "physics" (placement still from the
    table, but coverage, margin and healthy volume from the physics zones). ``physics_spacing_mm``:
    the simulation voxel (mm). Physics zones need a device with a calibrated physics source.
    ``evidence``: which table of each device to plan with (manufacturer, clinical, in vivo animal,
    ex vivo, phantom); default: each device's preferred table (``devices.EVIDENCE_PREFERENCE``).
    """
    if not tumours:
        raise InputError("no tumour given", field="tumor")
    if zone_model not in ZONE_MODELS:
        raise InputError(f"zone model must be one of {', '.join(ZONE_MODELS)}, got {zone_model!r}", field="zone_model")
    cat = catalogue or load_catalogue()
    margins = margins or load_margins()
    rules = load_modality_rules()
    pol = policy or load_policy()
    req = margins.required_coverage if required_coverage is None else float(required_coverage)
    params = dict(modality=modality, devices=list(devices or []), tumour_type=tumour_type, margin_mm=margin_mm,
                  clip_to_organ=clip_to_organ, uncertainty_mm=uncertainty_mm, needle_length_mm=needle_length_mm,
                  n_directions=n_directions, n_paths=n_paths, plan_voxel_mm=plan_voxel_mm, required_coverage=req,
                  tip_offset_mm=tip_offset_mm, tissue=tissue, max_probes=max_probes,
                  lattice_fraction=lattice_fraction, keep_away=dict(keep_away or {}), zone_model=zone_model,
                  physics_spacing_mm=physics_spacing_mm, evidence=evidence)
    from openir import __version__ as oir_version

    plan = Plan(case=case or CaseRef(grid=labels.grid.describe()),
                provenance=Provenance(catalogue_version=cat.catalogue_version, rules_version=rules.rules_version,
                                      margins_version=margins.margins_version, policy_version=pol.policy_version,
                                      openir_version=str(oir_version),
                                      created=datetime.now(UTC).isoformat(timespec="seconds"),
                                      parameters=params))
    plan.zone_model = zone_model
    if zone_model != "table":
        plan.physics = PhysicsSummary(zone_model=zone_model, criterion="cem43", spacing_mm=physics_spacing_mm,
                                      notes=[PHYSICS_PLACEMENT_NOTE])
    vessel_labels = [n for n in labels.names if matches(n, margins.vessels)]
    label_names = dict(labels.labels)
    order = 0
    for tum in tumours:
        t0 = time.perf_counter()
        name = labels.labels[labels.value_of(tum)]
        feats = describe_tumour(labels, name, tumour_type=tumour_type, rules=rules, margins=margins)
        rec = recommend_modality(feats, override=modality, rules=rules, catalogue=cat)
        notes = [rec.note] if rec.note else []
        tries = [rec.chosen] if modality else [m.modality for m in rec.ranking if m.plannable] or [rec.chosen]
        best = None
        for mod in tries:
            r = _place_one(labels, name, mod, feats, cat, margins, pol, devices=devices, tissue=tissue,
                           margin_mm=margin_mm, clip_to_organ=clip_to_organ, uncertainty_mm=uncertainty_mm,
                           plan_voxel_mm=plan_voxel_mm, body_mask=body_mask, needle_length_mm=needle_length_mm,
                           n_directions=n_directions, n_paths=n_paths, keep_away=keep_away, req=req,
                           max_probes=max_probes, lattice_fraction=lattice_fraction, tip_offset_mm=tip_offset_mm,
                           label_names=label_names, evidence=evidence)
            pl_ = r[0]
            score = (pl_.covered >= pl_.required and pl_.coverable >= math.ceil(req * pl_.n_target - 1e-9),
                     pl_.covered / max(pl_.n_target, 1))
            if best is None or score > best[0]:
                best = (score, mod, r)
            if score[0]:
                break
            notes.append(f"{mod}: full coverage not reached ({pl_.covered / max(pl_.n_target, 1):.1%} at the "
                         "planning grid); trying the next-ranked modality" if mod != tries[-1] else
                         f"{mod}: full coverage not reached")
        _, chosen_mod, (pl, pt, onotes) = best
        notes += onotes
        if chosen_mod != rec.chosen:
            notes.append(f"planned with {chosen_mod}: {rec.chosen} could not reach full coverage")
            rec = rec.model_copy(update={"chosen": chosen_mod})
        notes += pl.notes
        zones = [c.ellipsoid for c in pl.chosen]
        zone, cov_t, cov_g, healthy, outside, touched, spare, margin = _evaluate(labels, pt, zones, margins, name)
        heat = []
        for z in zones:
            if z.thermal and vessel_labels:
                rep, _ = heat_sink_check(z, labels, vessel_labels, margins.heat_sink_min_diameter_mm, clip=False)
                if rep.flagged:
                    heat.append(rep)
        vv_p = pt.grid.voxel_volume_mm3 / 1000.0
        full = cov_g >= 100.0 * req - 1e-9 and not spare
        tp = TargetPlan(tumour=name, recommendation=rec, modality=rec.chosen, target=pt.spec, n_probes=0,
                        n_tracks=len({(c.lattice) for c in pl.chosen}), tumour_coverage_pct=round(cov_t, 3),
                        target_coverage_pct=round(cov_g, 3), min_margin_mm=round(margin, 2) if math.isfinite(margin) else -1.0,
                        ablated_healthy_ml=round(healthy, 3), ablated_outside_target_ml=round(outside, 3),
                        structures_touched_ml=touched, must_spare_touched_ml=spare, heat_sink=heat,
                        full_coverage=full, blocked_ml={k: round(v * vv_p, 3) for k, v in pl.blocked.items()},
                        n_candidates=pl.n_candidates, notes=notes)
        # probes: tracks in lattice order, deepest position first on a track (pull-back)
        tracks: dict[tuple, int] = {}
        chosen = sorted(pl.chosen, key=lambda c: (c.lattice, -c.depth_index))
        for c in chosen:
            track = tracks.setdefault(c.lattice, len(tracks) + 1)
            opt = pl.options[c.option]
            zi = len(plan.zones)
            plan.zones.append(c.ellipsoid)
            plan.zone_tumour.append(name)
            off_src = (opt.row.source if opt.row.centre_offset_mm is not None
                       else TIP_OFFSET_UNSOURCED.format(off=tip_offset_mm))
            off = opt.row.centre_offset_mm if opt.row.centre_offset_mm is not None else tip_offset_mm
            cluster = opt.modality in ("cryo", "ire")
            for tip, entry, length in zip(c.tips, c.entries, c.path_mm, strict=True):
                order += 1
                plan.probes.append(PlannedProbe(
                    order=order, group=(plan.targets.__len__() + 1) if cluster else order, tumour=name,
                    device=opt.device, modality=opt.modality, setting=opt.setting, power_w=opt.row.power_w,
                    time_s=opt.row.time_s, isotherm_c=opt.row.isotherm_c, spacing_mm=opt.row.spacing_mm,
                    exposure_mm=opt.row.exposure_mm, entry_lps=tuple(map(float, entry)),
                    tip_lps=tuple(map(float, tip)), direction_lps=tuple(map(float, c.direction)),
                    zone_centre_lps=tuple(map(float, c.centre)), zone_index=zi, track=track,
                    path_length_mm=round(float(length), 2), tip_offset_mm=float(off), tip_offset_source=off_src,
                    sources=list(opt.sources)))
                tp.n_probes += 1
        tp.n_tracks = len(tracks)
        if zone_model != "table":
            _physics_outcome(plan, labels, pt, tp, margins, zone_model, physics_spacing_mm)
            full, cov_g = tp.full_coverage, tp.target_coverage_pct
        if len({p.track for p in plan.probes if p.tumour == name}) < sum(1 for c in chosen):
            tp.notes.append("pull-back: several zones share one track (deepest first)")
        if rec.flags:
            plan.warnings += [f"{name}: {f}" for f in rec.flags]
        for h in heat:
            for v in h.vessels:
                plan.warnings.append(f"{name}: heat sink - {v.label} ({v.diameter_mm:.1f} mm) "
                                     f"{'touches' if v.touching_only else 'runs through'} a {h.zone_device} zone")
        if not full:
            why = "; ".join(f"{k}: {v:.2f} mL" for k, v in sorted(tp.blocked_ml.items(), key=lambda kv: -kv[1])[:4])
            by = " by the physics zones" if zone_model == "physics" else ""
            plan.warnings.append(f"{name}: full coverage{by} not reached ({cov_g:.1f}% of tumour + margin)"
                                 + (f"; blocked by {why}" if why else ""))
        tp.seconds = round(time.perf_counter() - t0, 3)
        plan.targets.append(tp)
        if targets_out is not None:
            full_t = np.zeros(labels.shape, bool)
            full_t[pt.box] = pt.native["target"]
            targets_out[name] = full_t
    return plan
