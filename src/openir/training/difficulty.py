"""Difficulty of a teaching case, computed from its labels with the rule in ``data/difficulty.yaml``
(size, heat-sink vessels, must-spare structures nearby, subcapsular location, depth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from openir.core import LabelMap
from openir.core.datafiles import load_packaged, load_yaml_model
from openir.plan import describe_tumour, matches
from openir.plan.rules import load_margins

from .models import Difficulty, DifficultyHit


class _Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    description_en: str
    description_zh: str
    measure: str
    threshold: float
    near_mm: float | None = None
    points: int = Field(ge=0)
    source: str = Field(min_length=3)


class _Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: str
    label_zh: str
    max_points: int


class DifficultyRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    difficulty_version: str
    criteria: list[_Criterion]
    levels: list[_Level] = Field(min_length=1)


def load_difficulty_rule(path: str | Path | None = None) -> DifficultyRule:
    if path is None:
        return load_packaged(DifficultyRule, "openir.training", "data/difficulty.yaml")
    return load_yaml_model(DifficultyRule, path)


def case_measures(labels: LabelMap, tumour: str, body: np.ndarray | None = None) -> dict[str, float | None]:
    """What the rule looks at (mm): equivalent diameter, largest heat-sink vessel nearby, distance to
    the nearest must-spare structure, to the host organ's surface, and depth from the skin."""
    f = describe_tumour(labels, tumour)
    margins = load_margins()
    spare = [d for n, d in f.near_labels.items() if matches(n, margins.must_spare.labels) and n != f.organ_label]
    tm = labels.mask(tumour)
    sp = labels.grid.spacing[::-1]
    idx = np.argwhere(tm)
    lo = np.maximum(idx.min(0) - 40, 0)
    hi = np.minimum(idx.max(0) + 41, tm.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    capsule = None
    if f.organ_label:
        organ = (labels.array[box] == labels.value_of(f.organ_label)) | tm[box]
        inside = ndimage.distance_transform_edt(organ, sampling=sp)
        # voxel centre to the first voxel outside, minus one voxel: surface to surface
        capsule = max(0.0, float(inside[tm[box]].min()) - float(sp.min()))
    b = (labels.array > 0) if body is None else (body | (labels.array > 0))
    depth = float(ndimage.distance_transform_edt(b, sampling=sp)[tuple(np.round(idx.mean(0)).astype(int))])
    return {"equivalent_diameter_mm": f.equivalent_diameter_mm,
            "heat_sink_vessel_mm": max(f.heat_sink_vessels.values()) if f.heat_sink_vessels else None,
            "must_spare_distance_mm": min(spare) if spare else None,
            "capsule_distance_mm": capsule, "depth_mm": depth, "organ": f.organ}  # type: ignore[dict-item]


_AT_MOST = {"must_spare_distance_mm", "capsule_distance_mm"}  # met when the distance is below the threshold


def case_difficulty(labels: LabelMap, tumour: str, body: np.ndarray | None = None,
                    rule: DifficultyRule | None = None) -> Difficulty:
    """The case's difficulty level, every criterion with its measured value and source."""
    rule = rule or load_difficulty_rule()
    m = case_measures(labels, tumour, body)
    hits = []
    for c in rule.criteria:
        v = m.get(c.measure)
        if v is None or isinstance(v, str):
            met = False
        elif c.measure in _AT_MOST:
            met = float(v) < c.threshold
        else:
            met = float(v) >= c.threshold
        hits.append(DifficultyHit(id=c.id, met=met, value=None if v is None else round(float(v), 2),  # type: ignore[arg-type]
                                  threshold=c.threshold, points=c.points if met else 0,
                                  description_en=c.description_en, description_zh=c.description_zh, source=c.source))
    pts = sum(h.points for h in hits)
    level = next((lv for lv in rule.levels if pts <= lv.max_points), rule.levels[-1])
    return Difficulty(level=level.level, label_zh=level.label_zh, points=pts, criteria=hits,
                      version=rule.difficulty_version)
