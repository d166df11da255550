"""Results of the planning package that cross package borders (and the JSON the CLI writes).

Probe contract shared with the physics package: ``direction_lps`` is the unit insertion direction,
from the entry point toward the tip; the handle lies at ``tip_lps - t * direction_lps`` for t > 0.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Vec3 = tuple[float, float, float]


def _unit(v) -> Vec3:
    a = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(a))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError("direction must be a non-zero finite 3-vector")
    return tuple(float(x) for x in a / n)  # type: ignore[return-value]


class Probe(BaseModel):
    """A probe placed in the patient: device, setting and pose (LPS mm)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(..., description="catalogue id, e.g. 'emprint'")
    power_w: float | None = None
    time_s: float = Field(..., gt=0)
    tip_lps: Vec3
    direction_lps: Vec3 = Field(..., description="unit insertion direction, entry toward tip")
    entry_lps: Vec3 | None = None
    isotherm_c: float | None = Field(None, description="cryo: which isotherm (e.g. -20)")
    centre_offset_mm: float | None = Field(
        None, description="tip-to-zone-centre distance when the catalogue has no sourced value")

    @field_validator("direction_lps", mode="before")
    @classmethod
    def _norm(cls, v):
        return _unit(v)


ProbePose = Probe  # the name used in the design notes


class Ellipsoid(BaseModel):
    """A predicted zone: an oriented ellipsoid in LPS mm."""

    centre_lps: Vec3
    axes_lps: tuple[Vec3, Vec3, Vec3] = Field(..., description="unit vectors: along shaft, across, across2")
    semi_axes_mm: Vec3
    device: str = ""
    setting: str = ""
    thermal: bool = True
    modality: str = ""
    sources: list[str] = Field(default_factory=list)

    @property
    def volume_ml(self) -> float:
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    def rotation(self) -> np.ndarray:
        """3x3 matrix whose columns are the ellipsoid axes in LPS."""
        return np.array(self.axes_lps, dtype=float).T


class HeatSinkVessel(BaseModel):
    label: str
    diameter_mm: float = Field(..., description="largest local diameter where it meets the zone")
    voxels_in_zone: int
    touching_only: bool


class HeatSinkReport(BaseModel):
    zone_device: str
    thermal: bool
    min_diameter_mm: float
    vessels: list[HeatSinkVessel] = Field(default_factory=list)
    clipped_voxels: int = 0
    note: str = ""

    @property
    def flagged(self) -> bool:
        return bool(self.vessels)


class Trajectory(BaseModel):
    """One straight needle path from the skin to the target."""

    entry_lps: Vec3
    target_lps: Vec3
    direction_lps: Vec3 = Field(..., description="insertion direction, entry toward target")
    length_mm: float
    clearances_mm: dict[str, float] = Field(
        default_factory=dict, description="minimum distance to each risk structure (capped)")
    min_clearance_mm: float
    angle_to_axial_deg: float
    angle_to_skin_normal_deg: float
    capsules_crossed: int
    counted_crossings: dict[str, int] = Field(default_factory=dict)
    score: float = 0.0
    rank: int = 0


class TrajectoryResult(BaseModel):
    target_lps: Vec3
    needle_length_mm: float
    n_directions: int
    n_feasible: int
    blocked_by: dict[str, int] = Field(
        default_factory=dict, description="directions rejected, by first failing constraint")
    pareto: list[Trajectory] = Field(default_factory=list)
    shortlist: list[Trajectory] = Field(default_factory=list)
    clearance_cap_mm: float
    risk_structures: list[str] = Field(default_factory=list)
    exempt_structures: list[str] = Field(default_factory=list)
    policy_version: str = ""
    prep_seconds: float = 0.0
    search_seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @property
    def most_blocking(self) -> str | None:
        return max(self.blocked_by, key=self.blocked_by.get) if self.blocked_by else None  # type: ignore[arg-type]
