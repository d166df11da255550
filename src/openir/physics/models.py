"""Pydantic models of what crosses the physics border: simulation requests and results.

A request's ``probes`` list is the same shape the plan JSON will carry, so a plan can be simulated
directly (``openir simulate PLAN.json``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openir.core.enums import AblationModality

SourceKind = Literal["microwave", "radiofrequency", "laser", "cryo"]
Modality = AblationModality
Criterion = Literal["cem43", "arrhenius", "isotherm", "efield"]


class ScheduleStep(BaseModel):
    """One step of a power/time schedule: ``duration_s`` at ``power_w`` (0 = off; cryo: 1 = freeze)."""

    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(gt=0)
    power_w: float = Field(ge=0)


class ProbeSource(BaseModel):
    """One probe of a simulation (plan JSON compatible). Positions in LPS mm."""

    model_config = ConfigDict(extra="ignore")
    device: str = Field(min_length=1, description="device id, e.g. 'emprint' (see source_calibration.yaml)")
    kind: SourceKind | None = Field(default=None, description="source model for a device without a preset")
    modality: str | None = Field(default=None, description="plan JSON: the probe's modality (microwave, ..., ire)")
    group: int | None = Field(default=None, description="plan JSON: probes of one group act together")
    array_position: int | None = Field(default=None, ge=1, description="plan JSON: 1 = deepest array position, "
                                       ">1 after pull-backs (activated after the positions before it)")
    exposure_mm: float | None = Field(default=None, gt=0, description="RF/IRE exposed length")
    isotherm_c: float | None = Field(default=None, le=0, description="cryo lethal isotherm")
    spacing_mm: float | None = Field(default=None, gt=0, description="IRE: distance to the paired electrode")
    voltage_v: float | None = Field(default=None, gt=0, description="IRE: pair voltage (default: 1500 V/cm x distance)")
    power_w: float | None = Field(default=None, ge=0, description="generator setting; None = the device preset's")
    time_s: float | None = Field(default=None, gt=0, description="ablation time; None = the device preset's")
    tip_lps: tuple[float, float, float]
    direction_lps: tuple[float, float, float] = Field(description="unit insertion direction, entry -> tip")
    source_scale: float | None = Field(default=None, gt=0, description="absorbed fraction override")
    schedule: list[ScheduleStep] | None = Field(default=None, description="overrides power_w/time_s")

    @field_validator("direction_lps")
    @classmethod
    def _unit(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        n = float(np.linalg.norm(v))
        if not np.isfinite(n) or abs(n - 1.0) > 1e-3:
            raise ValueError(f"direction must be a unit vector (entry -> tip), got length {n:.4g}")
        return (v[0] / n, v[1] / n, v[2] / n)


class SimulationRequest(BaseModel):
    """Input of ``openir simulate``: probes, optionally the case's label map, and numerics."""

    model_config = ConfigDict(extra="ignore")
    probes: list[ProbeSource] = Field(min_length=1)
    ct: str | None = None
    labels: str | None = Field(default=None, description="label map (NIfTI/NRRD); none = homogeneous liver")
    label_names: dict[int, str] | None = Field(default=None, description="label value -> name, if the file has none")
    spacing_mm: float = Field(default=1.0, gt=0.2, le=5.0)
    box_mm: float = Field(default=120.0, gt=10, description="edge of the simulated cube around the probes")
    output_times_s: list[float] | None = Field(default=None, description="snapshot times (default: 6 steps)")
    criterion: Criterion | None = Field(default=None, description="lethal criterion (default: cem43; cryo: isotherm)")
    calibration: str | None = Field(default=None, description="path of a source_calibration.yaml to use")
    cooldown_s: float = Field(default=0.0, ge=0, description="simulated time after the last probe stops")


class ZoneSnapshot(BaseModel):
    """Lethal zone of the first probe at one time."""

    time_s: float
    length_mm: float
    width_mm: float
    volume_ml: float
    max_temperature_c: float
    min_temperature_c: float


class ProbeModel(BaseModel):
    """Which physics model simulated a probe, and whether it is calibrated for that device."""

    probe: int = Field(description="1-based index in the request")
    device: str
    modality: str
    model: str = Field(description="source preset or array model used, e.g. 'emprint', 'generic_cryo', 'ire field'")
    calibrated: bool
    note: str = ""


class ArrayZoneSummary(BaseModel):
    """Extent of the whole lethal zone of all probes together (array frame; see arrays.ArrayDims)."""

    along_mm: float
    across1_mm: float
    across2_mm: float
    centre_offset_mm: float
    volume_ml: float


class Activation(BaseModel):
    """Probes switched on together (one group / array position of a plan) and when."""

    group: int | None = None
    array_position: int | None = None
    probes: list[int] = Field(description="1-based probe indices in the request")
    start_s: float = Field(0.0, description="thermal/cryo: start in the simulated sequence")
    end_s: float = 0.0


class SimulationResult(BaseModel):
    """What a simulation predicts and how it was computed."""

    modality: str = "microwave"
    probe_models: list[ProbeModel] = Field(default_factory=list)
    activations: list[Activation] = Field(default_factory=list, description="in the order simulated")
    sequence: Literal["simultaneous", "sequential", "separate"] = Field(
        "simultaneous", description="one activation; activations one after another on one grid (thermal, "
        "cryo); or each alone and the lethal zones united (IRE)")
    array_zone: ArrayZoneSummary | None = Field(default=None, description="all probes together")
    peak_field_v_cm: float | None = None
    max_temperature_c: float | None = None
    criterion: Criterion
    threshold: float
    threshold_source: str
    zones: list[ZoneSnapshot]
    final_length_mm: float
    final_width_mm: float
    final_volume_ml: float
    final_radii_mm: list[float] = Field(description="zone extent in 8 directions around the first probe")
    spacing_mm: float
    grid_shape_kji: tuple[int, int, int]
    method: str
    dt_s: float
    dt_limit_s: float
    n_steps: int
    runtime_s: float
    notes: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)


class CalibrationResult(BaseModel):
    """Source parameters fitted so the simulated zone matches a device's table in homogeneous liver."""

    device: str
    kind: SourceKind
    power_w: float
    time_s: float
    target_semi_axes_mm: tuple[float, float]
    target_source: str
    fitted: dict[str, float]
    achieved_semi_axes_mm: tuple[float, float]
    spacing_mm: float
    criterion: Criterion
    evaluations: int
    runtime_s: float


class HeatSinkResult(BaseModel):
    """Zone of one antenna in homogeneous liver and beside a large vessel (same source)."""

    vessel_diameter_mm: float
    vessel_axis_distance_mm: float
    velocity_m_s: float
    wall_h_w_m2_k: float
    homogeneous: ZoneSnapshot
    with_vessel: ZoneSnapshot
    radius_towards_vessel_mm: tuple[float, float] = Field(description="homogeneous, beside the vessel")
    radius_away_mm: tuple[float, float] = Field(description="homogeneous, beside the vessel")
    volume_shrinkage_pct: float
