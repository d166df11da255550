"""Targets, organs at risk, reference and fat regions on the MR grid, from a plan's label map.

The plan lives in the patient (planning CT) frame; the MR thermometry grid is another grid, maybe
another frame. Labels are moved by ``mr_from_plan`` (LPS->LPS, from a registration, identity when
both share a frame of reference) and resampled nearest-neighbour onto the MR grid. The target
gets its safety margin here (Euclidean distance in mm, anisotropic voxels respected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.resample import resample
from openir.core.volume import Grid

from .config import ThermometryTable, load_thermometry
from .models import MonitorPlan


@dataclass
class OrganLimit:
    """An organ at risk on the MR grid with its temperature limit and the limit's source."""

    name: str
    mask: np.ndarray
    max_c: float
    source: str


@dataclass
class MonitorStructures:
    """Masks on the MR grid (arrays ``[k, j, i]``)."""

    target: np.ndarray | None = None
    organs: list[OrganLimit] = field(default_factory=list)
    reference: np.ndarray | None = None
    fat: np.ndarray | None = None


def add_margin(mask: np.ndarray, margin_mm: float, spacing_kji: tuple[float, float, float]) -> np.ndarray:
    """``mask`` grown by ``margin_mm`` (exact Euclidean distance on the voxel grid)."""
    if margin_mm <= 0 or not mask.any():
        return mask.copy()
    dist = ndimage.distance_transform_edt(~mask, sampling=spacing_kji)
    return dist <= margin_mm


def labels_on_grid(labels: LabelMap, grid: Grid, mr_from_plan: np.ndarray | None = None) -> LabelMap:
    """The label map moved into the MR frame and resampled onto ``grid``."""
    if mr_from_plan is not None:
        m = np.asarray(mr_from_plan, float)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise InputError("mr_from_plan must be a 4x4 affine matrix", field="mr_from_plan")
        labels = LabelMap(labels.array, m @ labels.affine, dict(labels.meta), dict(labels.labels))
    out = resample(labels, grid)
    assert isinstance(out, LabelMap)
    return out


def structures_from_labels(labels: LabelMap, plan: MonitorPlan, *, table: ThermometryTable | None = None) -> MonitorStructures:
    """Masks and limits for every structure of ``plan`` from a label map already on the MR grid."""
    t = table or load_thermometry()
    sp = labels.spacing
    spacing_kji = (float(sp[2]), float(sp[1]), float(sp[0]))
    out = MonitorStructures()
    for s in plan.structures:
        mask = labels.array == labels.value_of(s.label)
        if s.role == "target":
            m = add_margin(mask, s.margin_mm, spacing_kji)
            out.target = m if out.target is None else out.target | m
        elif s.role == "organ_at_risk":
            if s.max_c is not None:
                lim, src = s.max_c, "limit given in the plan"
            else:
                if s.kind is None:
                    raise InputError(f"organ at risk {s.label!r} needs a 'kind' (one of {', '.join(sorted(t.limits))}) "
                                     "or its own 'max_c'", field="structures")
                lim_m = t.limit(s.kind)
                lim, src = lim_m.max_c, lim_m.source
            out.organs.append(OrganLimit(s.label, mask, lim, src))
        elif s.role == "reference":
            out.reference = mask if out.reference is None else out.reference | mask
        else:
            out.fat = mask if out.fat is None else out.fat | mask
    return out


def load_plan(path: str | Path) -> MonitorPlan:
    """Read a monitoring plan JSON, errors naming the file and field."""
    from pydantic import ValidationError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read plan: {exc.strerror}", source=p) from None
    try:
        return MonitorPlan.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], source=p, field=".".join(str(x) for x in err["loc"])) from None


def structures_from_plan(plan: MonitorPlan, grid: Grid, *, base_dir: str | Path = ".",
                         table: ThermometryTable | None = None) -> MonitorStructures:
    """Read the plan's label map, bring it onto the MR grid and build the structure masks."""
    from openir.io import read_labels

    lp = Path(plan.labels)
    if not lp.is_absolute():
        lp = Path(base_dir) / lp
    labels = read_labels(lp)
    m = np.asarray(plan.mr_from_plan, float) if plan.mr_from_plan is not None else None
    return structures_from_labels(labels_on_grid(labels, grid, m), plan, table=table)
