"""One navigated insertion: tracked poses (tracker frame) in, guidance frames out, everything logged.

Poses are processed in arrival order and each one is logged before its guidance is computed, so
the log holds every pose even if guidance fails; guidance is refused (state ``refused``, with the
registration's reasons) while the registration is not accepted.
"""

from __future__ import annotations

import time

import numpy as np

from .guidance import Guide
from .models import Alert, GuidanceFrame, NavigationSummary, RegistrationResult
from .navlog import NavigationLog, summarise


class NavigationSession:
    """Registration + guide + log for one procedure."""

    def __init__(self, guide: Guide, registration: RegistrationResult, procedure_id: str,
                 log: NavigationLog | None = None, keep_frames: bool = True, case_id: str = ""):
        self.guide = guide
        self.procedure_id = procedure_id
        self.case_id = case_id
        self.log = log
        self.keep_frames = keep_frames
        self.frames: list[GuidanceFrame] = []
        self.n_poses = 0
        self.registration = registration
        self.set_registration(registration)

    def set_registration(self, reg: RegistrationResult) -> None:
        self.registration = reg
        self._m = np.asarray(reg.image_from_tracker, float)
        if self.log is not None:
            self.log.write_registration(reg)

    def on_pose(self, seq: int, t_s: float, pose_tracker: np.ndarray, device: str = "") -> GuidanceFrame:
        """Guidance for one tracked pose (4x4 in the tracker frame)."""
        t0 = time.perf_counter()
        self.n_poses += 1
        if self.log is not None:
            self.log.write_pose(seq, t_s, pose_tracker, device)
        if not self.registration.accepted:
            frame = GuidanceFrame(seq=seq, t_s=t_s, state="refused", alerts=[Alert(
                kind="registration", severity="critical",
                message="guidance refused: " + "; ".join(self.registration.reasons))])
        else:
            frame = self.guide.frame(seq, t_s, self._m @ np.asarray(pose_tracker, float))
        frame.compute_ms = (time.perf_counter() - t0) * 1e3
        if self.log is not None:
            self.log.write_frame(frame)
        if self.keep_frames:
            self.frames.append(frame)
        return frame

    def summary(self, notes: list[str] | None = None) -> NavigationSummary:
        return summarise(self.frames, self.guide.path, self.procedure_id, self.registration, case_id=self.case_id,
                         config_version=self.guide.cfg.version, notes=notes)
