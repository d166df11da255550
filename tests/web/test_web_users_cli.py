"""`openir users` and `openir serve --workers 2` as an IT engineer uses them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core import InputError


def _run(args, stdin=None):
    return CliRunner().invoke(app, args, input=stdin)


def test_first_admin_then_accounts(tmp_path):
    db = f"sqlite:///{tmp_path / 'o.db'}"
    r = _run(["users", "add-admin", "chief", "--password-stdin", "--db", db], "a-long-password\n")
    assert r.exit_code == 0, r.output
    r = _run(["users", "add-admin", "second", "--password-stdin", "--db", db], "a-long-password\n")
    assert isinstance(r.exception, InputError) and "exists already" in str(r.exception)
    r = _run(["users", "add", "qc1", "--role", "centre", "--password-stdin", "--db", db], "another-password\n")
    assert r.exit_code == 0, r.output
    r = _run(["users", "add", "op1", "--role", "operator", "--password-stdin", "--db", db], "another-password\n")
    assert isinstance(r.exception, InputError) and "need --hospital" in str(r.exception)
    r = _run(["users", "add", "op1", "--role", "operater", "--hospital", "H1", "--password-stdin", "--db", db], "x" * 12 + "\n")
    assert isinstance(r.exception, InputError) and "role" in str(r.exception)
    r = _run(["users", "add", "qc2", "--role", "centre", "--password-stdin", "--db", db], "short\n")
    assert isinstance(r.exception, InputError) and "10 characters" in str(r.exception)
    r = _run(["users", "disable", "qc", "--db", db])
    assert isinstance(r.exception, InputError) and "did you mean 'qc1'" in str(r.exception)
    assert _run(["users", "disable", "qc1", "--db", db]).exit_code == 0
    out = _run(["users", "list", "--db", db]).output
    assert "chief" in out and "qc1" in out and "no" in out and "password" not in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_with_two_workers_starts_and_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "OPENIR_HOME": str(tmp_path)}
    env.pop("OPENIR_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "openir", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and status is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        assert status == 200
        pids = {httpx.get(f"http://127.0.0.1:{port}/api/me", timeout=5).status_code for _ in range(6)}
        assert pids == {401}
    finally:
        proc.terminate()
        proc.wait(30)
    assert (tmp_path / "secret.key").exists()
