"""Results of the planning package that cross package borders (and the JSON the CLI writes).

Probe contract shared with the physics package: ``direction_lps`` is the unit insertion direction,
from the entry point toward the tip; the handle lies at ``tip_lps - t * direction_lps`` for t > 0.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openir.core.vectors import Vec3, unit3
from openir.physics.models import ScheduleStep


class Probe(BaseModel):
    """A probe placed in the patient: device, setting and pose (LPS mm)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(..., description="catalogue id, e.g. 'emprint'")
    power_w: float | None = None
    time_s: float | None = Field(None, gt=0, description="ablation or freeze time (thermal, cryo)")
    tip_lps: Vec3 = Field(..., description="needle tip; for an IRE pair the midpoint of the two tips")
    direction_lps: Vec3 = Field(..., description="unit insertion direction, entry toward tip")
    entry_lps: Vec3 | None = None
    isotherm_c: float | None = Field(None, description="cryo: which isotherm (e.g. -20)")
    exposure_mm: float | None = Field(None, description="RF/IRE: exposed (active) tip length")
    spacing_mm: float | None = Field(None, description="IRE: distance between the two electrodes")
    injected_ml: float | None = Field(None, gt=0, description="chemical ablation: injected volume")
    plane_lps: Vec3 | None = Field(None, description="IRE: unit vector from one electrode to the other")
    evidence: str | None = Field(None, description="catalogue table: manufacturer, clinical, ... (default: preferred)")
    tissue: str | None = Field(None, description="catalogue rows measured in this tissue, e.g. 'liver'")
    centre_offset_mm: float | None = Field(
        None, description="tip-to-zone-centre distance when the catalogue has no sourced value")

    @field_validator("direction_lps", mode="before")
    @classmethod
    def _norm(cls, v):
        return unit3(v)


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
    # as a CT-guided operator sets the needle (issue 15)
    depth_mm: float = Field(0.0, description="skin entry to target along the needle")
    inplane_angle_deg: float = Field(
        0.0, description="gantry (axial-plane) angle from the vertical above the table; + toward the patient's "
                         "left (supine/prone) or anterior (lateral positions)")
    craniocaudal_angle_deg: float = Field(
        0.0, description="out of the axial plane; + when the entry is cranial to the target (needle points caudally)")
    counted_length_mm: dict[str, float] = Field(
        default_factory=dict, description="path length inside counted structures, e.g. aerated lung")
    fissures_crossed: int = Field(0, description="changes between labels of one counted structure (lung lobes)")


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
    needle_gauge: int | None = None
    needle_diameter_mm: float = 0.0
    patient_position: str = "any"
    keep_away_mm: dict[str, float] = Field(
        default_factory=dict, description="applied keep-away per risk structure, needle radius included")

    @property
    def most_blocking(self) -> str | None:
        return max(self.blocked_by, key=self.blocked_by.get) if self.blocked_by else None  # type: ignore[arg-type]


# ---- ablation plans (issue 4) -------------------------------------------------------------------

class RuleHit(BaseModel):
    """One modality rule that applied to a tumour, with its reason and source."""

    rule_id: str
    points: dict[str, float] = Field(default_factory=dict)
    reason: str
    source: str
    verified: bool = False
    project_default: bool = False
    flag: str | None = None


class TumourFeatures(BaseModel):
    """What the modality rules look at: organ, size, nearby heat sinks and sensitive structures."""

    label: str
    organ: str = Field(..., description="organ class: liver, lung, kidney, bone, thyroid, soft_tissue")
    organ_label: str | None = None
    volume_ml: float
    equivalent_diameter_mm: float
    longest_axis_mm: float = Field(..., description="2*sqrt(5*largest covariance eigenvalue) of the voxels")
    tumour_type: str = "unknown"
    near: dict[str, float] = Field(default_factory=dict, description="structure class -> surface distance mm")
    near_labels: dict[str, float] = Field(default_factory=dict, description="label -> surface distance mm")
    heat_sink_vessels: dict[str, float] = Field(
        default_factory=dict, description="vessel label -> largest local diameter (mm) within near_mm")


class ModalityScore(BaseModel):
    modality: str
    score: float
    rank: int
    reasons: list[str] = Field(default_factory=list)
    plannable: bool = Field(..., description="the catalogue holds sourced zone rows for this modality")


class ModalityRecommendation(BaseModel):
    tumour: str
    features: TumourFeatures
    ranking: list[ModalityScore]
    hits: list[RuleHit] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    chosen: str
    overridden: bool = False
    note: str = ""
    rules_version: str = ""


class TargetSpec(BaseModel):
    """Tumour + required margin (the planning target) and the separate uncertainty band."""

    tumour: str
    organ_label: str | None = None
    margin_mm: float
    margin_source: str
    clip_to_organ: bool
    uncertainty_mm: float
    uncertainty_source: str
    tumour_ml: float
    target_ml: float
    uncertainty_band_ml: float
    excluded_ml: dict[str, float] = Field(
        default_factory=dict, description="margin volume left out of the target, by reason")


ProbeScheduleStep = ScheduleStep
"""One step of a probe's activation schedule: physics' own step, so ``openir simulate PLAN.json`` runs it
(cryo: ``power_w`` 1 = freeze, 0 = passive thaw)."""


class PlannedProbe(BaseModel):
    """One probe (or one IRE electrode) in the plan: device, setting, pose and order."""

    order: int = Field(..., description="1-based insertion / activation order")
    group: int = Field(..., description="probes of one group are active together (cryo/IRE cluster)")
    tumour: str
    device: str
    modality: str
    setting: str
    power_w: float | None = None
    time_s: float | None = None
    isotherm_c: float | None = None
    spacing_mm: float | None = None
    exposure_mm: float | None = None
    entry_lps: Vec3
    tip_lps: Vec3
    direction_lps: Vec3 = Field(..., description="unit insertion direction, entry toward tip")
    zone_centre_lps: Vec3
    zone_index: int
    track: int = Field(..., description="probes sharing a track are pull-back positions on one insertion")
    path_length_mm: float
    tip_offset_mm: float = Field(..., description="tip beyond the zone centre along the shaft")
    tip_offset_source: str
    tip_offset_sourced: bool = Field(True, description="False: the offset is a user/default value, not sourced")
    array_position: int = Field(1, description="1 = deepest position of the array; >1 after pull-backs")
    layout_offset_mm: tuple[float, float] = Field(
        (0.0, 0.0), description="position of this probe in the array, across the shaft (width, depth axes)")
    sources: list[str] = Field(default_factory=list)
    schedule: list[ScheduleStep] | None = Field(
        None, description="activation steps for `openir simulate` (cryo: power_w 1 = freeze, 0 = thaw); "
        "None = the device setting (cryo: the sourced default freeze-thaw protocol)")


class ModalityOption(BaseModel):
    """One modality planned for a tumour and weighed against the others (``modality_rules.yaml``,
    section ``tradeoff``): rule points, coverage, probe count, risk and evidence, with reasons."""

    modality: str
    planned: bool = Field(..., description="False: not plannable or outside the rule window, not weighed")
    score: float = 0.0
    rule_points: float = 0.0
    target_coverage_pct: float = 0.0
    full_coverage: bool = False
    n_probes: int = 0
    configuration: str = ""
    evidence: str = ""
    reasons: list[str] = Field(default_factory=list)
    chosen: bool = False


class EvidenceCoverage(BaseModel):
    """Coverage the same probe poses would give with another evidence table of the device."""

    evidence: str
    tumour_coverage_pct: float | None = None
    target_coverage_pct: float | None = None
    min_margin_mm: float | None = None
    note: str = ""


class TargetPlan(BaseModel):
    """The result for one tumour: coverage, margin, healthy tissue, what blocks full coverage."""

    tumour: str
    recommendation: ModalityRecommendation
    modality: str
    target: TargetSpec
    n_probes: int
    n_tracks: int
    tumour_coverage_pct: float
    target_coverage_pct: float
    min_margin_mm: float
    ablated_healthy_ml: float = Field(..., description="zone volume outside the tumour, in the body")
    ablated_outside_target_ml: float
    structures_touched_ml: dict[str, float] = Field(default_factory=dict)
    must_spare_touched_ml: dict[str, float] = Field(default_factory=dict)
    heat_sink: list[HeatSinkReport] = Field(default_factory=list)
    full_coverage: bool
    blocked_ml: dict[str, float] = Field(default_factory=dict, description="uncoverable target, by cause")
    n_candidates: int = 0
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    n_zones: int = Field(0, description="ablation zones: array or antenna positions, pull-backs included")
    configuration: str = Field("", description="the array or antenna configuration, as practised")
    within_limits: bool = Field(True, description="the configuration respects data/configurations.yaml")
    limits: list[str] = Field(default_factory=list, description="the limits applied, with their sources")
    alternatives: list[str] = Field(
        default_factory=list, description="when not fully covered: what a tumour board would discuss")
    modality_options: list[ModalityOption] = Field(default_factory=list)
    evidence_used: str = Field("", description="zone table used: manufacturer, clinical, ... or the physics model")
    evidence_comparison: list[EvidenceCoverage] = Field(default_factory=list)


class CaseRef(BaseModel):
    case_id: str = ""
    ct: str | None = None
    labels: str | None = None
    grid: str = ""


class Provenance(BaseModel):
    catalogue_version: str
    rules_version: str
    margins_version: str
    policy_version: str
    openir_version: str = ""
    created: str = ""
    parameters: dict[str, object] = Field(default_factory=dict)


class PhysicsZoneRecord(BaseModel):
    """One probe's lethal zone from the bioheat simulation (physics_zone.py), beside its table zone.

    The mask travels with the JSON (zlib-compressed packed bits on its own simulation grid) so that a
    reloaded plan can still draw or rasterise it (``Plan.physics_zone_mask``).
    """

    probe_order: int = Field(0, description="PlannedProbe.order (0 = not from a plan)")
    tumour: str = ""
    device: str
    power_w: float
    time_s: float
    criterion: str = Field(..., description="lethal criterion, e.g. cem43")
    threshold: float = Field(..., description="e.g. 240 (CEM43 minutes)")
    threshold_source: str = ""
    spacing_mm: float
    tissue_model: str = Field(..., description="'labels' (case label map) or 'homogeneous liver'")
    alignment: str = Field(..., description="'zone_centre' or 'tip': how the antenna was placed")
    simulated_tip_lps: Vec3
    direction_lps: Vec3
    centre_lps: Vec3 = Field(..., description="centre of the lethal zone along the shaft")
    model_tip_to_centre_mm: float = Field(..., description="the physics model's tip-to-zone-centre offset")
    length_mm: float
    width_mm: float
    volume_ml: float
    radii_mm: list[float] = Field(default_factory=list, description="extent in 8 directions at the widest section")
    homogeneous_length_mm: float
    homogeneous_width_mm: float
    homogeneous_volume_ml: float
    volume_shrinkage_pct: float = Field(..., description="vs the same antenna in homogeneous liver")
    table_length_mm: float | None = None
    table_width_mm: float | None = None
    table_volume_ml: float | None = None
    vessels: list[str] = Field(default_factory=list, description="heat-sink vessels in the simulated region")
    notes: list[str] = Field(default_factory=list)
    grid_shape_kji: tuple[int, int, int]
    grid_affine: list[list[float]]
    mask_zlib_b64: str = Field(..., description="np.packbits(mask.ravel()) zlib-compressed, base64")


class PhysicsTargetOutcome(BaseModel):
    """Coverage of one tumour by the union of its probes' physics zones, beside the table's."""

    tumour: str
    tumour_coverage_pct: float
    target_coverage_pct: float
    min_margin_mm: float
    zone_volume_ml: float
    table_tumour_coverage_pct: float
    table_target_coverage_pct: float
    table_min_margin_mm: float
    full_coverage: bool


class PhysicsSummary(BaseModel):
    """What ``zone_model='both'|'physics'`` adds to a plan: per-probe physics zones and coverage."""

    zone_model: str
    criterion: str
    spacing_mm: float
    zones: list[PhysicsZoneRecord] = Field(default_factory=list)
    targets: list[PhysicsTargetOutcome] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """A complete ablation plan for one procedure (one or several tumours): the JSON the CLI writes."""

    plan_version: str = "1"
    case: CaseRef = Field(default_factory=CaseRef)
    targets: list[TargetPlan] = Field(default_factory=list)
    probes: list[PlannedProbe] = Field(default_factory=list)
    zones: list[Ellipsoid] = Field(default_factory=list)
    zone_tumour: list[str] = Field(default_factory=list, description="tumour of each zone")
    provenance: Provenance
    warnings: list[str] = Field(default_factory=list)
    zone_model: str = Field("table", description="table, physics or both (see plan/physics_zone.py)")
    physics: PhysicsSummary | None = None

    @property
    def feasible(self) -> bool:
        return all(t.full_coverage for t in self.targets)

    def zone_mask(self, grid, tumour: str | None = None) -> np.ndarray:
        """Boolean mask (k, j, i) of the planned zones on ``grid`` (optionally one tumour's)."""
        from .zones import rasterise_zones

        zones = [z for z, t in zip(self.zones, self.zone_tumour, strict=False) if tumour is None or t == tumour]
        return rasterise_zones(zones, grid)

    def physics_zone_mask(self, grid, tumour: str | None = None) -> np.ndarray:
        """Boolean mask (k, j, i) of the union of the physics lethal zones on ``grid`` (empty if none)."""
        from .physics_zone import records_mask

        recs = [r for r in (self.physics.zones if self.physics else []) if tumour is None or r.tumour == tumour]
        return records_mask(recs, grid)
