"""Shared pieces of the multi-probe (array) models: data file, result models, layouts, measurement.

Cryoprobes and IRE electrodes act as one array: ice balls coalesce and the IRE field lives between
electrode pairs, so the lethal zone of an array is not the union of single-probe zones. The two
models (cryo_array.py, ire.py) return an :class:`ArrayZone` (mask on a grid + its dimensions);
array_table.py tabulates the dimensions of canonical layouts for the planner's inner loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from openir.core.datafiles import Sourced, load_yaml_model
from openir.core.errors import InputError
from openir.core.volume import Grid, make_affine

ARRAYS_YAML = Path(__file__).with_name("data") / "arrays.yaml"
ArrayModality = Literal["cryo", "ire"]


# ---- data file ----------------------------------------------------------------------------------
class SourcedList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: list[float]
    source: str = Field(min_length=3)


class SourcedText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str
    source: str = Field(min_length=3)


class PlanningIsotherm(BaseModel):
    """The lethal isotherm the planner uses after ``freezes`` freeze phases, with its source."""

    model_config = ConfigDict(extra="forbid")
    freezes: int = Field(ge=1)
    value: float = Field(lt=0.0, ge=-100.0)
    source: str = Field(min_length=3)


class GelPhantom(BaseModel):
    """Thermal properties of the water (agar) gel of the cryo validation experiments."""

    model_config = ConfigDict(extra="forbid")
    conductivity_w_m_k: Sourced
    heat_capacity_j_m3_k: Sourced
    latent_heat_j_m3: Sourced
    frozen_conductivity_w_m_k: Sourced
    frozen_heat_capacity_j_m3_k: Sourced
    solidus_c: Sourced
    liquidus_c: Sourced


class CryoData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lethal_isotherms_c: list[Sourced]
    default_isotherm_c: Sourced
    planning_isotherms: list[PlanningIsotherm] = Field(default_factory=list)
    default_schedule_min: SourcedList
    probe_temperature_c: Sourced
    probe_model: SourcedText | None = None
    probe_cooling_power_w: Sourced | None = None
    probe_gas_temperature_c: Sourced | None = None
    probe_radius_mm: Sourced
    active_length_mm: Sourced
    phantom: GelPhantom | None = None
    thaw: SourcedText

    def planning_isotherm(self, schedule_min: Sequence[float] | None = None) -> Sourced:
        """The planning isotherm for a freeze/thaw schedule (minutes, freeze first): the row of its
        number of freeze phases, else the conservative default (-40 C)."""
        sched = list(schedule_min) if schedule_min is not None else list(self.default_schedule_min.value)
        freezes = (len(sched) + 1) // 2
        for row in self.planning_isotherms:
            if row.freezes == freezes:
                return Sourced(value=row.value, source=row.source)
        return self.default_isotherm_c


class GridLethalField(BaseModel):
    """The lethal field that reproduces the fitted zone on a grid too coarse to resolve the electrode.

    On voxels larger than ``resolved_voxel_mm`` an electrode is one line of voxels, thinner on the grid
    than the needle, so its field falls off faster; the threshold that gives the fitted zone there is
    lower than the physical one. ``values``: voxel size (mm) -> that threshold (V/cm).
    """

    model_config = ConfigDict(extra="forbid")
    resolved_voxel_mm: float = Field(gt=0)
    values: dict[float, float]
    source: str = Field(min_length=3)


class IRETissue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conductivity_s_m: Sourced
    permeabilised_conductivity_s_m: Sourced
    reversible_field_v_cm: Sourced
    irreversible_field_v_cm: Sourced
    lethal_field_v_cm: Sourced
    grid_lethal_field_v_cm: GridLethalField | None = None


class SourcedInt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int = Field(ge=1)
    source: str = Field(min_length=3)


class LethalFieldProtocol(BaseModel):
    """How the lethal field depends on the pulse train (data/arrays.yaml, ire.lethal_field_protocol)."""

    model_config = ConfigDict(extra="forbid")
    form: SourcedText
    reference_pulses: SourcedInt
    reference_pulse_length_us: Sourced
    anchor_pulses: SourcedInt
    anchor_pulse_length_us: Sourced


class IREData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tissues: dict[str, IRETissue]
    lethal_field_protocol: LethalFieldProtocol
    pulses_per_pair: Sourced
    pulse_length_us: Sourced
    pulse_rate_hz: Sourced
    field_v_per_cm: Sourced
    max_voltage_v: Sourced
    max_pair_distance_mm: Sourced
    electrode_radius_mm: Sourced
    exposure_mm: Sourced

    def tissue(self, name: str) -> IRETissue:
        try:
            return self.tissues[name]
        except KeyError:
            raise InputError(f"no IRE electrical properties for tissue {name!r}; known: {', '.join(sorted(self.tissues))}",
                             field="tissue") from None


class ArrayData(BaseModel):
    """The validated content of data/arrays.yaml."""

    model_config = ConfigDict(extra="forbid")
    version: int
    cryo: CryoData
    ire: IREData


@lru_cache(maxsize=1)
def load_array_data() -> ArrayData:
    """The packaged multi-probe data (sourced constants for cryo and IRE arrays)."""
    return load_yaml_model(ArrayData, ARRAYS_YAML)


# ---- results ------------------------------------------------------------------------------------
class ArrayDims(BaseModel):
    """Extent of an array's lethal zone (mm) in the array frame, and where its centre lies.

    ``along_mm`` is measured along the probes; ``across1_mm`` is the larger extent across them
    (for a row of probes: along the row), ``across2_mm`` the extent perpendicular to both.
    ``centre_offset_mm``: distance from the tips back along the shaft to the zone centre (positive =
    the centre lies behind the tips, as ``tip_to_centre_mm`` in the device catalogue).
    """

    model_config = ConfigDict(frozen=True)
    along_mm: float
    across1_mm: float
    across2_mm: float
    centre_offset_mm: float
    volume_ml: float
    confluent: bool = Field(True, description="one connected zone (False: separate zones around the probes; "
                                               "the extents then span gaps that are not ablated)")
    source: str = Field("computed", description="'table' (precomputed, interpolated) or 'computed'")


class ZoneGrowthPoint(BaseModel):
    time_s: float
    volume_ml: float = Field(description="lethal zone volume at this time")
    outer_volume_ml: float = Field(0.0, description="cryo: ice (<= 0 C) volume; IRE: reversibly permeabilised volume")


class ArrayZone(BaseModel):
    """The lethal zone of a probe array on a grid: mask, dimensions, what set it, how it grew.

    ``mask`` and ``grid`` are not serialised (use ``dims`` and the scalars in JSON).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    modality: ArrayModality
    n_probes: int
    dims: ArrayDims
    criterion: str = Field(description="e.g. 'min temperature <= -40 C' or '|E| >= 637 V/cm'")
    threshold: float
    threshold_source: str
    outer_dims: ArrayDims | None = Field(None, description="cryo: the visible ice ball (0 C); IRE: reversible zone")
    growth: list[ZoneGrowthPoint] = Field(default_factory=list)
    peak_field_v_cm: float | None = None
    max_temperature_c: float | None = None
    min_temperature_c: float | None = None
    thermal_damage_ml: float | None = Field(None, description="IRE: volume over the thermal lethal dose (CEM43)")
    pairs: list[tuple[int, int, float]] = Field(default_factory=list, description="IRE: (a, b, voltage V) pulsed")
    duration_s: float = 0.0
    spacing_mm: float
    runtime_s: float = 0.0
    notes: list[str] = Field(default_factory=list)
    mask: np.ndarray | None = Field(None, exclude=True, repr=False)
    grid: Grid | None = Field(None, exclude=True, repr=False)
    temperature_c: np.ndarray | None = Field(None, exclude=True, repr=False, description="cryo: min; IRE: max temperature")
    field_v_cm: np.ndarray | None = Field(None, exclude=True, repr=False, description="IRE: max |E| over pairs")


# ---- geometry -----------------------------------------------------------------------------------
def probe_arrays(tips_lps: Sequence[Sequence[float]], directions_lps: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Validated (n, 3) tips and unit directions (one shared direction may be given)."""
    tips = np.asarray(tips_lps, float).reshape(-1, 3) if len(tips_lps) else np.zeros((0, 3))
    if tips.shape[0] == 0:
        raise InputError("an array needs at least one probe", field="tips_lps")
    dirs = np.asarray(directions_lps, float).reshape(-1, 3)
    if dirs.shape[0] == 1:
        dirs = np.repeat(dirs, tips.shape[0], axis=0)
    if dirs.shape[0] != tips.shape[0]:
        raise InputError(f"{tips.shape[0]} tips but {dirs.shape[0]} directions", field="directions_lps")
    n = np.linalg.norm(dirs, axis=1)
    if not np.all(np.isfinite(tips)) or not np.all(n > 1e-9):
        raise InputError("tips must be finite and directions non-zero", field="directions_lps")
    return tips, dirs / n[:, None]


def mean_axis(dirs: np.ndarray) -> np.ndarray:
    d = dirs.mean(axis=0)
    n = float(np.linalg.norm(d))
    if n < 1e-6:
        raise InputError("probe directions cancel out (opposite insertions)", field="directions_lps")
    return d / n


def box_grid(points: np.ndarray, margin_mm: float, spacing_mm: float) -> Grid:
    """Axis-aligned grid (LPS axes) covering ``points`` plus ``margin_mm`` on every side."""
    if not spacing_mm > 0:
        raise InputError(f"voxel size must be > 0 mm, got {spacing_mm}", field="spacing_mm")
    lo = points.min(axis=0) - margin_mm
    hi = points.max(axis=0) + margin_mm
    n = np.maximum(np.ceil((hi - lo) / spacing_mm).astype(int) + 1, 3)
    centre = 0.5 * (lo + hi)
    origin = centre - spacing_mm * (n - 1) / 2.0
    return Grid((int(n[2]), int(n[1]), int(n[0])), make_affine([spacing_mm] * 3, origin))


def canonical_layout(n_probes: int, spacing_mm: float) -> np.ndarray:
    """Probe positions (n, 2) in the plane across the probes, nearest neighbours ``spacing_mm`` apart.

    1: a point; 2: a pair; 3: a triangle; 4: a square; 5: a pentagon; 6: two rows of three; the
    layouts of practice for cryoprobes and IRE electrodes (all parallel). Centred on the origin.
    """
    if n_probes < 1 or n_probes > 6:
        raise InputError(f"canonical layouts hold 1-6 probes, got {n_probes}", field="n_probes")
    if not spacing_mm > 0:
        raise InputError(f"probe spacing must be > 0 mm, got {spacing_mm}", field="spacing_mm")
    s = float(spacing_mm)
    if n_probes == 1:
        pts = np.zeros((1, 2))
    elif n_probes == 6:
        pts = np.array([[x, y] for y in (-s / 2, s / 2) for x in (-s, 0.0, s)])
    else:
        r = s / (2 * math.sin(math.pi / n_probes))
        a = 2 * math.pi * np.arange(n_probes) / n_probes + (math.pi / 2 if n_probes % 2 else math.pi / n_probes)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
        if n_probes == 2:
            pts = np.array([[-s / 2, 0.0], [s / 2, 0.0]])
    return pts - pts.mean(axis=0)


def layout_tips(n_probes: int, spacing_mm: float, direction_lps: Sequence[float] = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Tips (n, 3) at the origin plane of the canonical layout, probes along ``direction_lps``."""
    d = np.asarray(direction_lps, float)
    d = d / np.linalg.norm(d)
    u, v = perp_basis(d)
    pts = canonical_layout(n_probes, spacing_mm)
    tips = pts[:, :1] * u + pts[:, 1:2] * v
    return tips, np.repeat(d[None], n_probes, axis=0)


def perp_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = ref - (ref @ d) * d
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def measure_dims(mask: np.ndarray, grid: Grid, tips: np.ndarray, axis: np.ndarray) -> ArrayDims:
    """Extents of ``mask`` along ``axis`` and across it (principal directions in the cross plane).

    Extents are voxel-centre spans plus one voxel (each voxel counts with its own width).
    """
    vox = grid.voxel_volume_mm3
    h = float(np.cbrt(vox))
    if not mask.any():
        return ArrayDims(along_mm=0.0, across1_mm=0.0, across2_mm=0.0, centre_offset_mm=0.0, volume_ml=0.0)
    kji = np.argwhere(mask)
    pts = grid.index_to_world(kji[:, ::-1].astype(float))
    rel = pts - tips.mean(axis=0)
    s = rel @ axis
    cross = rel - s[:, None] * axis
    u, v = perp_basis(axis)
    cu, cv = cross @ u, cross @ v
    cov = np.cov(np.stack([cu, cv])) if len(cu) > 2 else np.eye(2)
    w, vecs = np.linalg.eigh(cov)
    e1 = vecs[:, 1]
    if tips.shape[0] > 1:  # prefer the axis of the probe row when the spread ties (square, single)
        tp = tips - tips.mean(axis=0)
        tu, tv = tp @ u, tp @ v
        tcov = np.cov(np.stack([tu, tv]))
        tw, tvec = np.linalg.eigh(tcov)
        if tw[1] > 1.05 * tw[0] or abs(w[1] - w[0]) < 0.02 * max(w[1], 1e-9):
            e1 = tvec[:, 1]
    e2 = np.array([-e1[1], e1[0]])
    p1 = cu * e1[0] + cv * e1[1]
    p2 = cu * e2[0] + cv * e2[1]
    a1 = float(p1.max() - p1.min() + h)
    a2 = float(p2.max() - p2.min() + h)
    if a2 > a1:
        a1, a2 = a2, a1
    along = float(s.max() - s.min() + h)
    centre = 0.5 * (s.max() + s.min())
    lab, n = ndimage.label(mask)
    sizes = np.bincount(lab.ravel())[1:] if n else np.zeros(0)
    confluent = int((sizes >= 0.05 * sizes.sum()).sum()) <= 1
    return ArrayDims(along_mm=along, across1_mm=a1, across2_mm=a2, centre_offset_mm=float(-centre),
                     volume_ml=float(mask.sum()) * vox / 1000.0, confluent=confluent)
