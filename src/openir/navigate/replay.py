"""Replaying a procedure log: the logged poses and registrations go through the same guidance
again, and the recomputed frames are compared with the logged ones (a changed plan, label map or
threshold file shows as a difference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .guidance import Guide
from .models import GuidanceFrame, NavigationSummary, RegistrationResult
from .navlog import LogContents
from .session import NavigationSession


@dataclass
class ReplayResult:
    summary: NavigationSummary
    frames: list[GuidanceFrame]
    max_tip_difference_mm: float = 0.0
    alerts_differ: int = 0
    notes: list[str] = field(default_factory=list)


def replay(log: LogContents, guide: Guide) -> ReplayResult:
    """Recompute every logged pose's guidance with ``guide``, in log order (registrations included)."""
    session: NavigationSession | None = None
    logged = {r["seq"]: r for r in log.of("guidance")}
    logged_alerts: dict[int, list[str]] = {}
    for a in log.of("alert"):
        logged_alerts.setdefault(a["seq"], []).append(a["alert"]["kind"])
    notes = list(log.notes)
    max_diff, differ = 0.0, 0
    reg = None
    for rec in log.records:
        if rec["kind"] == "registration":
            reg = RegistrationResult.model_validate({k: v for k, v in rec.items()
                                                     if k not in ("v", "procedure_id", "kind", "wall")})
            if session is None:
                session = NavigationSession(guide, reg, log.procedure_id)
            else:
                session.set_registration(reg)
        elif rec["kind"] == "pose":
            if session is None:
                notes.append(f"pose {rec['seq']} before any registration: skipped")
                continue
            f = session.on_pose(int(rec["seq"]), float(rec["t"]), np.asarray(rec["matrix"], float), rec.get("device", ""))
            old = logged.get(f.seq)
            if old is not None and old.get("tip_lps") and f.tip_lps:
                max_diff = max(max_diff, float(np.linalg.norm(np.subtract(old["tip_lps"], f.tip_lps))))
            if sorted(a.kind for a in f.alerts) != sorted(logged_alerts.get(f.seq, [])):
                differ += 1
    if session is None:
        from openir.core.errors import InputError

        raise InputError("the log holds no registration: nothing can be replayed")
    if differ:
        notes.append(f"{differ} pose(s) give other alerts than those logged (plan, labels or thresholds changed?)")
    return ReplayResult(session.summary(notes), session.frames, max_diff, differ, notes)
