"""Probe configurations as practised: arrays of one modality, their limits and their zones.

Cryoprobes and IRE electrodes work as one array: the ice balls coalesce and the IRE field lives
between electrode pairs, so the lethal zone of the array is far larger than the union of each
probe's zone. The planner therefore places whole arrays (a template: probe count, spacing, exposure,
canonical layout) whose zone comes from the physics model
(`openir.physics.array_zone_dimensions`), never from unioned single-probe ellipsoids. The limits
(probes per array, spacing, exposure, pull-backs, per tumour and per session) live in
``data/configurations.yaml`` with their sources; unsourced ones are marked there and conservative.

>>> from openir.plan.arrays import load_configurations, canonical_layout
>>> load_configurations().modalities["ire"].probes.max
6
>>> canonical_layout(2, 20.0).tolist()
[[-10.0, 0.0], [10.0, 0.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openir.core.datafiles import load_yaml_model
from openir.core.errors import OpenIRError


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = Field(None, ge=0)
    max: float = Field(..., gt=0)
    step: float | None = Field(None, gt=0)

    def values(self) -> list[float]:
        lo = self.min if self.min is not None else self.max
        if self.step is None:
            return [lo] if lo == self.max else [lo, self.max]
        n = int(math.floor((self.max - lo) / self.step + 1e-9))
        return [round(lo + i * self.step, 6) for i in range(n + 1)]


class CountLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = Field(1, ge=1)
    max: int = Field(..., ge=1)


class PracticeBand(BaseModel):
    """The probe count practice uses for tumours up to a size: a ceiling the planner keeps to unless
    the user lifts it (``PlanOptions.beyond_practice``), so a plan never needs more probes than a
    radiologist would insert for that tumour; a target it cannot cover is said, with alternatives."""

    model_config = ConfigDict(extra="forbid")
    max_diameter_mm: float = Field(..., gt=0, description="tumour volume-equivalent diameter, rounded to the mm")
    max_probes: int = Field(..., ge=1)


class ModalityConfiguration(BaseModel):
    """How probes of one modality are combined, and the limits (each with its source)."""

    model_config = ConfigDict(extra="forbid")
    layout: Literal["parallel", "single"]
    probes: CountLimit
    probes_source: str
    spacing_mm: Range | None = None
    spacing_source: str | None = None
    exposure_mm: Range | None = None
    exposure_source: str | None = None
    pullbacks: CountLimit | None = None
    pullbacks_source: str | None = None
    pullback_step: Literal["exposure", "active_length"] | None = None
    pullback_overlap_mm: float = Field(0.0, ge=0)
    pullback_step_source: str | None = None
    positions_per_tumour: CountLimit
    probes_per_tumour: CountLimit
    positions_source: str | None = None
    converging_max_deg: float | None = Field(None, ge=0, le=20)
    converging_source: str | None = None
    diverging: bool = False  # IRE: a blocked shaft may also lean away from the array axis
    pair_spacing_mm: Range | None = None  # IRE: spacing of every pulsed pair at both ends of the exposure
    pair_spacing_source: str | None = None
    practice_probes: list[PracticeBand] = Field(default_factory=list)
    practice_probes_source: str | None = None

    @model_validator(mode="after")
    def _practice_sourced(self) -> ModalityConfiguration:
        if self.practice_probes and not (self.practice_probes_source or "").strip():
            raise ValueError("practice_probes needs practice_probes_source (or say it is unsourced)")
        for b in self.practice_probes:
            if not self.probes.min <= b.max_probes <= self.probes_per_tumour.max:
                raise ValueError(f"practice_probes max_probes {b.max_probes} outside {self.probes.min}-"
                                 f"{self.probes_per_tumour.max} (probes.min - probes_per_tumour.max)")
        return self

    def practice_band(self, diameter_mm: float) -> PracticeBand | None:
        """The practice ceiling for a tumour of ``diameter_mm`` (volume-equivalent, rounded to the mm as
        sizes are reported), or None where practice sets none beyond the other limits."""
        d = round(float(diameter_mm))
        for b in sorted(self.practice_probes, key=lambda b: b.max_diameter_mm):
            if d <= b.max_diameter_mm:
                return b
        return None

    @property
    def max_pullbacks(self) -> int:
        return self.pullbacks.max if self.pullbacks else 0

    def pullback_step_mm(self, exposure_mm: float | None, active_length_mm: float | None = None) -> float:
        """How far the array is drawn back between positions (0: no pull-backs): the IRE exposure or
        the cryoprobe's freezing (active) length, less the overlap of consecutive zones."""
        length = {"exposure": exposure_mm, "active_length": active_length_mm}.get(self.pullback_step or "")
        if not self.pullbacks or not length:
            return 0.0
        return max(0.0, length - self.pullback_overlap_mm)

    def unsourced(self) -> list[str]:
        """Names of the limits whose source says 'unsourced' (shown in plans)."""
        out = []
        for name in ("probes", "spacing", "exposure", "pullbacks", "positions"):
            src = getattr(self, f"{name}_source", None)
            if src and "unsourced" in src.lower():
                out.append(name)
        return out


class SessionLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_probe_insertions: int = Field(..., ge=1)
    max_probe_insertions_source: str


class Alternative(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    source: str


class Configurations(BaseModel):
    """``data/configurations.yaml``: per-modality array templates and limits, session limits, and
    the alternatives a tumour board discusses when a target cannot be covered within them."""

    model_config = ConfigDict(extra="forbid")
    configurations_version: str
    modalities: dict[str, ModalityConfiguration]
    session: SessionLimits
    alternatives: list[Alternative]

    def for_modality(self, modality: str) -> ModalityConfiguration:
        try:
            return self.modalities[modality]
        except KeyError:
            from openir.core.errors import InputError

            raise InputError(f"no configuration limits for modality {modality!r}", field="modality") from None


@lru_cache(maxsize=4)
def _load(path: str) -> Configurations:
    return load_yaml_model(Configurations, Path(path))


def load_configurations(path: str | Path | None = None) -> Configurations:
    """Load and validate the configuration limits (default: the packaged file)."""
    p = path or Path(str(resources.files("openir.plan") / "data" / "configurations.yaml"))
    return _load(str(p))


def canonical_layout(n_probes: int, spacing_mm: float) -> np.ndarray:
    """Probe positions (n, 2) in mm across the shaft: the physics model's canonical layout (pair,
    triangle, square, pentagon, two rows of three), so the planned probes are where the zone was
    computed. The zone's larger transverse extent lies along x for a row of probes."""
    from openir.physics import canonical_layout as layout

    return np.asarray(layout(n_probes, spacing_mm), dtype=float)


@dataclass(frozen=True)
class ArrayZone:
    """The lethal zone of one array at one position (full extents, mm) and where it comes from."""

    length_mm: float  # along the shafts
    width_mm: float  # across, along the layout's x axis
    depth_mm: float  # across, along the layout's y axis
    tip_to_centre_mm: float | None  # tips beyond the zone centre along the shaft
    model: str  # e.g. "cryo array, phase-change solver, -40 C isotherm"
    settings: dict
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ArrayTemplate:
    """One array configuration: modality, probe count, spacing, exposure and canonical layout."""

    modality: str
    n_probes: int
    spacing_mm: float
    exposure_mm: float | None = None
    active_length_mm: float | None = None  # cryo: the device's freezing length (None: the physics model's)

    def offsets(self) -> np.ndarray:
        return canonical_layout(self.n_probes, self.spacing_mm)

    def label(self) -> str:
        what = "electrodes" if self.modality == "ire" else "probes"
        s = f"{self.n_probes} {what}" + (f", {self.spacing_mm:g} mm apart" if self.n_probes > 1 else "")
        return s + (f", {self.exposure_mm:g} mm exposure" if self.exposure_mm else "")


def templates(cfg: ModalityConfiguration, modality: str, max_probes: int | None = None,
              active_length_mm: float | None = None) -> list[ArrayTemplate]:
    """Every array template within the limits, fewest probes first (then smaller spacing).

    ``active_length_mm``: the cryo device's sourced freezing length (None: the physics model's)."""
    hi = cfg.probes.max if max_probes is None else min(cfg.probes.max, max_probes)
    spacings = cfg.spacing_mm.values() if cfg.spacing_mm else [0.0]
    exposures: list[float | None] = list(cfg.exposure_mm.values()) if cfg.exposure_mm else [None]
    out = []
    for n in range(cfg.probes.min, hi + 1):
        for s in (spacings if n > 1 else [spacings[0]]):
            for e in exposures:
                out.append(ArrayTemplate(modality, n, float(s), e,
                                         active_length_mm if modality == "cryo" else None))
    return out


@dataclass(frozen=True)
class PairSpacing:
    """One pulsed IRE pair: its spacing (mm) at the tips, at the back of the exposure, and the
    narrowest and widest along the exposure (electrodes that converge or diverge)."""

    a: int
    b: int
    tip_mm: float
    back_mm: float
    min_mm: float
    max_mm: float


def pair_spacings(tips: np.ndarray, directions: np.ndarray, exposure_mm: float, max_pair_mm: float) -> list[PairSpacing]:
    """Spacing of every pulsed pair (tips no farther apart than ``max_pair_mm``) along the exposure.

    The gap between the two exposed segments at depth t behind the tips is |v0 - t w| (v0: tip
    difference, w: direction difference), convex in t: the widest is at an end, the narrowest at
    t* = v0.w / |w|^2 clipped to [0, exposure]."""
    tips = np.asarray(tips, float)
    dirs = np.asarray(directions, float)
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    out = []
    for a in range(len(tips)):
        for b in range(a + 1, len(tips)):
            v0 = tips[a] - tips[b]
            d0 = float(np.linalg.norm(v0))
            if d0 > max_pair_mm + 1e-6:
                continue
            w = dirs[a] - dirs[b]
            d1 = float(np.linalg.norm(v0 - exposure_mm * w))
            ww = float(w @ w)
            t = float(np.clip(v0 @ w / ww, 0.0, exposure_mm)) if ww > 1e-12 else 0.0
            dmin = float(np.linalg.norm(v0 - t * w))
            out.append(PairSpacing(a, b, d0, d1, min(dmin, d0, d1), max(d0, d1)))
    return out


class ArrayModelMissing(OpenIRError):
    """The physics package has no multi-probe zone model for this modality (yet)."""


def array_model_available() -> bool:
    """Whether the physics package provides the multi-probe array zone model."""
    try:
        from openir.physics import array_zone_dimensions  # noqa: F401
    except ImportError:
        return False
    return True


def _model_text(modality: str) -> tuple[str, tuple[str, ...], dict]:
    from openir.physics import grid_lethal_field_v_cm, load_array_data
    from openir.physics.array_table import TABLE_IRE_GRID_MM

    data = load_array_data()
    if modality == "cryo":
        c = data.cryo
        sched = "-".join(f"{m:g}" for m in c.default_schedule_min.value)
        iso = c.planning_isotherm(c.default_schedule_min.value)
        return (f"cryo array: phase-change solver, {iso.value:g} C isotherm, {sched} min "
                "freeze-thaw-freeze (openir.physics; probe temperature fitted to the Littrup 2009 gel phantom)",
                (iso.source, c.default_schedule_min.source, c.probe_temperature_c.source),
                {"isotherm_c": iso.value, "schedule_min": list(c.default_schedule_min.value)})
    i = data.ire
    liver = i.tissues["liver"]
    cal = liver.grid_lethal_field_v_cm
    return (f"IRE array: quasi-static field of the electrode pairs, {i.field_v_per_cm.value:g} V/cm, lethal field "
            f"{liver.lethal_field_v_cm.value:g} V/cm in liver for {i.pulses_per_pair.value:g} x "
            f"{i.pulse_length_us.value:g} us pulses (lower for more or longer pulses; the zone table's "
            f"{TABLE_IRE_GRID_MM:g} mm voxels use their calibrated {grid_lethal_field_v_cm(liver, TABLE_IRE_GRID_MM):g} "
            "V/cm; openir.physics)",
            (i.field_v_per_cm.source, liver.lethal_field_v_cm.source) + ((cal.source,) if cal else ()),
            {"field_v_per_cm": i.field_v_per_cm.value, "pulses_per_pair": i.pulses_per_pair.value})


def model_active_length_mm() -> float:
    """The cryoprobe freezing length of the physics model (arrays.yaml; used when the device has none)."""
    from openir.physics import load_array_data

    return float(load_array_data().cryo.active_length_mm.value)


@lru_cache(maxsize=512)
def _array_zone_cached(modality: str, n_probes: int, spacing_mm: float, exposure_mm: float | None,
                       active_length_mm: float | None = None) -> ArrayZone:
    if not array_model_available():
        raise ArrayModelMissing(f"{modality}: the physics package has no multi-probe array zone model "
                                "(openir.physics.array_zone_dimensions); arrays cannot be planned")
    from openir.physics import array_zone_dimensions

    kw = {"exposure_mm": exposure_mm} if (modality == "ire" and exposure_mm is not None) else {}
    if modality == "cryo" and active_length_mm is not None:
        kw = {"active_length_mm": active_length_mm}
    d = array_zone_dimensions(modality, n_probes, spacing_mm, **kw)  # type: ignore[arg-type]
    if not (d.along_mm > 0 and d.across1_mm > 0 and d.across2_mm > 0):
        raise ArrayModelMissing(f"{modality}: {n_probes} probes {spacing_mm:g} mm apart give no lethal zone")
    if getattr(d, "confluent", True) is False:  # separate zones around the probes: not one ablation
        raise ArrayModelMissing(f"{modality}: {n_probes} probes {spacing_mm:g} mm apart give no confluent zone")
    model, sources, settings = _model_text(modality)
    settings = settings | {"dims_source": d.source}
    return ArrayZone(float(d.along_mm), float(d.across1_mm), float(d.across2_mm), float(d.centre_offset_mm),
                     model, settings, sources)


def array_zone(template: ArrayTemplate, tissue: str = "liver") -> ArrayZone:
    """The array's lethal zone from the physics model (cached per template). The model is for liver;
    ``tissue`` is recorded by the caller (other organs use the liver model, said in the plan)."""
    return _array_zone_cached(template.modality, template.n_probes, float(template.spacing_mm),
                              None if template.exposure_mm is None else float(template.exposure_mm),
                              None if template.active_length_mm is None else float(template.active_length_mm))
