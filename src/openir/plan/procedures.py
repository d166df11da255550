"""Needle procedures beyond ablation: CT-guided lung biopsy, drainage of a collection, coeliac plexus
block. A profile (``data/procedures.yaml``) adapts the trajectory policy (what may be crossed,
keep-aways, pleural limit, ranking), names the needle and the patient positions to try; `plan_path`
runs the voxel-exact search once per position and keeps the best path, with its risk factors.
"""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openir.core import LabelMap, normalise_label_name
from openir.core.datafiles import load_yaml_model
from openir.core.errors import InputError, OpenIRError

from .models import Trajectory, TrajectoryResult
from .policy import (
    Position,
    StructureRule,
    TrajectoryPolicy,
    Weights,
    french_diameter_mm,
    load_policy,
)

ProcedureName = Literal["biopsy", "drainage", "nerve-block"]


class RiskFactor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: str
    source: str


class ProcedureProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    source: str
    target_labels: list[str]
    needle_gauge: int
    needle_length_mm: float = Field(..., gt=0)
    catheter_french: float | None = None
    positions: list[Position]
    max_counted_crossings: dict[str, int] = Field(default_factory=dict)
    structures: dict[str, StructureRule] = Field(default_factory=dict)
    weights: Weights = Field(default_factory=Weights)
    risk_factors: list[RiskFactor] = Field(default_factory=list)


class ProcedureTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    procedures: dict[str, ProcedureProfile]


@lru_cache(maxsize=1)
def load_procedures() -> ProcedureTable:
    """The packaged procedure profiles (validated)."""
    return load_yaml_model(ProcedureTable, Path(str(resources.files("openir.plan") / "data" / "procedures.yaml")))


class PathOptions(BaseModel):
    """What the user may change for one path search (None: the profile's value)."""

    position: Position | None = None
    needle_gauge: int | None = None
    needle_length_mm: float | None = None
    catheter_french: float | None = None
    n_directions: int = Field(20000, ge=100)
    keep_away: dict[str, float] = Field(default_factory=dict)


class PathPlan(BaseModel):
    """The chosen path of a needle procedure, its alternatives and what raises its risk."""

    procedure: str
    title: str
    target_lps: tuple[float, float, float]
    position: str
    needle_gauge: int
    needle_length_mm: float
    catheter_french: float | None = None
    catheter_diameter_mm: float | None = None
    best: Trajectory
    result: TrajectoryResult
    positions_tried: dict[str, str] = Field(default_factory=dict, description="position -> outcome")
    risk_factors: list[str] = Field(default_factory=list, description="the profile's factors, with this path's values")
    profile_version: str = ""
    notes: list[str] = Field(default_factory=list)


def procedure_policy(profile: ProcedureProfile, position: str, gauge: int,
                     base: TrajectoryPolicy | None = None) -> TrajectoryPolicy:
    """The default policy adapted to ``profile``: its structures first (first match wins), its limits,
    ranking weights, needle gauge and patient position."""
    pol = (base or load_policy()).model_copy(deep=True)
    structures = dict(profile.structures)
    for k, v in pol.structures.items():
        structures.setdefault(k, v)
    return pol.model_copy(update={
        "structures": structures, "weights": profile.weights, "needle_gauge": gauge, "patient_position": position,
        "target_labels": list(profile.target_labels),
        "max_counted_crossings": {**pol.max_counted_crossings, **profile.max_counted_crossings}})


def find_target_label(labels: LabelMap, profile: ProcedureProfile) -> str:
    """The first label matching the profile's target patterns (e.g. ``collection*`` for drainage)."""
    for n in labels.names:
        if any(fnmatch(normalise_label_name(n), p) for p in profile.target_labels):
            return n
    raise InputError(f"no target label for this procedure (looked for {', '.join(profile.target_labels)}); "
                     "give --target as x,y,z or a label name", field="--target")


def _risk_lines(profile: ProcedureProfile, best: Trajectory, labels: LabelMap, target_label: str | None) -> list[str]:
    out = []
    lung_mm = sum(v for k, v in best.counted_length_mm.items() if k.startswith("lung"))
    pleura = sum(v for k, v in best.counted_crossings.items() if k.startswith("lung"))
    for rf in profile.risk_factors:
        f = rf.factor.lower()
        value = ""
        if "aerated lung" in f:
            value = f"this path: {lung_mm:.1f} mm of lung"
        elif "fissure" in f:
            value = f"this path: {best.fissures_crossed} fissure(s)"
        elif "pleural puncture" in f or "transpleural" in f or "pleura" in f:
            value = f"this path: {pleura} pleural surface(s) crossed"
        elif "emphysema" in f:
            present = [n for n in labels.names if fnmatch(normalise_label_name(n), "bulla*")
                       or fnmatch(normalise_label_name(n), "emphysema*")]
            value = ("labelled: " + ", ".join(present) + " (kept off the path)") if present else "none labelled"
        elif "small lesion" in f and target_label is not None:
            m = labels.mask(target_label)
            d = 2 * (3 * m.sum() * labels.grid.voxel_volume_mm3 / (4 * np.pi)) ** (1 / 3)
            value = f"this lesion: equivalent diameter {d:.0f} mm"
        elif "spinal canal" in f or "aorta" in f or "bowel" in f or "kidney" in f:
            near = {k: v for k, v in best.clearances_mm.items() if any(w in k for w in
                    ("spinal", "aorta", "ivc", "vena", "bowel", "colon", "duoden", "kidney", "stomach"))}
            value = "clearances: " + ", ".join(f"{k} {v:.1f} mm" for k, v in sorted(near.items())) if near else ""
        out.append(f"{rf.factor}{' - ' + value if value else ''} [{rf.source}]")
    return out


def plan_path(labels: LabelMap, procedure: ProcedureName | str, target: str | np.ndarray | None = None,
              options: PathOptions | None = None, *, body_mask: np.ndarray | None = None) -> PathPlan:
    """The safest needle path for a CT-guided biopsy, drainage or nerve block.

    ``target`` is an LPS point or a label name (its centroid); None finds the profile's target label.
    Each allowed patient position is searched; the best-ranked feasible path over all is returned.

    >>> sorted(load_procedures().procedures)
    ['biopsy', 'drainage', 'nerve-block']
    """
    from .trajectories import find_trajectories, target_from_label

    table = load_procedures()
    if procedure not in table.procedures:
        raise InputError(f"unknown procedure {procedure!r}; one of {', '.join(table.procedures)}", field="--procedure")
    prof = table.procedures[procedure]
    opt = options or PathOptions()
    target_label = None
    if target is None:
        target_label = find_target_label(labels, prof)
    elif isinstance(target, str):
        target_label = target
    tgt = target_from_label(labels, target_label) if target_label is not None else np.asarray(target, float)
    gauge = opt.needle_gauge or prof.needle_gauge
    length = opt.needle_length_mm or prof.needle_length_mm
    french = opt.catheter_french if opt.catheter_french is not None else prof.catheter_french
    notes = []
    diameter = None
    if french is not None:
        from .policy import needle_diameter_mm

        cat = french_diameter_mm(french)
        if cat > needle_diameter_mm(gauge):  # the catheter follows the track: keep-aways from its surface
            diameter = cat
            notes.append(f"{french:g} Fr catheter ({cat:.2f} mm) wider than the {gauge} G needle: keep-aways are "
                         "measured from the catheter's surface")
    positions = [opt.position] if opt.position else list(prof.positions)
    best: tuple[float, str, TrajectoryResult] | None = None
    tried: dict[str, str] = {}
    for pos in positions:
        pol = procedure_policy(prof, pos, gauge)
        if diameter is not None:
            pol = pol.model_copy(update={"needle_diameter_mm": diameter})
        try:
            res = find_trajectories(labels, tgt, pol, length, opt.n_directions, body_mask=body_mask,
                                    keep_away=opt.keep_away or None)
        except OpenIRError as exc:
            tried[pos] = f"no feasible path: {exc}"
            continue
        top = res.shortlist[0]
        tried[pos] = (f"{res.n_feasible} feasible; best {top.length_mm:.0f} mm, score {top.score:.3f}")
        if best is None or top.score < best[0]:
            best = (top.score, pos, res)
    if best is None:
        raise InputError(f"no feasible {procedure} path in any position tried: "
                         + "; ".join(f"{k}: {v}" for k, v in tried.items()), field="target")
    _, pos, res = best
    top = res.shortlist[0]
    return PathPlan(procedure=procedure, title=prof.title, target_lps=tuple(float(v) for v in tgt), position=pos,
                    needle_gauge=gauge, needle_length_mm=float(length), catheter_french=french,
                    catheter_diameter_mm=french_diameter_mm(french) if french is not None else None,
                    best=top, result=res, positions_tried=tried,
                    risk_factors=_risk_lines(prof, top, labels, target_label), profile_version=table.version,
                    notes=notes + list(res.notes))
