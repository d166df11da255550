"""Navigation: the plan over OpenIGTLink, tracker registration, live needle guidance, procedure log.

`planned_path` takes one probe of a `Plan`; `register_paired_points` (and `refine_with_surface`)
register the tracker to the image with FRE and expected TRE, refusing guidance above the limits of
``data/navigation.yaml``; `Guide` turns each tracked pose into a `GuidanceFrame` (errors against the
path, clearance to every forbidden structure, alerts); `NavigationSession` logs every pose, frame and
registration (`NavigationLog`, JSON lines) and `replay` recomputes a log; `Bridge` serves the plan
to OpenIGTLink clients (RAS) and receives poses; `simulated_poses` plays a synthetic insertion;
`robot_target` gives a robot its target and approach poses.
"""

from .bridge import Bridge, PlanContent, ReceivedPose, StatusMessage, plan_messages
from .config import NavigationConfig, load_navigation_config
from .frames import RAS_FROM_LPS, lps_to_ras_matrix, lps_to_ras_points, needle_pose
from .guidance import ForbiddenStructure, Guide, forbidden_structures
from .models import (
    Alert,
    GuidanceFrame,
    NavigationSummary,
    PlannedPath,
    RegistrationResult,
    RobotTarget,
)
from .navlog import NavigationLog, read_log, summarise
from .paths import planned_path
from .registration import (
    Fiducials,
    expected_fre,
    expected_tre,
    given_registration,
    refine_with_surface,
    register_paired_points,
    rigid_fit,
)
from .replay import ReplayResult, replay
from .robot import robot_target
from .session import NavigationSession
from .simulate import InsertionSpec, SimulatedSetup, random_rigid, simulated_poses, simulated_setup
from .surfaces import label_surface

__all__ = [
    "RAS_FROM_LPS",
    "Alert",
    "Bridge",
    "Fiducials",
    "ForbiddenStructure",
    "Guide",
    "GuidanceFrame",
    "InsertionSpec",
    "NavigationConfig",
    "NavigationLog",
    "NavigationSession",
    "NavigationSummary",
    "PlanContent",
    "PlannedPath",
    "ReceivedPose",
    "RegistrationResult",
    "ReplayResult",
    "RobotTarget",
    "SimulatedSetup",
    "StatusMessage",
    "expected_fre",
    "expected_tre",
    "forbidden_structures",
    "given_registration",
    "label_surface",
    "load_navigation_config",
    "lps_to_ras_matrix",
    "lps_to_ras_points",
    "needle_pose",
    "plan_messages",
    "planned_path",
    "random_rigid",
    "read_log",
    "refine_with_surface",
    "register_paired_points",
    "replay",
    "rigid_fit",
    "robot_target",
    "simulated_poses",
    "simulated_setup",
    "summarise",
]
