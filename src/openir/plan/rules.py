"""The planning data files: modality rules (``data/modality_rules.yaml``) and margins / safety
structures (``data/margins.yaml``), validated on load so a bad entry is named by file and field."""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openir.core import normalise_label_name
from openir.core.datafiles import load_yaml_model
from openir.core.enums import ABLATION_MODALITIES

MODALITIES = ABLATION_MODALITIES


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organ: list[str] | None = None
    min_diameter_mm: float | None = Field(None, ge=0)
    max_diameter_mm: float | None = Field(None, gt=0)
    near: list[str] | None = None
    tumour_type: list[str] | None = None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    when: Condition = Field(default_factory=Condition)
    points: dict[str, float] = Field(default_factory=dict)
    flag: str | None = None
    reason: str
    source: str
    verified: bool = False

    @property
    def project_default(self) -> bool:
        return self.source.strip().lower().startswith("project default")


class Tradeoff(BaseModel):
    """How the planned modalities of one tumour are weighed (points added to the rule score)."""

    model_config = ConfigDict(extra="forbid")
    consider_within_points: float = Field(..., ge=0)
    full_coverage_points: float = Field(..., ge=0)
    coverage_points_per_pct: float = Field(..., ge=0)
    coverage_tolerance_pct: float = Field(..., gt=0)
    points_per_extra_probe: float = Field(..., le=0)
    points_per_structure_touched: float = Field(..., le=0)
    points_per_heat_sink_vessel: float = Field(..., le=0)
    evidence_points: dict[str, float]
    source: str


class ModalityRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules_version: str
    modalities: list[str]
    structure_classes: dict[str, list[str]]
    organs: dict[str, list[str]]
    rules: list[Rule]
    tradeoff: Tradeoff

    @model_validator(mode="after")
    def _check(self):
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modalities {bad}; known: {list(MODALITIES)}")
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique")
        for r in self.rules:
            for m in r.points:
                if m not in self.modalities:
                    raise ValueError(f"rule {r.id}: points for unknown modality {m!r}")
            for c in r.when.near or []:
                if c not in self.structure_classes:
                    raise ValueError(f"rule {r.id}: unknown structure class {c!r}")
            for o in r.when.organ or []:
                if o not in self.organs and o != "soft_tissue":
                    raise ValueError(f"rule {r.id}: unknown organ class {o!r}")
            if not r.source.strip():
                raise ValueError(f"rule {r.id}: empty source (write 'project default')")
        return self


class OrganMargin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    margin_mm: float = Field(..., ge=0)
    clip_to_organ: bool = False
    source: str


class MustSpare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    labels: list[str]


class MarginTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    margins_version: str
    default: OrganMargin
    organs: dict[str, OrganMargin] = Field(default_factory=dict)
    uncertainty_mm: float = Field(..., ge=0)
    uncertainty_source: str
    required_coverage: float = Field(..., gt=0, le=1)
    required_coverage_source: str
    heat_sink_min_diameter_mm: float = Field(..., gt=0)
    heat_sink_source: str
    near_mm: float = Field(..., gt=0)
    near_source: str
    must_spare: MustSpare
    vessels: list[str]

    def for_organ(self, organ: str) -> OrganMargin:
        return self.organs.get(organ, self.default)


def matches(name: str, patterns: list[str]) -> bool:
    n = normalise_label_name(name)
    return any(fnmatch(n, normalise_label_name(p)) for p in patterns)


def _data(name: str) -> Path:
    return Path(str(resources.files("openir.plan") / "data" / name))


def _load_yaml(p: Path, model):
    return load_yaml_model(model, p)


@lru_cache(maxsize=8)
def _rules(path: str) -> ModalityRules:
    return _load_yaml(Path(path), ModalityRules)


@lru_cache(maxsize=8)
def _margins(path: str) -> MarginTable:
    return _load_yaml(Path(path), MarginTable)


def load_modality_rules(path: str | Path | None = None) -> ModalityRules:
    """Load and validate the modality rules (default: the packaged file)."""
    return _rules(str(path or _data("modality_rules.yaml")))


def load_margins(path: str | Path | None = None) -> MarginTable:
    """Load and validate the margin / safety table (default: the packaged file)."""
    return _margins(str(path or _data("margins.yaml")))
