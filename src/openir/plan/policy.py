"""Trajectory policy: which structures a needle must not cross, keep away from, or may cross.

Policies are YAML (``data/trajectory_policy.yaml`` is the default) validated on load; structure
entries match label names by glob patterns, so the same policy serves the OpenIR phantom and
TotalSegmentator-style label maps.
"""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openir.core import LabelMap, normalise_label_name
from openir.core.datafiles import load_yaml_model
from openir.core.errors import InputError, UnknownLabelError

Cross = Literal["forbid", "allow", "count"]
Position = Literal["supine", "prone", "left_lateral", "right_lateral", "any"]
TARGET_PREFIXES = ("tumour", "tumor", "lesion", "target")

# The direction (LPS) that points down to the table for each patient position: the needle cannot be
# inserted from there. Left lateral decubitus = lying on the left side (left side down).
TABLE_DOWN_LPS: dict[str, tuple[float, float, float]] = {
    "supine": (0.0, 1.0, 0.0), "prone": (0.0, -1.0, 0.0),
    "left_lateral": (1.0, 0.0, 0.0), "right_lateral": (-1.0, 0.0, 0.0)}


class StructureRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cross: Cross = "forbid"
    margin_mm: float = Field(0.0, ge=0)
    capsule: bool = False
    labels: list[str] = Field(default_factory=list)
    kind: str | None = Field(None, description="structure class for the keep-away table (vessel, bone, ...)")


class KeepAway(BaseModel):
    """Default keep-away distance of a structure class, with where the number comes from."""

    model_config = ConfigDict(extra="forbid")
    mm: float = Field(..., ge=0)
    source: str = Field(..., min_length=3)


class EntrySides(BaseModel):
    """Which skin the needle may enter through for a patient position."""

    model_config = ConfigDict(extra="forbid")
    max_below_horizontal_deg: float = Field(
        20.0, ge=0, le=90, description="entry may point at most this far down toward the table")
    source: str = "project default"


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    length: float = 1.0
    clearance: float = 1.0
    axial_angle: float = 0.5
    skin_angle: float = 0.25
    capsules: float = 0.5
    counted: float = 2.0
    counted_length: float = 0.0  # per reference length (clearance_reference_mm) inside counted structures
    fissures: float = 0.0


class TrajectoryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy_version: str = "custom"
    unlisted: Cross = "forbid"
    clearance_cap_mm: float = Field(30.0, gt=0)
    max_counted_crossings: dict[str, int] = Field(default_factory=dict)
    structures: dict[str, StructureRule] = Field(default_factory=dict)
    weights: Weights = Field(default_factory=Weights)
    clearance_reference_mm: float = Field(10.0, gt=0)
    keep_away_by_kind: dict[str, KeepAway] = Field(default_factory=dict)
    needle_gauge: int | None = Field(None, ge=7, le=34, description="default needle gauge (ISO 9626 outer diameter)")
    needle_diameter_mm: float | None = Field(
        None, gt=0, description="outer diameter overriding the gauge (e.g. a catheter following the needle)")
    patient_position: Position = "any"
    target_labels: list[str] = Field(
        default_factory=list, description="extra glob patterns of target labels (e.g. nodule*, abscess*): "
                                          "never risk structures, transparent for crossing counts")

    def is_target(self, name: str) -> bool:
        n = normalise_label_name(name)
        return is_target_label(n) or any(fnmatch(n, normalise_label_name(p)) for p in self.target_labels)
    entry_sides: EntrySides = Field(default_factory=EntrySides)

    def margin_for(self, rule: StructureRule) -> float:
        """The keep-away (mm) of a structure: its own margin or its class default, whichever is larger."""
        ka = self.keep_away_by_kind.get(rule.kind or "")
        return max(rule.margin_mm, ka.mm if ka else 0.0)

    def with_keep_away(self, margins: dict[str, float]) -> TrajectoryPolicy:
        """A copy with extra keep-away margins (structure name -> mm); unknown names are added."""
        out = self.model_copy(deep=True)
        for name, mm in margins.items():
            key = normalise_label_name(name)
            rule = out.structures.get(key) or StructureRule(cross=out.unlisted, labels=[key])
            out.structures[key] = rule.model_copy(update={"margin_mm": float(mm)})
        return out

    def with_rules(self, **rules: Cross) -> TrajectoryPolicy:
        out = self.model_copy(deep=True)
        for name, cross in rules.items():
            key = normalise_label_name(name)
            rule = out.structures.get(key) or StructureRule(labels=[key])
            out.structures[key] = rule.model_copy(update={"cross": cross})
        return out


def _default_path() -> Path:
    return Path(str(resources.files("openir.plan") / "data" / "trajectory_policy.yaml"))


@lru_cache(maxsize=8)
def _load(path: str) -> TrajectoryPolicy:
    return load_yaml_model(TrajectoryPolicy, Path(path))


def load_policy(path: str | Path | None = None) -> TrajectoryPolicy:
    """Load and validate a trajectory policy (default: the packaged one)."""
    return _load(str(Path(path) if path is not None else _default_path())).model_copy(deep=True)


def is_target_label(name: str) -> bool:
    n = normalise_label_name(name)
    return n.startswith(TARGET_PREFIXES)


class ResolvedStructure(BaseModel):
    name: str
    values: list[int]
    rule: StructureRule


def resolve(policy: TrajectoryPolicy, labels: LabelMap, present: set[int] | None = None,
            strict_names: tuple[str, ...] = ()) -> tuple[list[ResolvedStructure], list[str]]:
    """Group the label map's values into policy structures.

    Each label joins the first structure whose patterns match it; unmatched, non-target labels
    become their own structure with the ``unlisted`` rule. ``strict_names`` must each match a label
    (they came from the user), else UnknownLabelError. Returns structures and notes.
    """
    notes: list[str] = []
    for name in strict_names:
        key = normalise_label_name(name)
        rule = policy.structures.get(key)
        pats = (rule.labels if rule and rule.labels else [key])
        if not any(fnmatch(normalise_label_name(n), p) for n in labels.names for p in pats):
            raise UnknownLabelError(name, labels.names)
    groups: dict[str, ResolvedStructure] = {}
    for value in sorted(labels.labels):
        if present is not None and value not in present:
            continue
        lname = normalise_label_name(labels.labels[value])
        if policy.is_target(lname):
            continue
        for key, rule in policy.structures.items():
            pats = rule.labels or [key]
            if any(fnmatch(lname, normalise_label_name(p)) for p in pats):
                groups.setdefault(key, ResolvedStructure(name=key, values=[], rule=rule)).values.append(value)
                break
        else:
            groups[lname] = ResolvedStructure(name=lname, values=[value],
                                              rule=StructureRule(cross=policy.unlisted))
            notes.append(f"label {lname!r} is not in the policy: treated as {policy.unlisted}")
    return list(groups.values()), notes


class NeedleTable(BaseModel):
    """Gauge -> nominal outer diameter (mm), ISO 9626 (``data/needles.yaml``)."""

    model_config = ConfigDict(extra="forbid")
    version: str
    source: str
    gauges: dict[int, float]


@lru_cache(maxsize=1)
def load_needles() -> NeedleTable:
    return load_yaml_model(NeedleTable, Path(str(resources.files("openir.plan") / "data" / "needles.yaml")))


def needle_diameter_mm(gauge: int | None) -> float:
    """Nominal outer diameter of a ``gauge`` needle (ISO 9626); 0 for ``None`` (a line, no body).

    >>> needle_diameter_mm(17)
    1.47
    """
    if gauge is None:
        return 0.0
    table = load_needles().gauges
    if int(gauge) not in table:
        raise InputError(f"needle gauge {gauge} G is not in the ISO 9626 table (have {min(table)}-{max(table)} G)",
                         field="needle_gauge")
    return float(table[int(gauge)])


def french_diameter_mm(french: float) -> float:
    """Outer diameter of a catheter of ``french`` Fr (Charriere: 1 Fr = 1/3 mm)."""
    return float(french) / 3.0
