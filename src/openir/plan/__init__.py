"""Planning: ablation devices and zone models, and safe needle trajectories.

`load_catalogue` reads the versioned device catalogue; `predict_zone` turns a probe (device,
setting, pose) into an oriented ellipsoid; `rasterise_zones`, `zone_mesh` and `heat_sink_check`
use it. `find_trajectories` finds every feasible straight path from the skin to a target and
returns the Pareto set and a ranked shortlist. `plan_ablation` chooses the modality (rules with
sources), builds tumour + margin targets and places probes to cover them; the result is a `Plan`.
"""

from .arrays import ArrayTemplate, ArrayZone, Configurations, canonical_layout, load_configurations
from .devices import Device, DeviceCatalogue, ZoneRow, catalogue_version, load_catalogue
from .export import plan_labelmap, plan_markups, plan_segments, zone_surfaces
from .modality import describe_tumour, recommend_modality
from .models import (
    Ellipsoid,
    EvidenceCoverage,
    HeatSinkReport,
    HeatSinkVessel,
    ModalityOption,
    ModalityRecommendation,
    PhysicsSummary,
    PhysicsZoneRecord,
    Plan,
    PlannedProbe,
    Probe,
    ProbePose,
    TargetPlan,
    TargetSpec,
    Trajectory,
    TrajectoryResult,
    TumourFeatures,
)
from .options import PlanOptions
from .physics_zone import PhysicsZone, calibrated_devices, physics_zone
from .planner import ModalityAttempt, ZoneOutcome, evaluate_zone, plan_ablation
from .policy import (
    StructureRule,
    TrajectoryPolicy,
    is_target_label,
    load_policy,
    needle_diameter_mm,
)
from .procedures import PathOptions, PathPlan, load_procedures, plan_path
from .rules import matches
from .target import body_from_ct, target_mask
from .trajectories import (
    evaluate_directions,
    fibonacci_directions,
    find_trajectories,
    operator_angles,
    prepare_case,
    target_from_label,
    trace_one,
)
from .zones import heat_sink_check, predict_zone, rasterise_zones, zone_dimensions, zone_mesh

__all__ = [
    "PathOptions",
    "PathPlan",
    "ArrayTemplate",
    "ArrayZone",
    "Configurations",
    "EvidenceCoverage",
    "ModalityAttempt",
    "ModalityOption",
    "PlanOptions",
    "ZoneOutcome",
    "canonical_layout",
    "evaluate_zone",
    "load_configurations",
    "PhysicsSummary",
    "PhysicsZone",
    "PhysicsZoneRecord",
    "calibrated_devices",
    "physics_zone",
    "ModalityRecommendation",
    "Plan",
    "PlannedProbe",
    "TargetPlan",
    "TargetSpec",
    "TumourFeatures",
    "describe_tumour",
    "plan_ablation",
    "recommend_modality",
    "Device",
    "DeviceCatalogue",
    "Ellipsoid",
    "HeatSinkReport",
    "HeatSinkVessel",
    "Probe",
    "body_from_ct",
    "is_target_label",
    "matches",
    "target_mask",
    "ProbePose",
    "StructureRule",
    "Trajectory",
    "TrajectoryPolicy",
    "TrajectoryResult",
    "ZoneRow",
    "catalogue_version",
    "evaluate_directions",
    "fibonacci_directions",
    "find_trajectories",
    "heat_sink_check",
    "load_catalogue",
    "load_policy",
    "load_procedures",
    "needle_diameter_mm",
    "operator_angles",
    "plan_labelmap",
    "plan_markups",
    "plan_path",
    "plan_segments",
    "predict_zone",
    "prepare_case",
    "rasterise_zones",
    "target_from_label",
    "trace_one",
    "zone_dimensions",
    "zone_mesh",
    "zone_surfaces",
]
