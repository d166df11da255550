"""The planned path to guide: one probe of an ablation `Plan` (the planner's own model, not a copy)."""

from __future__ import annotations

import numpy as np

from openir.core.errors import InputError
from openir.plan import Plan

from .models import PlannedPath


def planned_path(plan: Plan, probe_order: int | None = None) -> PlannedPath:
    """The path of probe ``probe_order`` (default: the first probe in insertion order)."""
    if not plan.probes:
        raise InputError("the plan has no probes: there is no needle path to guide", field="probes")
    probes = sorted(plan.probes, key=lambda p: p.order)
    if probe_order is None:
        p = probes[0]
    else:
        found = [p for p in probes if p.order == probe_order]
        if not found:
            raise InputError(f"no probe {probe_order} in the plan; probes: {', '.join(str(p.order) for p in probes)}",
                             field="--probe")
        p = found[0]
    e, t = np.asarray(p.entry_lps, float), np.asarray(p.tip_lps, float)
    length = float(np.linalg.norm(t - e))
    if length < 1e-6:
        raise InputError(f"probe {p.order}: entry and tip coincide", field="probes")
    u = (t - e) / length
    return PlannedPath(probe_order=p.order, tumour=p.tumour, device=p.device, entry_lps=p.entry_lps,
                       tip_lps=p.tip_lps, direction_lps=tuple(float(v) for v in u),  # type: ignore[arg-type]
                       length_mm=length)
