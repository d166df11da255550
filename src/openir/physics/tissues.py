"""Tissue thermal properties, thresholds and dose constants, loaded from ``data/tissues.yaml``.

The numbers are clinical/physical data that experts edit, so they live in YAML with a source beside
each value; this module validates the file (errors name the file and field) and turns label maps
into per-voxel property arrays for the solver.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openir.core.datafiles import Sourced, load_yaml_model
from openir.core.errors import DataFileError
from openir.core.labels import LabelMap, normalise_label_name

DATA_DIR = Path(__file__).with_name("data")
TISSUES_YAML = DATA_DIR / "tissues.yaml"


class SourcedName(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str
    source: str = Field(min_length=3)


class Positive(Sourced):
    @field_validator("value")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be > 0")
        return v


class NonNegative(Sourced):
    @field_validator("value")
    @classmethod
    def _nonneg(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be >= 0")
        return v


class TissueProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    density_kg_m3: Positive
    heat_capacity_j_kg_k: Positive
    conductivity_w_m_k: Positive
    perfusion_1_s: NonNegative

    @property
    def volumetric_heat_capacity(self) -> float:
        """rho * c in J/m^3/K."""
        return self.density_kg_m3.value * self.heat_capacity_j_kg_k.value


class BloodProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    density_kg_m3: Positive
    heat_capacity_j_kg_k: Positive
    conductivity_w_m_k: Positive
    viscosity_pa_s: Positive
    arterial_temperature_c: Sourced


class VesselFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    velocity_m_s: float = Field(gt=0)
    source: str = Field(min_length=3)


class Shutdown(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature_c: Sourced
    damage: Positive


class Freezing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    solidus_c: Sourced
    liquidus_c: Sourced
    latent_heat_j_m3: NonNegative
    frozen_conductivity_w_m_k: Positive
    frozen_heat_capacity_j_m3_k: Positive
    lethal_isotherm_c: Sourced


class TemperatureDependence(BaseModel):
    """Published temperature dependence of unfrozen tissue properties (tissues.yaml)."""

    model_config = ConfigDict(extra="forbid")
    conductivity_slope_per_c: NonNegative
    conductivity_reference_c: Sourced
    conductivity_cap_c: Sourced


class ThermalDoseConsts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r_above_43: Positive
    r_below_43: Positive
    lethal_cem43_min: Positive


class ArrheniusParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frequency_factor_1_s: Positive
    activation_energy_j_mol: Positive


class ArrheniusConsts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    liver: ArrheniusParams
    lethal_damage: Positive
    integration_floor_c: Sourced


class TissueTable(BaseModel):
    """The validated content of physics/data/tissues.yaml: thermal properties, thresholds, dose constants.

    (The phantom's CT numbers are a different table: ``openir.phantom.tissues.CtNumberTable``.)
    """

    model_config = ConfigDict(extra="forbid")
    version: int
    blood: BloodProps
    tissues: dict[str, TissueProps]
    label_tissue: dict[str, str]
    default_tissue: SourcedName
    vessels: dict[str, VesselFlow]
    perfusion_shutdown: Shutdown
    freezing: Freezing
    temperature_dependence: TemperatureDependence | None = None
    thermal_dose: ThermalDoseConsts
    arrhenius: ArrheniusConsts

    def tissue(self, name: str) -> TissueProps:
        try:
            return self.tissues[name]
        except KeyError:
            raise DataFileError(
                f"tissue {name!r} not in the tissue table; known: {', '.join(sorted(self.tissues))}"
            ) from None

    @property
    def blood_heat_capacity_vol(self) -> float:
        return self.blood.density_kg_m3.value * self.blood.heat_capacity_j_kg_k.value

    def perfusion_w_m3_k(self, name: str) -> float:
        """Pennes coefficient w_b * rho_b * c_b in W/m^3/K."""
        return self.tissue(name).perfusion_1_s.value * self.blood_heat_capacity_vol


def load_tissue_table(path: str | Path | None = None) -> TissueTable:
    """Read and validate a tissue YAML (the packaged one by default)."""
    if path is None:
        return _packaged()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _packaged() -> TissueTable:
    return _load(TISSUES_YAML)


def _load(path: Path) -> TissueTable:
    table = load_yaml_model(TissueTable, path)
    for label, tissue in table.label_tissue.items():
        if tissue not in table.tissues:
            raise DataFileError(f"{path} [label_tissue.{label}]: unknown tissue {tissue!r}")
    if table.default_tissue.value not in table.tissues:
        raise DataFileError(f"{path} [default_tissue]: unknown tissue {table.default_tissue.value!r}")
    return table


def tissue_for_label(name: str, table: TissueTable | None = None) -> str | None:
    """Tissue name for a label name; ``None`` for large vessels; default tissue when unknown.

    Prefix matching lets 'tumour_1', 'liver_segment_4' or 'kidney_left' map without listing each.
    """
    t = table or load_tissue_table()
    n = normalise_label_name(name)
    if vessel_for_label(n, t) is not None:
        return None
    if n in t.label_tissue:
        return t.label_tissue[n]
    for key in sorted(t.label_tissue, key=len, reverse=True):
        if n.startswith(key):
            return t.label_tissue[key]
    return t.default_tissue.value


def vessel_for_label(name: str, table: TissueTable | None = None) -> str | None:
    t = table or load_tissue_table()
    n = normalise_label_name(name)
    for key in sorted(t.vessels, key=len, reverse=True):
        if n == key or n.startswith(key):
            return key
    return None


def tissue_index_map(labels: LabelMap, table: TissueTable | None = None) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """Per-voxel tissue index, the tissue names, and one mask per large-vessel label.

    Background (0) and unknown labels get the table's default tissue.
    """
    t = table or load_tissue_table()
    names = sorted(t.tissues)
    idx_of = {n: i for i, n in enumerate(names)}
    default = idx_of[t.default_tissue.value]
    lut = np.full(int(labels.array.max()) + 1, default, dtype=np.int16)
    vessels: dict[str, np.ndarray] = {}
    for value, lname in labels.labels.items():
        if value >= lut.size:
            continue
        tissue = tissue_for_label(lname, t)
        if tissue is None:
            vessels[lname] = labels.array == value
        else:
            lut[value] = idx_of[tissue]
    return lut[labels.array], names, vessels
