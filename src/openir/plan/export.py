"""Plan exports as data: Slicer markups (entries, tips, zone centres, needle lines) and a label map
of the predicted zones and targets. Writing files is the io package's job (the CLI calls it), so
this module stays within the planning layer."""

from __future__ import annotations

import numpy as np

from openir.core import LabelMap

from .models import Plan


def plan_markups(plan: Plan) -> tuple[dict[str, dict[str, tuple[float, float, float]]],
                                      dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]]:
    """(points, lines) for ``openir.io.write_markups``: one point list per kind, one line per probe."""
    points: dict[str, dict[str, tuple[float, float, float]]] = {"entries": {}, "tips": {}, "zone_centres": {}}
    lines = {}
    for p in plan.probes:
        tag = f"P{p.order}"
        points["entries"][f"{tag} entry"] = p.entry_lps
        points["tips"][f"{tag} tip"] = p.tip_lps
        points["zone_centres"][f"{tag} zone ({p.setting})"] = p.zone_centre_lps
        lines[f"{tag} {p.device} {p.tumour}"] = (p.entry_lps, p.tip_lps)
    return points, lines


def plan_labelmap(plan: Plan, labels: LabelMap, *, targets: dict[str, np.ndarray] | None = None) -> LabelMap:
    """Label map on the labels' grid: the predicted zone union (``ablation_zone``), each tumour's
    zone (``zone_<tumour>``) and, when given, the target masks (``target_<tumour>``)."""
    g = labels.grid
    masks: dict[str, np.ndarray] = {}
    for t in plan.targets:
        if targets and t.tumour in targets:
            masks[f"target_{t.tumour}"] = targets[t.tumour]
    for t in plan.targets:
        masks[f"zone_{t.tumour}"] = plan.zone_mask(g, tumour=t.tumour)
    masks["ablation_zone"] = plan.zone_mask(g) if plan.zones else np.zeros(g.shape, bool)
    return LabelMap.from_masks(masks, g)


def zone_only_labelmap(plan: Plan, labels: LabelMap) -> LabelMap:
    """Just the predicted zone union (one segment), e.g. for DICOM SEG."""
    return LabelMap.from_masks({"predicted_ablation_zone": plan.zone_mask(labels.grid)}, labels.grid)
