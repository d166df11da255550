"""The plan-scoring rubric (``data/rubric.yaml``): clinical thresholds with their sources, point
weights marked as teaching policy."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import load_packaged, load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourcedValue(_Strict):
    value: float
    source: str = Field(min_length=3)


class SourcedRule(_Strict):
    source: str = Field(min_length=3)


class Thresholds(_Strict):
    margin_mm: SourcedValue
    required_coverage_pct: SourcedValue
    must_spare: SourcedRule
    path_policy: SourcedRule


class Coverage(_Strict):
    points: float = Field(ge=0)
    lost_per_pct: float = Field(ge=0)


class Margin(_Strict):
    points: float = Field(ge=0)


class MustSpare(_Strict):
    points: float = Field(ge=0)
    lost_per_structure: float = Field(ge=0)
    tolerance_ml: float = Field(ge=0)


class PathRisk(_Strict):
    points: float = Field(ge=0)
    lost_per_path: float = Field(ge=0)


class ProbeCount(_Strict):
    points: float = Field(ge=0)
    lost_per_extra_probe: float = Field(ge=0)


class ProcedureTime(_Strict):
    points: float = Field(ge=0)
    allowed_ratio: float = Field(ge=1)
    lost_per_10pct_over: float = Field(ge=0)


class Criteria(_Strict):
    target_coverage: Coverage
    tumour_coverage: Coverage
    min_margin: Margin
    must_spare: MustSpare
    path_risk: PathRisk
    probe_count: ProbeCount
    procedure_time: ProcedureTime


class PerPct(_Strict):
    points: float = Field(ge=0)
    lost_per_pct: float = Field(ge=0)


class OrganLimits(_Strict):
    points: float = Field(ge=0)
    lost_per_organ: float = Field(ge=0)


class NeedleCount(_Strict):
    points: float = Field(ge=0)
    lost_per_extra_needle: float = Field(ge=0)


class SeedCount(_Strict):
    points: float = Field(ge=0)
    lost_per_extra_seed: float = Field(ge=0)
    tolerance_pct: float = Field(ge=0)


class SeedCriteria(_Strict):
    """Seed-plan criteria: weights only (teaching policy); thresholds come from the seeds site protocol."""

    weights_source: str = Field(min_length=3)
    thresholds_source: str = Field(min_length=3)
    d90: PerPct
    v100: PerPct
    v150: PerPct
    organ_limits: OrganLimits
    path_risk: PathRisk
    needle_count: NeedleCount
    seed_count: SeedCount


class Rubric(_Strict):
    rubric_version: str
    weights_source: str = Field(min_length=3)
    thresholds: Thresholds
    criteria: Criteria
    pass_pct: float = Field(ge=0, le=100)
    seeds: SeedCriteria | None = None


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The packaged rubric, or ``path`` (a centre's own); a bad file names the file and the field.

    >>> r = load_rubric()
    >>> r.thresholds.margin_mm.value, r.criteria.target_coverage.points
    (5.0, 30.0)
    """
    if path is None:
        return load_packaged(Rubric, "openir.training", "data/rubric.yaml")
    return load_yaml_model(Rubric, path)
