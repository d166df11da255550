"""Results and inputs of the seed-implantation package that cross package borders (and the CLI JSON).

Seed contract: ``position_lps`` is the centre of the seed's active length in LPS mm,
``direction_lps`` the unit vector along its long axis (the needle direction, entry toward tip);
``air_kerma_strength_U`` is the seed's initial air-kerma strength S_K (1 U = 1 cGy cm^2 h^-1).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openir.core.vectors import Vec3, finite3, unit3


# ---- catalogue tables -------------------------------------------------------------------------
class RadialDoseTable(BaseModel):
    """Radial dose function g_L(r) (line-source geometry), r in cm."""

    model_config = ConfigDict(extra="forbid")
    r_cm: list[float] = Field(..., min_length=2)
    g_l: list[float] = Field(..., min_length=2)

    @model_validator(mode="after")
    def _check(self) -> RadialDoseTable:
        if len(self.r_cm) != len(self.g_l):
            raise ValueError("r_cm and g_l must have the same length")
        if any(b <= a for a, b in zip(self.r_cm, self.r_cm[1:], strict=False)) or self.r_cm[0] <= 0:
            raise ValueError("r_cm must be positive and strictly increasing")
        if any(not (0 < g < 5) for g in self.g_l):
            raise ValueError("g_l values must lie in (0, 5)")
        return self


class AnisotropyTable(BaseModel):
    """2D anisotropy function F(r, theta): one row per radius, one column per angle (degrees)."""

    model_config = ConfigDict(extra="forbid")
    r_cm: list[float] = Field(..., min_length=1)
    theta_deg: list[float] = Field(..., min_length=2)
    f: list[list[float]]

    @model_validator(mode="after")
    def _check(self) -> AnisotropyTable:
        if len(self.f) != len(self.r_cm) or any(len(row) != len(self.theta_deg) for row in self.f):
            raise ValueError("f must have one row per radius and one value per angle")
        if self.theta_deg[0] != 0 or self.theta_deg[-1] != 90:
            raise ValueError("theta_deg must run from 0 to 90 (symmetric seeds)")
        if any(b <= a for a, b in zip(self.theta_deg, self.theta_deg[1:], strict=False)):
            raise ValueError("theta_deg must be strictly increasing")
        if any(b <= a for a, b in zip(self.r_cm, self.r_cm[1:], strict=False)):
            raise ValueError("r_cm must be strictly increasing")
        if any(not (0 < v < 2) for row in self.f for v in row):
            raise ValueError("F values must lie in (0, 2)")
        return self


class PhiAnTable(BaseModel):
    """1D anisotropy function phi_an(r)."""

    model_config = ConfigDict(extra="forbid")
    r_cm: list[float] = Field(..., min_length=1)
    value: list[float] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _check(self) -> PhiAnTable:
        if len(self.r_cm) != len(self.value):
            raise ValueError("r_cm and value must have the same length")
        return self


class Isotope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    half_life_days: float = Field(..., gt=0)
    half_life_source: str = Field(..., min_length=5)
    u_per_mci_apparent: float = Field(..., gt=0)
    u_per_mci_source: str = Field(..., min_length=5)

    @property
    def mean_life_h(self) -> float:
        """tau = T_half / ln 2, hours: the total dose of a permanent implant is initial rate x tau."""
        return self.half_life_days * 24.0 / math.log(2.0)


class SeedModel(BaseModel):
    """One seed model of the catalogue with its TG-43U1 consensus data and their source."""

    model_config = ConfigDict(extra="forbid")
    name: str
    aliases: list[str] = Field(default_factory=list)
    manufacturer: str = ""
    isotope: str
    active_length_cm: float = Field(..., gt=0, lt=1.0)
    dose_rate_constant: float = Field(..., gt=0, lt=2.0, description="Lambda, cGy h^-1 U^-1")
    source: str = Field(..., min_length=10)
    radial_dose: RadialDoseTable
    anisotropy: AnisotropyTable
    phi_an: PhiAnTable | None = None
    half_life_days: float = Field(0.0, description="filled from the isotope table on load")
    u_per_mci_apparent: float = Field(0.0, description="filled from the isotope table on load")

    @property
    def mean_life_h(self) -> float:
        return self.half_life_days * 24.0 / math.log(2.0)


class SeedCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    isotopes: dict[str, Isotope]
    models: list[SeedModel] = Field(..., min_length=1)


# ---- seeds and dose --------------------------------------------------------------------------
class Seed(BaseModel):
    """One implanted (or planned) seed."""

    model_config = ConfigDict(extra="forbid")
    position_lps: Vec3 = Field(..., description="centre of the active length, LPS mm")
    direction_lps: Vec3 = Field((0.0, 0.0, 1.0), description="unit vector along the seed axis")
    air_kerma_strength_U: float = Field(..., gt=0, description="initial S_K, U = cGy cm^2 h^-1")
    needle: int | None = Field(None, description="index of the needle that carries it, if planned")

    @field_validator("direction_lps", mode="before")
    @classmethod
    def _norm(cls, v):
        return unit3(v)

    @field_validator("position_lps", mode="before")
    @classmethod
    def _pos(cls, v):
        return finite3(v)

    @field_validator("air_kerma_strength_U")
    @classmethod
    def _finite_sk(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("air-kerma strength must be finite")
        return v


class OrganDose(BaseModel):
    """Dose to one organ at risk and whether its limit is kept."""

    name: str
    volume_ml: float
    d_max_gy: float
    d_mean_gy: float
    d2cc_gy: float | None = Field(None, description="minimum dose to the hottest 2 cm3 (None if < 2 cm3)")
    d1cc_gy: float | None = None
    d0_1cc_gy: float | None = None
    limit_metric: str | None = None
    limit_gy: float | None = None
    limit_source: str | None = None
    within_limit: bool | None = None


class DvhCurve(BaseModel):
    """Cumulative DVH: percentage of the structure's volume receiving at least each dose."""

    name: str
    dose_gy: list[float]
    volume_pct: list[float]


class DoseMetrics(BaseModel):
    """Plan quality of a seed implant (permanent-implant total dose, Gy)."""

    prescription_gy: float
    target_volume_ml: float
    d90_gy: float = Field(..., description="minimum dose to the hottest 90 % of the target")
    d100_gy: float = Field(..., description="minimum target dose (voxel-based)")
    v100_pct: float
    v150_pct: float
    v200_pct: float
    ci: float = Field(..., description="Paddick conformity: (TV_Rx)^2 / (TV x V_Rx)")
    ei: float = Field(..., description="external index: volume outside the target at >= Rx / TV")
    hi: float = Field(..., description="homogeneity index: (V100 - V150) / V100")
    organs: list[OrganDose] = Field(default_factory=list)


# ---- needles, template and the plan ----------------------------------------------------------
class TemplateFrame(BaseModel):
    """A coplanar needle template: holes on a square grid in the plane normal to ``direction_lps``.

    Hole (row, col) lies at ``origin_lps + col * hole_spacing_mm * col_axis + row * ... * row_axis``
    (row/col may be negative); needles go along ``direction_lps`` (entry toward tip).
    """

    origin_lps: Vec3
    direction_lps: Vec3
    col_axis_lps: Vec3
    row_axis_lps: Vec3
    hole_spacing_mm: float = Field(5.0, gt=0)


class PlannedNeedle(BaseModel):
    """One needle: where it enters, where its tip stops, and the seeds it carries."""

    index: int
    hole: str = Field(..., description="template hole label, e.g. 'C+3' (row letter, column) or 'free-2'")
    row: int | None = None
    col: int | None = None
    direction_lps: Vec3
    entry_lps: Vec3 = Field(..., description="skin entry point (from the trajectory trace)")
    tip_lps: Vec3
    depth_mm: float = Field(..., description="skin to tip along the needle")
    template_depth_mm: float | None = Field(None, description="template top surface to tip (needle stop)")
    seeds: int = 0
    seed_depths_mm: list[float] = Field(default_factory=list, description="skin to each seed centre")
    path_status: str = "feasible"


class SeedPlan(BaseModel):
    """A seed-implant plan: the JSON that `openir seeds plan` writes."""

    model_config = ConfigDict(extra="forbid")
    plan_version: int = 1
    site: str
    tumour: str
    seed_model: str
    activity_mci: float
    air_kerma_strength_U: float
    prescription_gy: float
    margin_mm: float
    sources: dict[str, str] = Field(default_factory=dict, description="where each protocol number comes from")
    mode: str = Field("template", description="template (coplanar parallel) or freehand (oblique)")
    patient_position: str = Field("supine", description="position the needle paths were checked for")
    template: TemplateFrame | None = None
    seed_spacing_mm: float
    needles: list[PlannedNeedle]
    seeds: list[Seed]
    metrics: DoseMetrics
    dvh: list[DvhCurve] = Field(default_factory=list)
    goals_met: dict[str, bool] = Field(default_factory=dict)
    total_activity_mci: float
    total_air_kerma_strength_U: float
    target_centroid_lps: Vec3
    candidate_needles: int = 0
    rejected_needles: dict[str, int] = Field(default_factory=dict, description="blocked candidate paths per reason")
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @property
    def seed_count(self) -> int:
        return len(self.seeds)


def registry_dosimetry(plan: SeedPlan, stage: str = "plan") -> dict:
    """The generic fields the registry records for a seed implant (its ``SeedDosimetryIn``):
    the registry validates them with its own schema, so it needs nothing of this package."""
    m = plan.metrics
    return {"stage": stage, "seed_model": plan.seed_model, "seeds": len(plan.seeds), "needles": len(plan.needles),
            "activity_mci_per_seed": plan.activity_mci, "total_activity_mci": plan.total_activity_mci,
            "prescription_gy": plan.prescription_gy, "d90_gy": round(m.d90_gy, 2), "d100_gy": round(m.d100_gy, 2),
            "v100_pct": round(m.v100_pct, 2), "v150_pct": round(m.v150_pct, 2), "v200_pct": round(m.v200_pct, 2)}
