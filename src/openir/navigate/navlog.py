"""The procedure log: every pose, guidance frame, alert and registration, appended as JSON lines
with the procedure id, flushed line by line (a crash loses at most the line being written; a torn
last line is skipped with a note on reading). `replay` recomputes the guidance from the logged poses
and `summarise` gives the entry and tip errors against the plan (`NavigationSummary`)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openir.core.errors import InputError

from .models import GuidanceFrame, NavigationSummary, PlannedPath, RegistrationResult

LOG_VERSION = "1"


class NavigationLog:
    """Append-only JSON-lines writer, locked against a second writer. Opening an existing log appends
    (a resumed procedure).

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> with NavigationLog(d + "/nav.jsonl", "P1") as log: log.write("note", text="start")
    >>> [r["kind"] for r in read_log(d + "/nav.jsonl").records]
    ['note']
    """

    def __init__(self, path: str | Path, procedure_id: str):
        self.path = Path(path)
        self.procedure_id = procedure_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the procedure
        try:  # one writer at a time: a second process on the same log would interleave two procedures
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise InputError("the navigation log is being written by another process", source=self.path) from None
        self.n_written = 0

    def write(self, kind: str, **data: Any) -> None:
        rec = {"v": LOG_VERSION, "procedure_id": self.procedure_id, "kind": kind, "wall": time.time(), **data}
        self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.n_written += 1

    def write_pose(self, seq: int, t_s: float, pose_tracker: np.ndarray, device: str = "") -> None:
        self.write("pose", seq=seq, t=t_s, device=device, matrix=np.asarray(pose_tracker, float).tolist())

    def write_frame(self, frame: GuidanceFrame) -> None:
        self.write("guidance", **frame.model_dump(mode="json", exclude={"alerts"}))
        for a in frame.alerts:
            self.write("alert", seq=frame.seq, t=frame.t_s, alert=a.model_dump(mode="json"))

    def write_registration(self, reg: RegistrationResult) -> None:
        self.write("registration", **reg.model_dump(mode="json"))
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> NavigationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class LogContents:
    records: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, kind: str) -> Iterator[dict]:
        return (r for r in self.records if r.get("kind") == kind)

    @property
    def procedure_id(self) -> str:
        return next((r["procedure_id"] for r in self.records if "procedure_id" in r), "")


def read_log(path: str | Path) -> LogContents:
    """All readable records; a torn or corrupt line is skipped and named in ``notes``."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the navigation log: {exc.strerror}", source=p) from None
    out = LogContents()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "kind" not in rec:
                raise ValueError
        except ValueError:
            out.notes.append(f"line {n}: not a complete log record (torn write?), skipped")
            continue
        out.records.append(rec)
    if not out.records:
        raise InputError("no navigation record in the file", source=p)
    return out


def summarise(frames: list[GuidanceFrame], path: PlannedPath, procedure_id: str,
              registration: RegistrationResult | None = None, case_id: str = "",
              config_version: str = "", notes: list[str] | None = None) -> NavigationSummary:
    """Entry and tip errors and alert counts of an insertion.

    Entry error: distance of the needle line from the planned entry point, at the first guided pose
    whose tip has passed the entry depth (the needle is then in the skin). Tip error: the last
    guided pose's tip to the planned tip."""
    guided = [f for f in frames if f.state == "guiding"]
    by_kind: dict[str, int] = {}
    first: dict[str, float] = {}
    for f in frames:
        for a in f.alerts:
            by_kind[a.kind] = by_kind.get(a.kind, 0) + 1
            first.setdefault(a.kind, f.t_s)
    entry_err = None
    e = np.asarray(path.entry_lps, float)
    for f in guided:
        if f.inserted_mm is not None and f.inserted_mm > 0 and f.tip_lps and f.direction_lps:
            tip, d = np.asarray(f.tip_lps), np.asarray(f.direction_lps)
            v = e - tip
            entry_err = float(np.linalg.norm(v - (v @ d) * d))
            break
    mins: dict[str, float] = {}
    for f in guided:
        for k, v in f.clearance_mm.items():
            mins[k] = min(v, mins.get(k, np.inf))
    last = guided[-1] if guided else None
    return NavigationSummary(
        procedure_id=procedure_id, case_id=case_id, path=path, registration=registration, n_poses=len(frames),
        n_guided=len(guided), n_refused=sum(f.state == "refused" for f in frames),
        n_invalid=sum(f.state == "invalid_pose" for f in frames),
        duration_s=(frames[-1].t_s - frames[0].t_s) if frames else 0.0, alerts_by_kind=by_kind, first_alert_s=first,
        entry_error_mm=entry_err, tip_error_mm=last.tip_to_target_mm if last else None,
        tip_lateral_mm=last.lateral_mm if last else None,
        final_depth_to_go_mm=last.depth_to_go_mm if last else None,
        final_angle_deg=last.angle_deg if last else None, min_clearance_mm=mins, config_version=config_version,
        notes=list(notes or []))
