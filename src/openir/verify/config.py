"""Packaged verification thresholds and terminology, validated on load.

Numbers that decide a verdict live in ``data/*.yaml`` beside their sources; this module reads them
once and names the file and field when one is wrong.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, field_validator

from openir.core.datafiles import load_yaml_model


class Sourced(BaseModel):
    value: float | list[float]
    source: str

    @field_validator("source")
    @classmethod
    def _has_source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("every value needs a source (or 'OpenIR project default')")
        return v


class MarginSettings(BaseModel):
    shell_mm: Sourced
    histogram_edges_mm: Sourced
    capsule_exclusion_mm: Sourced
    vessel_exclusion_mm: Sourced
    complete_tolerance_mm: Sourced
    smoothing_factor: Sourced
    sharpness_sigma_mm: Sourced
    sharpness_threshold: Sourced


class RegistrationSettings(BaseModel):
    min_organ_dice: Sourced
    max_mean_surface_distance_mm: Sourced
    min_image_similarity: Sourced
    max_landmark_tre_mm: Sourced
    min_overlap_fraction: Sourced


class VerificationConfig(BaseModel):
    version: int
    margins: MarginSettings
    registration: RegistrationSettings


class MarginClass(BaseModel):
    name: str
    upper_mm: float | None
    source: str


class Term(BaseModel):
    definition: str
    source: str


class Terminology(BaseModel):
    version: int
    terms: dict[str, Term]
    margin_classes: list[MarginClass]

    @field_validator("margin_classes")
    @classmethod
    def _ordered(cls, v: list[MarginClass]) -> list[MarginClass]:
        bounds = [c.upper_mm for c in v]
        if not v or bounds[-1] is not None or None in bounds[:-1]:
            raise ValueError("the last margin class (and only it) must be open-ended (upper_mm: null)")
        if any(b2 <= b1 for b1, b2 in zip(bounds[:-2], bounds[1:-1], strict=False)):
            raise ValueError("margin class bounds must increase")
        return v


def _load(model: type[BaseModel], path: Path | None, name: str) -> BaseModel:
    src = path if path is not None else resources.files("openir.verify") / "data" / name
    return load_yaml_model(model, Path(str(src)))


@lru_cache(maxsize=4)
def load_config(path: Path | None = None) -> VerificationConfig:
    """Thresholds from ``data/verification.yaml`` (or ``path``)."""
    return _load(VerificationConfig, path, "verification.yaml")  # type: ignore[return-value]


@lru_cache(maxsize=4)
def load_terminology(path: Path | None = None) -> Terminology:
    """Terms and margin classes from ``data/terminology.yaml`` (or ``path``)."""
    return _load(Terminology, path, "terminology.yaml")  # type: ignore[return-value]
