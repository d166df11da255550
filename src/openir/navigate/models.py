"""Results of navigation that cross package borders (and the JSON the CLI writes): the planned path
being followed, a registration, one guidance frame per tracked pose, alerts, the robot's poses, and
the procedure summary the registry can record (entry and tip errors against the plan)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Vec3 = tuple[float, float, float]
Matrix4 = list[list[float]]
AlertKind = Literal["off_path", "approaching", "keep_away", "past_target", "outside_region",
                    "registration", "invalid_pose"]


class PlannedPath(BaseModel):
    """The needle path guided to: one probe of a `Plan` (LPS mm)."""

    probe_order: int
    tumour: str
    device: str
    entry_lps: Vec3
    tip_lps: Vec3
    direction_lps: Vec3 = Field(..., description="unit, entry toward tip")
    length_mm: float


class RegistrationResult(BaseModel):
    """Tracker -> image (LPS) rigid registration, its errors and whether guidance may use it."""

    method: Literal["paired_point", "surface_icp", "given"]
    image_from_tracker: Matrix4
    n_fiducials: int = 0
    fre_mm: float | None = Field(None, description="RMS fiducial registration error")
    fle_estimate_mm: float | None = Field(None, description="RMS fiducial localisation error, from FRE: sqrt(N/(N-2))*FRE")
    expected_tre_mm: float | None = Field(
        None, description="expected RMS target registration error at the planned tip (Fitzpatrick 1998)")
    residuals_mm: list[float] = Field(default_factory=list)
    surface_points: int = 0
    surface_rms_mm: float | None = None
    iterations: int = 0
    accepted: bool
    reasons: list[str] = Field(default_factory=list, description="why guidance is refused (empty when accepted)")
    limits: dict[str, str] = Field(default_factory=dict, description="limit -> value and source")


class Alert(BaseModel):
    kind: AlertKind
    severity: Literal["warning", "critical"]
    message: str
    structure: str | None = None
    value_mm: float | None = None
    limit_mm: float | None = None


class GuidanceFrame(BaseModel):
    """Guidance for one tracked pose (image frame, LPS mm)."""

    seq: int
    t_s: float
    state: Literal["guiding", "refused", "invalid_pose"]
    tip_lps: Vec3 | None = None
    direction_lps: Vec3 | None = None
    tip_to_target_mm: float | None = None
    lateral_mm: float | None = Field(None, description="tip distance from the planned line")
    angle_deg: float | None = Field(None, description="needle axis to planned path")
    depth_to_go_mm: float | None = Field(None, description="along the path to the planned tip; < 0: past it")
    inserted_mm: float | None = Field(None, description="tip depth past the planned entry, along the path")
    clearance_mm: dict[str, float] = Field(
        default_factory=dict, description="inserted shaft to each forbidden structure (lower bound, needle radius off)")
    course_clearance_mm: dict[str, float] = Field(
        default_factory=dict, description="the straight course ahead of the tip, to the planned depth")
    alerts: list[Alert] = Field(default_factory=list)
    compute_ms: float = 0.0


class RobotTarget(BaseModel):
    """A trajectory for a needle-guiding robot: target and approach poses in the robot's frame
    (origin at the point, +z the insertion direction), after registration robot <- image."""

    frame: str = "robot"
    target_pose: Matrix4
    approach_pose: Matrix4
    standoff_mm: float
    standoff_source: str
    entry_robot: Vec3
    target_robot: Vec3


class NavigationSummary(BaseModel):
    """One navigated insertion against its plan: what the registry records."""

    procedure_id: str
    case_id: str = ""
    path: PlannedPath
    registration: RegistrationResult | None = None
    n_poses: int
    n_guided: int
    n_refused: int = 0
    n_invalid: int = 0
    duration_s: float = 0.0
    alerts_by_kind: dict[str, int] = Field(default_factory=dict)
    first_alert_s: dict[str, float] = Field(default_factory=dict)
    entry_error_mm: float | None = Field(
        None, description="needle distance from the planned entry when the tip crossed the entry depth")
    tip_error_mm: float | None = Field(None, description="final tip to planned tip")
    tip_lateral_mm: float | None = None
    final_depth_to_go_mm: float | None = None
    final_angle_deg: float | None = None
    min_clearance_mm: dict[str, float] = Field(default_factory=dict)
    config_version: str = ""
    notes: list[str] = Field(default_factory=list)
