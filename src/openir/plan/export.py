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


def plan_segments(plan: Plan, labels: LabelMap, *, targets: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Named, overlapping segments on the labels' grid: per tumour ``tumour_<name>``, ``target_<name>``
    (tumour + margin, when given) and ``zone_<name>``, then the zone union ``ablation_zone``."""
    g = labels.grid
    masks: dict[str, np.ndarray] = {}
    for t in plan.targets:
        masks[f"tumour_{t.tumour}" if not t.tumour.lower().startswith(("tumour", "tumor")) else t.tumour] = \
            labels.mask(t.tumour)
        if targets and t.tumour in targets:
            masks[f"target_{t.tumour}"] = np.asarray(targets[t.tumour], bool)
        masks[f"zone_{t.tumour}"] = plan.zone_mask(g, tumour=t.tumour)
    masks["ablation_zone"] = plan.zone_mask(g) if plan.zones else np.zeros(g.shape, bool)
    return masks


def plan_labelmap(plan: Plan, labels: LabelMap, *, targets: dict[str, np.ndarray] | None = None) -> LabelMap:
    """One label per voxel, for tools that need a plain label map: where segments overlap the most
    specific wins (tumour over target over the tumour's zone over the union), so the tumour and its
    target stay visible inside the zone. The overlapping segments are `plan_segments`."""
    masks = plan_segments(plan, labels, targets=targets)
    order = sorted(masks, key=lambda n: (0 if n == "ablation_zone" else 1 if n.startswith("zone_") else
                                          2 if n.startswith("target_") else 3))
    arr = np.zeros(labels.shape, np.uint8)
    names = {}
    for n in order:  # least specific first, overwritten by the more specific
        v = list(masks).index(n) + 1
        arr[masks[n]] = v
        names[v] = n
    return LabelMap(arr, labels.affine.copy(), {}, dict(sorted(names.items())))


def zone_surfaces(plan: Plan) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Triangle meshes (LPS vertices, faces) of each planned zone, named by probe and tumour."""
    from .zones import zone_mesh

    out = {}
    for n, z in enumerate(plan.zones, start=1):
        probe = next((p for p in plan.probes if np.allclose(p.zone_centre_lps, z.centre_lps, atol=1e-6)), None)
        tag = f"zone_P{probe.order}_{probe.tumour}" if probe is not None else f"zone_{n}"
        out[tag] = zone_mesh(z)
    return out


def zone_only_labelmap(plan: Plan, labels: LabelMap) -> LabelMap:
    """Just the predicted zone union (one segment), e.g. for DICOM SEG."""
    return LabelMap.from_masks({"predicted_ablation_zone": plan.zone_mask(labels.grid)}, labels.grid)
