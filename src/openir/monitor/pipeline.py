"""From a sequence of MR frames (folder, watcher or arrays) to maps, events and a live view.

The first ``n_baselines`` frames build the baseline library; every later frame is processed by a
`MonitorSession`. Used by `openir thermo watch`/`replay` and the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from openir.core.errors import InputError
from openir.core.volume import Grid

from .models import FrameResult, MonitorPlan, MRFrame, SkippedFrame
from .session import MonitorSession, SessionOptions
from .structures import MonitorStructures, structures_from_plan

# (out folder, session, latest frame, its magnitude, finished): draws the live view
LiveWriter = Callable[[Path, MonitorSession, FrameResult, np.ndarray, bool], None]


def run_monitoring(
    frames: Iterable[MRFrame | SkippedFrame],
    *,
    n_baselines: int,
    out: str | Path,
    plan: MonitorPlan | None = None,
    plan_dir: str | Path = ".",
    structures: MonitorStructures | None = None,
    structures_for: Callable[[Grid], MonitorStructures] | None = None,
    live_every: int = 1,
    on_frame: Callable[[FrameResult], None] | None = None,
    live: LiveWriter | None = None,
    **session_kw: object,
) -> MonitorSession:
    """Process frames; write ``events.jsonl``, ``summary.json`` and the final temperature/CEM43 maps
    (``final_maps.npz``) under ``out``; ``live`` (e.g. ``openir.report.monitor_view.write_live_view``)
    draws the live view every ``live_every`` frames and at the end.

    Structures: ``structures`` as given, else ``structures_for(grid)`` on the first frame's grid
    (e.g. from an ablation plan), else from the monitoring ``plan``. ``session_kw`` are `SessionOptions`
    fields; the plan's drift order, criterion and points apply where they are not given.

    A `SkippedFrame` from the reader, or a frame on another grid (dropped slices), is reported as a
    "monitoring_degraded" event and processing goes on with the next frame: no later frame is lost."""
    if n_baselines < 1:
        raise InputError("at least one baseline frame is needed", field="baselines")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "events.jsonl"
    log.write_text("")
    session: MonitorSession | None = None
    last: FrameResult | None = None
    last_mag: np.ndarray | None = None
    pending: list[str] = []  # problems before the session exists (reported once it does)
    seen = 0
    last_time: float | None = None
    period: float | None = None
    for f in frames:
        if isinstance(f, SkippedFrame):
            t = f.time_s if f.time_s is not None else (last_time + (period or 0.0) if last_time is not None else 0.0)
            if session is None or seen < n_baselines:
                pending.append(f"frame {f.index} (baseline phase) skipped: {f.reason}")
            else:
                res = session.skip_frame(t, f.reason)
                if on_frame is not None:
                    on_frame(res)
            continue
        if session is None:
            if structures is None and structures_for is not None:
                structures = structures_for(f.grid)
            if structures is None and plan is not None:
                structures = structures_from_plan(plan, f.grid, base_dir=plan_dir)
            kw = dict(session_kw)
            if plan is not None:
                kw.setdefault("drift_order", plan.drift_order)
                kw.setdefault("criterion", plan.criterion)
                kw.setdefault("points", plan.points)
            session = MonitorSession(f.grid, te_ms=f.te_ms, b0_t=f.b0_t, structures=structures,
                                     options=SessionOptions(event_log=log, **kw))  # type: ignore[arg-type]
        if last_time is not None and f.time_s > last_time:
            period = f.time_s - last_time
        if not f.grid.same_as(session.grid):
            why = (f"frame {f.index} lies on another grid ({f.grid.describe()}) than the first frame "
                   f"({session.grid.describe()}): dropped or moved slices")
            if seen < n_baselines:
                pending.append(why)
            else:
                res = session.skip_frame(f.time_s, why)
                last_time = f.time_s
                if on_frame is not None:
                    on_frame(res)
            continue
        for msg in pending:
            session.note_problem(f.time_s, msg)
        pending.clear()
        if seen < n_baselines:
            session.add_baseline(f.magnitude, f.phase, f.time_s)
        else:
            res = session.process(f.magnitude, f.phase, f.time_s)
            if not res.summary.skipped:
                last, last_mag = res, f.magnitude
            if on_frame is not None:
                on_frame(res)
            if live is not None and live_every and last is not None and (session.frame_count % live_every == 0 or res.events):
                live(out, session, last, last_mag, False)  # type: ignore[arg-type]
        last_time = f.time_s
        seen += 1
    if session is None or last is None or last_mag is None:
        raise InputError(f"got {seen} frame(s): need more than the {n_baselines} baseline frame(s)")
    if live is not None:
        live(out, session, last, last_mag, True)
    session.write_summaries(out / "summary.json")
    np.savez_compressed(out / "final_maps.npz", temperature_c=last.temperature_c, cem43_min=last.cem43_min,
                        damage=last.damage, lethal=last.lethal, affine=session.grid.affine)
    return session
