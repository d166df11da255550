"""Modality recommendation: a transparent rule set (``data/modality_rules.yaml``) ranks RF,
microwave, cryo, IRE and chemical ablation for one tumour, with every reason and its source shown.

`describe_tumour` measures what the rules look at (host organ, size, distance to heat-sink vessels
and sensitive structures) on a crop around the tumour; `recommend_modality` applies the rules. A user
override is honoured but the ranking and reasons are kept so the override is visible.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from openir.core import LabelMap, normalise_label_name
from openir.core.crop import bounding_box, pad_box
from openir.core.errors import InputError

from .devices import DeviceCatalogue, load_catalogue
from .models import ModalityRecommendation, ModalityScore, RuleHit, TumourFeatures
from .policy import is_target_label
from .rules import MarginTable, ModalityRules, load_margins, load_modality_rules, matches
from .zones import local_diameter_mm


def plannable_modalities(catalogue: DeviceCatalogue | None = None) -> set[str]:
    """Modalities that can be planned: a sourced (usable) zone row in the catalogue or, for cryo and
    IRE arrays, a catalogue device and the physics array-zone model."""
    from openir.core.enums import ARRAY_MODALITIES

    from .arrays import array_model_available

    cat = catalogue or load_catalogue()
    out = {d.modality for d in cat.devices if d.usable_rows() and d.modality not in ARRAY_MODALITIES}
    if array_model_available():
        out |= {d.modality for d in cat.devices if d.modality in ARRAY_MODALITIES}
    return out


def host_organ(labels: LabelMap, tumour_mask: np.ndarray, rules: ModalityRules) -> tuple[str, str | None]:
    """(organ class, organ label) holding the tumour: the commonest non-tumour label around it."""
    shell = ndimage.binary_dilation(tumour_mask, iterations=2) & ~tumour_mask
    vals, counts = np.unique(labels.array[shell], return_counts=True)
    best: tuple[int, str] | None = None
    for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
        name = labels.labels.get(int(v))
        if not v or name is None or is_target_label(name):
            continue
        for organ, pats in rules.organs.items():
            if matches(name, pats) and (best is None or c > best[0]):
                best = (c, f"{organ}|{name}")
    if best is None:
        return "soft_tissue", None
    organ, name = best[1].split("|", 1)
    return organ, name


def describe_tumour(labels: LabelMap, tumour: str, *, tumour_type: str = "unknown",
                    rules: ModalityRules | None = None, margins: MarginTable | None = None) -> TumourFeatures:
    """Organ, size and nearby structures of a tumour label (distances surface to surface, mm)."""
    rules = rules or load_modality_rules()
    margins = margins or load_margins()
    full = labels.mask(tumour)
    if not full.any():
        raise InputError(f"tumour label {tumour!r} is empty", field="tumor")
    near_mm = margins.near_mm
    box = pad_box(bounding_box(full), labels.grid, near_mm + 3 * float(labels.grid.spacing.max()))
    arr = labels.array[box]
    tm = full[box]
    sp = labels.grid.spacing[::-1]
    organ, organ_label = host_organ(labels, full, rules)
    vv = labels.grid.voxel_volume_mm3
    vol_ml = float(tm.sum()) * vv / 1000.0
    eq_d = 2 * (3 * vol_ml * 1000.0 / (4 * math.pi)) ** (1 / 3)
    pts = np.argwhere(tm) * sp
    if len(pts) > 3:
        ev = np.linalg.eigvalsh(np.cov(pts.T))
        longest = float(2 * math.sqrt(5 * max(ev.max(), 0.0)))
    else:
        longest = eq_d
    longest = max(longest, eq_d)
    dist = ndimage.distance_transform_edt(~tm, sampling=sp)  # from the tumour, mm
    near_labels: dict[str, float] = {}
    near_cls: dict[str, float] = {}
    heat: dict[str, float] = {}
    present = set(np.unique(arr).tolist()) - {0}
    for v in sorted(present):
        name = labels.labels.get(int(v))
        if name is None or normalise_label_name(name) == normalise_label_name(tumour) or is_target_label(name):
            continue
        m = arr == v
        d = float(dist[m].min())
        d = max(0.0, d - float(sp.min()) / 2) if d > 0 else 0.0  # centre-to-centre -> surface estimate
        if d > near_mm:
            continue
        near_labels[name] = round(d, 2)
        for cls, pats in rules.structure_classes.items():
            if not matches(name, pats):
                continue
            if cls == "heat_sink_vessel":
                diam = local_diameter_mm(m, sp)
                close = m & (dist <= near_mm + float(sp.min()))
                big = close & (diam >= margins.heat_sink_min_diameter_mm)
                if not big.any():
                    continue
                heat[name] = round(float(diam[big].max()), 2)
                d = float(dist[big].min())
                d = max(0.0, d - float(sp.min()) / 2) if d > 0 else 0.0
            near_cls[cls] = round(min(d, near_cls.get(cls, math.inf)), 2)
    return TumourFeatures(label=labels.labels[labels.value_of(tumour)], organ=organ, organ_label=organ_label,
                          volume_ml=round(vol_ml, 3), equivalent_diameter_mm=round(eq_d, 2),
                          longest_axis_mm=round(longest, 2), tumour_type=tumour_type,
                          near=near_cls, near_labels=near_labels, heat_sink_vessels=heat)


def _applies(rule, f: TumourFeatures) -> bool:
    w = rule.when
    if w.organ is not None and f.organ not in w.organ:
        return False
    if w.min_diameter_mm is not None and not f.longest_axis_mm > w.min_diameter_mm:
        return False
    if w.max_diameter_mm is not None and not f.longest_axis_mm <= w.max_diameter_mm:
        return False
    if w.near is not None and not any(c in f.near for c in w.near):
        return False
    return w.tumour_type is None or f.tumour_type in w.tumour_type


def recommend_modality(features: TumourFeatures, *, override: str | None = None,
                       rules: ModalityRules | None = None, catalogue: DeviceCatalogue | None = None,
                       ) -> ModalityRecommendation:
    """Rank the modalities for a tumour by the rules; choose the best plannable one (or ``override``)."""
    rules = rules or load_modality_rules()
    can = plannable_modalities(catalogue)
    score = {m: 0.0 for m in rules.modalities}
    reasons: dict[str, list[str]] = {m: [] for m in rules.modalities}
    hits: list[RuleHit] = []
    flags: list[str] = []
    for r in rules.rules:
        if not _applies(r, features):
            continue
        hits.append(RuleHit(rule_id=r.id, points=dict(r.points), reason=r.reason, source=r.source,
                            verified=r.verified, project_default=r.project_default, flag=r.flag))
        if r.flag:
            flags.append(r.flag)
        for m, p in r.points.items():
            score[m] += p
            if p:
                reasons[m].append(f"{'+' if p > 0 else ''}{p:g} {r.id}: {r.reason}")
    order = sorted(rules.modalities, key=lambda m: (-score[m], rules.modalities.index(m)))
    ranking = [ModalityScore(modality=m, score=score[m], rank=i + 1, reasons=reasons[m], plannable=m in can)
               for i, m in enumerate(order)]
    note = ""
    if override:
        if override not in rules.modalities:
            raise InputError(f"unknown modality {override!r}; choose one of {', '.join(rules.modalities)}",
                             field="modality")
        chosen = override
        note = f"modality {override} chosen by the user (rule ranking: {order[0]} first)"
        if override not in can:
            note += f"; the catalogue has no sourced zone rows for {override}, so it cannot be planned"
    else:
        usable = [m for m in order if m in can]
        chosen = usable[0] if usable else order[0]
        if chosen != order[0]:
            note = (f"{order[0]} ranks first but the catalogue has no sourced zone rows for it; "
                    f"planning with {chosen}, the best-ranked modality that has them")
    return ModalityRecommendation(tumour=features.label, features=features, ranking=ranking, hits=hits,
                                  flags=flags, chosen=chosen, overridden=bool(override), note=note,
                                  rules_version=rules.rules_version)
