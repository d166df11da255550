"""Folder watching: new DICOM files become complete multi-slice frames (magnitude + phase).

Polling, no inotify: a file counts once its size has stayed the same over two polls (the scanner or
the network copy has finished writing it). Files are grouped by temporal position; a frame is
complete when both magnitude and phase have ``n_slices`` slices. Frames are handed out in time
order, each exactly once; a frame that cannot be completed or read is handed out as a
`SkippedFrame` (with the reason) so the session says so and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from openir.core.errors import InputError
from openir.io.dicom_files import candidate_files, read_dataset

from .models import MRFrame, SkippedFrame
from .phase import read_header, read_mr_volume


def frame_from_files(mag_files: list[Path], phase_files: list[Path], index: int, t0: float | None = None) -> MRFrame:
    """Read one frame's magnitude and phase stacks (same grid, same TE) into an `MRFrame`."""
    m = read_mr_volume(mag_files)
    p = read_mr_volume(phase_files)
    if not m.grid.same_as(p.grid):
        raise InputError("magnitude and phase of a frame lie on different grids", source=mag_files[0].parent)
    if abs(m.meta["te_ms"] - p.meta["te_ms"]) > 1e-6:
        raise InputError(f"magnitude TE {m.meta['te_ms']} ms != phase TE {p.meta['te_ms']} ms", source=phase_files[0])
    at = p.meta.get("acquisition_time_s")
    t = float(at - t0) if at is not None and t0 is not None else float(index)
    return MRFrame(m.array.astype(np.float32), p.array.astype(np.float32), p.grid, float(p.meta["te_ms"]),
                   float(p.meta["b0_t"]), t, index, {"acquisition_time_s": at, "temporal_key": p.meta["temporal_key"]})


def _order_key(key: str) -> tuple[int, str]:
    digits = "".join(c for c in key if c.isdigit())
    return (int(digits) if digits else 0, key)


class FolderWatcher:
    """Collects files from ``folder`` and yields complete frames in temporal order.

    Nothing stops it but the caller. A file that cannot be read yet (caught mid-write, truncated)
    is tried again on the next ``retries`` polls; a frame that still cannot be read, or that stays
    incomplete (a dropped slice) while ``max_wait_polls`` later frames are complete, is handed out
    as a `SkippedFrame` with the reason, and later frames follow. ``problems`` lists every file or
    frame given up on.
    """

    def __init__(self, folder: str | Path, *, n_slices: int | None = None, echo: int | None = None,
                 retries: int = 3, max_wait_polls: int = 6) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError("folder not found", source=self.folder)
        self.n_slices = n_slices
        self.echo = echo
        self.retries = retries
        self.max_wait_polls = max_wait_polls
        self._sizes: dict[Path, int] = {}
        self._seen: set[Path] = set()
        self._file_fail: dict[Path, int] = {}
        self._frame_fail: dict[str, int] = {}
        self._blocked: dict[str, int] = {}
        self._groups: dict[str, dict[str, list[Path]]] = {}
        self._done: set[str] = set()
        self._t0: float | None = None
        self._count = 0
        self.problems: list[str] = []

    def _scan(self) -> None:
        for p in candidate_files(self.folder):
            if p in self._seen:
                continue
            try:
                size = p.stat().st_size
            except OSError:
                continue  # removed or renamed between listing and stat (a scanner's temporary file)
            if self._sizes.get(p) != size:
                self._sizes[p] = size
                continue  # changed since the last poll (or new): wait for one more poll
            try:
                ds = read_dataset(p, stop_before_pixels=True)
            except InputError as exc:  # unreadable: maybe still being written
                n = self._file_fail.get(p, 0) + 1
                self._file_fail[p] = n
                if n > self.retries:
                    self._seen.add(p)
                    self.problems.append(f"{p.name}: unreadable after {n} tries ({exc}); left out")
                continue
            self._seen.add(p)
            try:
                h = read_header(ds, p)
            except InputError:
                continue  # a readable DICOM that is no MR image with TE and field (e.g. a report): ignored
            if self.echo is not None and h.echo != self.echo:
                continue
            if h.kind not in ("M", "P"):
                continue
            self._groups.setdefault(h.temporal_key, {"M": [], "P": []})[h.kind].append(p)

    def _slices(self) -> int | None:
        if self.n_slices is not None:
            return self.n_slices
        counts = [len(g["M"]) for g in self._groups.values() if g["M"] and len(g["M"]) == len(g["P"])]
        return max(counts) if counts else None

    def poll(self, *, final: bool = False) -> list[MRFrame | SkippedFrame]:
        """Look once for new, stable files; return frames that became complete (time order), and
        `SkippedFrame` for frames given up on. ``final``: the series is finished, so an incomplete
        frame will stay incomplete and is skipped at once."""
        self._scan()
        n = self._slices()
        keys = [k for k in sorted(self._groups, key=_order_key) if k not in self._done]
        complete = {k for k in keys if n and len(self._groups[k]["M"]) >= n and len(self._groups[k]["P"]) >= n}
        out: list[MRFrame | SkippedFrame] = []
        for pos, key in enumerate(keys):
            g = self._groups[key]
            if key not in complete:
                later = any(k in complete for k in keys[pos + 1:])
                if not (final or later):
                    break  # the newest frame is still arriving: wait for it
                waited = self._blocked.get(key, 0) + 1
                self._blocked[key] = waited
                if final or waited > self.max_wait_polls:
                    out.append(self._skip(key, f"incomplete: {len(g['M'])} magnitude and {len(g['P'])} phase "
                                               f"slice(s) of {n or '?'}"))
                    continue
                break  # frames come in order: give this one a few more polls
            if self.n_slices is None:
                self.n_slices = n
            try:
                f = frame_from_files(sorted(g["M"])[:n], sorted(g["P"])[:n], self._count, self._t0)
            except Exception as exc:  # noqa: BLE001 - a half-written file can fail anywhere in pydicom
                tries = self._frame_fail.get(key, 0) + 1
                self._frame_fail[key] = tries
                if tries > self.retries or final:
                    out.append(self._skip(key, f"unreadable after {tries} tries: {exc}"))
                    continue
                break  # try again on the next poll, keep the order
            if self._t0 is None and f.meta.get("acquisition_time_s") is not None:
                self._t0 = f.meta["acquisition_time_s"]
                f.time_s = 0.0
            self._done.add(key)
            self._count += 1
            out.append(f)
        return out

    def _skip(self, key: str, reason: str) -> SkippedFrame:
        self._done.add(key)
        self.problems.append(f"frame {key}: {reason}; skipped")
        sk = SkippedFrame(index=self._count, reason=reason, key=key)
        self._count += 1
        return sk

    def frames(self, *, interval_s: float = 0.5, idle_timeout_s: float | None = None,
               stop: Callable[[], bool] | None = None) -> Iterator[MRFrame | SkippedFrame]:
        """Yield frames as they complete; end after ``idle_timeout_s`` without a new frame (frames
        still incomplete then are yielded as skipped, so none is lost without a word)."""
        last = time.monotonic()
        while True:
            got = self.poll()
            yield from got
            if got:
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                yield from self.poll(final=True)
                return
            if stop is not None and stop():
                yield from self.poll(final=True)
                return
            time.sleep(interval_s)


def read_series_frames(folder: str | Path, *, echo: int | None = None) -> list[MRFrame | SkippedFrame]:
    """All frames of a finished series in a folder (for `openir thermo replay`), in temporal order;
    incomplete or unreadable ones as `SkippedFrame` in their place."""
    w = FolderWatcher(folder, echo=echo, retries=1)
    w.poll()  # first poll records sizes
    frames = w.poll()
    frames += w.poll(final=True)
    if not any(isinstance(f, MRFrame) for f in frames):
        raise InputError("no complete magnitude + phase frames found (need MR images with ImageType M and P, "
                         "EchoTime and MagneticFieldStrength)", source=folder)
    return frames
