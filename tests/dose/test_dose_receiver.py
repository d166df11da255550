"""DICOM receiver over loopback, in a subprocess: store once, resend, kill -9 mid-import, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from openir.dose.receiver import send_files
from openir.phantom.dose_reports import synthetic_xray_rdsr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, port: int, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "OPENIR_DOSE_IMPORT_DELAY_S": str(delay), "OPENIR_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "openir.cli.dose", "listen", "--port", str(port),
           "--db", f"sqlite:///{tmp_path / 'dose.db'}", "--root", str(tmp_path / "root")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("receiver exited early") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("receiver did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stored(tmp_path) -> list[str]:
    from openir.dose import DoseStore

    s = DoseStore(f"sqlite:///{tmp_path / 'dose.db'}", tmp_path / "root", skin_dose=False)
    try:
        return sorted(r.sop_instance_uid for r in s.reports(include_superseded=True))
    finally:
        s.close()


def _wait_until(pred, timeout=40.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
def test_dose_receiver_once_twice_and_crash(tmp_path):
    files = []
    for i in range(4):
        p = tmp_path / f"r{i}.dcm"
        synthetic_xray_rdsr(6, seed=10 + i, patient_id=f"R{i}").save_as(p, enforce_file_format=True)
        files.append(p)
    import pydicom

    uids = sorted(str(pydicom.dcmread(p).SOPInstanceUID) for p in files)
    port = _free_port()
    proc = _start(tmp_path, port)
    try:
        assert send_files(files[:1], "127.0.0.1", port) == [0]
        assert _wait_until(lambda: _stored(tmp_path) == uids[:1] or len(_stored(tmp_path)) == 1)
        assert send_files(files[:1], "127.0.0.1", port) == [0]  # sent twice
        time.sleep(1.0)
        assert len(_stored(tmp_path)) == 1
    finally:
        _stop(proc)

    # slow imports, send the rest, kill -9 while the worker is importing them
    proc = _start(tmp_path, port, delay=1.5)
    try:
        statuses = send_files(files[1:], "127.0.0.1", port)
        assert statuses == [0, 0, 0]  # acknowledged: durably in incoming/ from now on
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_stored(tmp_path)) < 4  # the kill did interrupt the imports
    assert len(list((tmp_path / "root" / "incoming").glob("*.dcm"))) >= 1

    proc = _start(tmp_path, port)  # restart: recovers incoming/
    try:
        assert _wait_until(lambda: len(_stored(tmp_path)) == 4)
        assert _stored(tmp_path) == uids  # every acknowledged report exactly once
        assert _wait_until(lambda: not list((tmp_path / "root" / "incoming").glob("*.dcm")), 10)
    finally:
        _stop(proc)
