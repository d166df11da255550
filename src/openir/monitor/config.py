"""Thermometry constants, vendor phase conventions and structure limits from ``data/thermometry.yaml``.

Experts edit these numbers, so they live in YAML with their sources; this module validates the file
and names the file and field on any error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openir.core.datafiles import Sourced, load_yaml_model
from openir.core.errors import DataFileError

THERMOMETRY_YAML = Path(__file__).with_name("data") / "thermometry.yaml"


class TissueNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prf_valid: bool
    prf_coefficient_ppm_c: Sourced | None = None
    note: str = ""


class VendorPhase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full_scale: float = Field(gt=0)
    source: str = Field(min_length=3)


PROJECT_DEFAULT = "project default (unsourced)"


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_c: float = Field(gt=30, lt=120)
    source: str = Field(min_length=3)

    @property
    def project_default(self) -> bool:
        """True for a limit no publication backs (its source starts with "project default (unsourced)")."""
        return self.source.lower().startswith(PROJECT_DEFAULT)


class KindRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    patterns: list[str] = Field(min_length=1)


class StructureKinds(BaseModel):
    """Label name -> limit kind, for organs at risk taken from an ablation plan."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=3)
    default_kind: str
    rules: list[KindRule]
    prf_invalid: list[str] = Field(default_factory=list)


class ThermometryTable(BaseModel):
    """The validated content of thermometry.yaml."""

    model_config = ConfigDict(extra="forbid")
    version: str
    gyromagnetic_ratio_mhz_t: Sourced
    prf_coefficient_ppm_c: Sourced
    body_temperature_c: Sourced
    tissues: dict[str, TissueNote]
    vendors: dict[str, VendorPhase]
    coverage_to_stop: Sourced
    limits: dict[str, Limit]
    structure_kinds: StructureKinds

    @model_validator(mode="after")
    def _kinds_known(self) -> ThermometryTable:
        sk = self.structure_kinds
        for k in [sk.default_kind, *(r.kind for r in sk.rules)]:
            if k not in self.limits:
                raise ValueError(f"structure_kinds names limit kind {k!r}, not in limits ({', '.join(sorted(self.limits))})")
        return self

    def limit(self, kind: str) -> Limit:
        if kind not in self.limits:
            raise DataFileError(f"no temperature limit for structure kind {kind!r}; known: {', '.join(sorted(self.limits))}")
        return self.limits[kind]


def load_thermometry(path: str | Path | None = None) -> ThermometryTable:
    """Read and validate a thermometry YAML (the packaged one by default)."""
    return _packaged() if path is None else _load(Path(path))


@lru_cache(maxsize=1)
def _packaged() -> ThermometryTable:
    return _load(THERMOMETRY_YAML)


def _load(path: Path) -> ThermometryTable:
    return load_yaml_model(ThermometryTable, path)
