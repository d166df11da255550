"""DICOM storage receiver (C-STORE SCP) for dose reports.

A modality's report is first written durably into ``incoming/`` (temp file, fsync, atomic rename,
directory fsync) and only then acknowledged with status 0x0000; a worker thread imports it and
removes it from ``incoming/``. Whatever is left there after a crash is imported on the next start,
and imports are idempotent by SOP instance UID, so an acknowledged report is never lost nor
counted twice.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from .rdsr import SR_SOP_CLASSES
from .store import DoseStore, ImportResult, durable_write

log = logging.getLogger(__name__)
SUCCESS, OUT_OF_RESOURCES = 0x0000, 0xA700


class DoseReceiver:
    """A pynetdicom AE accepting RDSR storage and feeding a :class:`DoseStore`."""

    def __init__(self, store: DoseStore, *, ae_title: str = "OPENIR_DOSE", incoming: str | Path | None = None,
                 on_import: Callable[[ImportResult], None] | None = None, import_delay_s: float | None = None):
        self.store = store
        self.incoming = Path(incoming) if incoming else store.root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.on_import = on_import
        delay = os.environ.get("OPENIR_DOSE_IMPORT_DELAY_S") if import_delay_s is None else import_delay_s
        self.import_delay_s = float(delay or 0.0)  # tests slow imports down to kill one mid-way
        self.ae = AE(ae_title=ae_title)
        for uid in SR_SOP_CLASSES:
            self.ae.add_supported_context(uid)
        self.ae.add_supported_context(Verification)
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._server = None

    # ---- SCP handler -----------------------------------------------------------------------
    def _on_store(self, event) -> int:
        try:
            data = event.encoded_dataset(include_meta=True)
            sop = str(event.request.AffectedSOPInstanceUID or "unknown")
            safe = "".join(ch for ch in sop if ch.isdigit() or ch == ".")[:64] or "unknown"
            # one name per received copy: concurrent sends of one report never share a file
            path = self.incoming / f"{safe}.{uuid.uuid4().hex[:12]}.dcm"
            durable_write(path, data)
        except Exception:  # disk full etc.: refuse, so the modality keeps and retries the report
            log.exception("could not write incoming report")
            return OUT_OF_RESOURCES
        self._queue.put(path)
        return SUCCESS

    # ---- import worker ---------------------------------------------------------------------
    def _import_one(self, path: Path) -> None:
        if not path.exists():
            return
        if self.import_delay_s:
            time.sleep(self.import_delay_s)
        result = self.store.import_file(path)
        path.unlink(missing_ok=True)
        log.info("%s: %s %s", path.name, result.status, result.message)
        if self.on_import:
            self.on_import(result)

    def _run_worker(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            try:
                self._import_one(path)
            except Exception:  # keep the file in incoming/ for the next start
                log.exception("import of %s failed; kept for retry", path)

    def recover(self) -> int:
        """Queue every report left in ``incoming/`` by an earlier run; returns how many."""
        leftovers = sorted(p for p in self.incoming.glob("*.dcm"))
        for p in leftovers:
            self._queue.put(p)
        return len(leftovers)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 11112) -> None:
        """Start the worker (after queueing leftovers) and the SCP in the background."""
        self._worker = threading.Thread(target=self._run_worker, name="dose-import", daemon=True)
        self.recover()
        self._worker.start()
        self._server = self.ae.start_server((host, port), block=False,
                                            evt_handlers=[(evt.EVT_C_STORE, self._on_store)])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)
            self._worker = None

    def serve_forever(self, host: str = "127.0.0.1", port: int = 11112) -> None:
        self.start(host, port)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def send_files(paths: list[str | Path], host: str, port: int, ae_title: str = "OPENIR_DOSE") -> list[int]:
    """C-STORE each file to ``host:port`` (an SCU for tests and forwarding); returns the statuses."""
    import pydicom

    ae = AE(ae_title="OPENIR_SCU")
    for uid in SR_SOP_CLASSES:
        ae.add_requested_context(uid)
    assoc = ae.associate(host, port, ae_title=ae_title)
    if not assoc.is_established:
        raise ConnectionError(f"association with {ae_title}@{host}:{port} was not established")
    out = []
    try:
        for p in paths:
            status = assoc.send_c_store(pydicom.dcmread(p))
            out.append(int(status.Status) if status else -1)
    finally:
        assoc.release()
    return out
