"""A planned path as poses for a needle-guiding robot, in the robot's frame after registration."""

from __future__ import annotations

import numpy as np

from openir.core.errors import InputError

from .config import NavigationConfig, load_navigation_config
from .frames import is_rigid, needle_pose
from .models import PlannedPath, RobotTarget


def robot_target(path: PlannedPath, robot_from_image: np.ndarray,
                 config: NavigationConfig | None = None) -> RobotTarget:
    """Target pose (origin at the planned tip) and approach pose (on the planned line, the standoff
    outside the skin entry), both with +z along the insertion direction, in the robot's frame.

    >>> p = PlannedPath(probe_order=1, tumour="t", device="d", entry_lps=(0, 0, 0), tip_lps=(0, 0, 80),
    ...                 direction_lps=(0, 0, 1), length_mm=80)
    >>> r = robot_target(p, np.eye(4)); r.approach_pose[2][3], r.target_pose[2][3]
    (-20.0, 80.0)
    """
    m = np.asarray(robot_from_image, float)
    if not is_rigid(m):
        raise InputError("robot_from_image must be a rigid 4x4 transform", field="robot_from_image")
    cfg = config or load_navigation_config()
    stand = cfg.robot.approach_standoff_mm
    u = np.asarray(path.direction_lps, float)
    target = m @ needle_pose(path.tip_lps, u)
    approach = m @ needle_pose(np.asarray(path.entry_lps, float) - stand.value * u, u)
    e = m[:3, :3] @ np.asarray(path.entry_lps, float) + m[:3, 3]
    return RobotTarget(target_pose=target.tolist(), approach_pose=approach.tolist(), standoff_mm=stand.value,
                       standoff_source=stand.source, entry_robot=tuple(float(v) for v in e),  # type: ignore[arg-type]
                       target_robot=tuple(float(v) for v in target[:3, 3]))  # type: ignore[arg-type]
