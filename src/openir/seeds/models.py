"""Results and inputs of the seed-implantation package that cross package borders (and the CLI JSON).

Seed contract: ``position_lps`` is the centre of the seed's active length in LPS mm,
``direction_lps`` the unit vector along its long axis (the needle direction, entry toward tip);
``air_kerma_strength_U`` is the seed's initial air-kerma strength S_K (1 U = 1 cGy cm^2 h^-1).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Vec3 = tuple[float, float, float]


def _unit(v) -> Vec3:
    a = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(a))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError("direction must be a non-zero finite 3-vector")
    return tuple(float(x) for x in a / n)  # type: ignore[return-value]


def _finite3(v) -> Vec3:
    a = np.asarray(v, dtype=float).reshape(3)
    if not np.all(np.isfinite(a)):
        raise ValueError("position must be three finite numbers (mm)")
    return tuple(float(x) for x in a)  # type: ignore[return-value]


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
        return _unit(v)

    @field_validator("position_lps", mode="before")
    @classmethod
    def _pos(cls, v):
        return _finite3(v)

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
