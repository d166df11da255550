"""Results of the monitor package that cross package borders (events, frame summaries, plan input).

Arrays stay in plain dataclasses (`MRFrame`, `FrameResult`); what is written as JSON (the event log,
per-frame summaries, the monitoring plan) is pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openir.core.volume import Grid

EventKind = Literal["limit_exceeded", "limit_cleared", "target_covered", "baseline", "frame_skipped",
                    "monitoring_degraded", "monitoring_restored", "info"]
Severity = Literal["info", "warning", "critical"]


class Event(BaseModel):
    """One line of the monitoring event log (JSON lines)."""

    time_s: float
    frame: int
    kind: EventKind
    severity: Severity = "info"
    structure: str | None = None
    value: float | None = None
    limit: float | None = None
    message: str


class PointCurve(BaseModel):
    """Temperature and dose over time at one chosen point."""

    name: str
    lps: tuple[float, float, float]
    times_s: list[float] = Field(default_factory=list)
    temperature_c: list[float] = Field(default_factory=list)
    cem43_min: list[float] = Field(default_factory=list)


class FrameSummary(BaseModel):
    """What one processed frame says, for logs, JSON output and the live view."""

    frame: int
    time_s: float
    baseline_index: int
    drift_rad: float = Field(description="mean drift phase removed over the reference region")
    max_temperature_c: float
    target_coverage: float | None = Field(
        description="fraction of target voxels with a lethal dose; None without a target (no coverage is claimed)")
    lethal_volume_ml: float
    structure_max_c: dict[str, float] = Field(default_factory=dict)
    median_sigma_c: float
    processing_ms: float
    skipped: bool = Field(False, description="the frame could not be used (see note and the events)")
    masked_voxels: int = Field(0, description="monitored voxels unusable in this frame (NaN, Inf, low signal, isolated)")
    wraps_corrected: int = Field(0, description="voxels moved back by a phase wrap against their neighbours")
    note: str = ""


class MonitorStructure(BaseModel):
    """A structure in the monitoring plan: a label of the plan's label map and its role."""

    model_config = ConfigDict(extra="forbid")
    label: str
    role: Literal["target", "organ_at_risk", "reference", "fat"]
    kind: str | None = Field(None, description="limit kind in thermometry.yaml (organs at risk)")
    max_c: float | None = Field(None, description="override of the YAML limit (°C)")
    margin_mm: float = Field(0.0, ge=0, description="target margin added to the label")


class StructureInfo(BaseModel):
    """One monitored structure as placed on the MR grid (written to ``structures.json``)."""

    name: str
    role: Literal["target", "organ_at_risk", "reference", "fat"]
    kind: str | None = Field(None, description="limit kind in thermometry.yaml (organs at risk)")
    max_c: float | None = None
    source: str | None = Field(None, description="source of the limit")
    voxels: int = Field(description="voxels on the MR grid")
    volume_ml: float = 0.0
    note: str = ""


class MonitorPlan(BaseModel):
    """What `openir thermo watch --plan PLAN.json` reads: structures and where they are.

    ``labels`` is a label-map file (NIfTI, NRRD, DICOM SEG...) in the patient frame; it is resampled
    onto the MR grid with ``mr_from_plan`` (4x4 LPS->LPS, identity when the MR and the plan share a
    frame of reference, or the result of a registration).
    """

    model_config = ConfigDict(extra="forbid")
    labels: str
    structures: list[MonitorStructure]
    mr_from_plan: list[list[float]] | None = None
    points: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    criterion: Literal["cem43", "arrhenius"] = "cem43"
    drift_order: int = Field(1, ge=0, le=2)
    frame_period_s: float | None = Field(None, gt=0)


@dataclass
class MRFrame:
    """One multi-slice MR frame: magnitude and phase (radians) on ``grid``, arrays ``[k, j, i]``."""

    magnitude: np.ndarray
    phase: np.ndarray
    grid: Grid
    te_ms: float
    b0_t: float
    time_s: float
    index: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def complex(self) -> np.ndarray:
        return (self.magnitude * np.exp(1j * self.phase)).astype(np.complex64)


@dataclass
class SkippedFrame:
    """A frame the reader gave up on (incomplete, unreadable), in its place in the series."""

    index: int
    reason: str
    key: str = ""
    time_s: float | None = None


@dataclass
class FrameResult:
    """Maps of one processed frame (in the reference frame of the baseline library)."""

    summary: FrameSummary
    temperature_c: np.ndarray
    sigma_c: np.ndarray
    cem43_min: np.ndarray
    damage: np.ndarray
    lethal: np.ndarray
    valid: np.ndarray
    events: list[Event]
