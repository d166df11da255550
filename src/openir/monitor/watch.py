"""Folder watching: new DICOM files become complete multi-slice frames (magnitude + phase).

Polling, no inotify: a file counts once its size has stayed the same over two polls (the scanner or
the network copy has finished writing it). Files are grouped by temporal position; a frame is
complete when both magnitude and phase have ``n_slices`` slices. Frames are handed out in time
order, each exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from openir.core.errors import InputError
from openir.io.dicom_files import candidate_files, read_dataset

from .models import MRFrame
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
    """Collects files from ``folder`` and yields complete frames in temporal order."""

    def __init__(self, folder: str | Path, *, n_slices: int | None = None, echo: int | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError("folder not found", source=self.folder)
        self.n_slices = n_slices
        self.echo = echo
        self._sizes: dict[Path, int] = {}
        self._seen: set[Path] = set()
        self._groups: dict[str, dict[str, list[Path]]] = {}
        self._done: set[str] = set()
        self._t0: float | None = None
        self._count = 0

    def poll(self) -> list[MRFrame]:
        """Look once for new, stable files; return frames that became complete (time order)."""
        for p in candidate_files(self.folder):
            if p in self._seen:
                continue
            size = p.stat().st_size
            if self._sizes.get(p) != size:
                self._sizes[p] = size
                continue  # changed since the last poll (or new): wait for one more poll
            self._seen.add(p)
            try:
                ds = read_dataset(p, stop_before_pixels=True)
                h = read_header(ds, p)
            except InputError:
                continue  # not an MR image with TE and field (e.g. a report): ignored
            if self.echo is not None and h.echo != self.echo:
                continue
            if h.kind not in ("M", "P"):
                continue
            self._groups.setdefault(h.temporal_key, {"M": [], "P": []})[h.kind].append(p)
        ready = []
        for key in sorted(self._groups, key=_order_key):
            if key in self._done:
                continue
            g = self._groups[key]
            n = self.n_slices or (len(g["M"]) if len(g["M"]) == len(g["P"]) and g["M"] else None)
            if n and len(g["M"]) >= n and len(g["P"]) >= n:
                ready.append(key)
            else:
                break  # frames come in order: wait for this one before any later one
        frames = []
        for key in ready:
            g = self._groups[key]
            if self.n_slices is None:
                self.n_slices = len(g["M"])
            f = frame_from_files(sorted(g["M"]), sorted(g["P"]), self._count, self._t0)
            if self._t0 is None and f.meta.get("acquisition_time_s") is not None:
                self._t0 = f.meta["acquisition_time_s"]
                f.time_s = 0.0
            self._done.add(key)
            self._count += 1
            frames.append(f)
        return frames

    def frames(self, *, interval_s: float = 0.5, idle_timeout_s: float | None = None,
               stop: Callable[[], bool] | None = None) -> Iterator[MRFrame]:
        """Yield frames as they complete; end after ``idle_timeout_s`` without a new frame."""
        last = time.monotonic()
        while True:
            got = self.poll()
            yield from got
            if got:
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return
            if stop is not None and stop():
                return
            time.sleep(interval_s)


def read_series_frames(folder: str | Path, *, echo: int | None = None) -> list[MRFrame]:
    """All complete frames of a finished series in a folder (for `openir thermo replay`)."""
    w = FolderWatcher(folder, echo=echo)
    w.poll()  # first poll records sizes
    frames = w.poll()
    if not frames:
        raise InputError("no complete magnitude + phase frames found (need MR images with ImageType M and P, "
                         "EchoTime and MagneticFieldStrength)", source=folder)
    return frames
