"""`openir navigate`: simulated insertion end to end (log, summary, figures, replay), a live session
over OpenIGTLink driven by a hand-written client in another process' place (a socket), the log's
fault handling, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.io import write_nifti
from openir.navigate import NavigationSummary, needle_pose, read_log

from . import igtl_raw
from .phantom import ENTRY, TUMOUR_C, phantom, plan

runner = CliRunner()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("navcase")
    ct, lab = phantom()
    write_nifti(ct, d / "ct.nii.gz")
    write_nifti(lab, d / "labels.nii.gz")
    (d / "labels.json").write_text(json.dumps({"labels": {str(v): n for v, n in lab.labels.items()}}))
    (d / "plan.json").write_text(plan("ct.nii.gz", "labels.nii.gz").model_dump_json())
    return d


def test_simulated_insertion_writes_log_summary_figures_and_replays(case, tmp_path):
    out = tmp_path / "nav"
    r = runner.invoke(app, ["navigate", str(case / "plan.json"), "--simulate", "--duration-s", "12",
                            "--drift-toward", "portal_vein", "--seed", "2", "-o", str(out),
                            "--procedure-id", "NAV-T1"])
    assert r.exit_code == 0, r.output
    for f in ("navigation.jsonl", "summary.json", "snapshot.png", "timeline.png", "navigation.html"):
        assert (out / f).stat().st_size > 0
    s = NavigationSummary.model_validate_json((out / "summary.json").read_text())
    assert s.procedure_id == "NAV-T1" and s.n_poses == s.n_guided == 600
    assert s.registration.method == "paired_point" and s.registration.accepted
    assert s.alerts_by_kind.get("approaching", 0) > 0 and s.alerts_by_kind.get("keep_away", 0) > 0
    assert s.first_alert_s["approaching"] < s.first_alert_s["keep_away"]
    log = read_log(out / "navigation.jsonl")
    assert {r["procedure_id"] for r in log.records} == {"NAV-T1"}
    assert sum(1 for _ in log.of("pose")) == 600
    r2 = runner.invoke(app, ["navigate", "replay", str(out / "navigation.jsonl"), "-o", str(tmp_path / "re")])
    assert r2.exit_code == 0, r2.output
    assert "largest tip difference from the log 0.0000 mm" in r2.output and "other alerts: 0" in r2.output
    s2 = NavigationSummary.model_validate_json((tmp_path / "re" / "replay_summary.json").read_text())
    assert s2.tip_error_mm == pytest.approx(s.tip_error_mm) and s2.entry_error_mm == pytest.approx(s.entry_error_mm)


def test_replay_survives_a_torn_last_line(case, tmp_path):
    out = tmp_path / "nav"
    r = runner.invoke(app, ["navigate", str(case / "plan.json"), "--simulate", "--duration-s", "2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    with open(out / "navigation.jsonl", "a") as fh:
        fh.write('{"v":"1","kind":"pose","seq":99')  # a crash in the middle of a write
    log = read_log(out / "navigation.jsonl")
    assert len(log.notes) == 1 and "torn" in log.notes[0]
    r2 = runner.invoke(app, ["navigate", "replay", str(out / "navigation.jsonl")])
    assert r2.exit_code == 0, r2.output
    assert "100 poses" in r2.output and "torn" in r2.output


@pytest.mark.parametrize("args, text", [
    (["navigate", "missing.json", "--simulate"], "cannot read the plan"),
    (["navigate", "PLAN", "--port", "70000"], "not a TCP port"),
    (["navigate", "PLAN"], "--port"),
    (["navigate", "PLAN", "--simulate", "--probe", "4"], "no probe 4"),
    (["navigate", "PLAN", "--simulate", "--drift-toward", "spleen"], "no structure 'spleen'"),
    (["navigate", "PLAN", "--port", "0", "--tracker-frame", "xyz"], "--tracker-frame"),
    (["navigate", "replay"], "give the log"),
    (["navigate", "replay", "nolog.jsonl"], "cannot read the navigation log"),
])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, args, text):
    args = [str(case / "plan.json") if a == "PLAN" else a for a in args]
    r = subprocess.run([sys.executable, "-m", "openir", *args, "-o", str(tmp_path / "o")] if args[1] != "replay"
                       else [sys.executable, "-m", "openir", *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert text in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_refused_registration_exits_1_and_guides_nothing(case, tmp_path):
    fid = tmp_path / "fid.json"
    img = [[0, -66, 0], [40, -50, 30], [-40, -50, -30], [30, -58, -40], [-30, -58, 40.0]]
    trk = [[p[0] + 8 * (-1) ** i, p[1], p[2]] for i, p in enumerate(img)]  # 8 mm errors: FRE far too large
    fid.write_text(json.dumps({"image_lps": img, "tracker": trk}))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "openir", "navigate", str(case / "plan.json"), "--port", str(port),
                             "--fiducials", str(fid), "--max-seconds", "3", "-o", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "guidance refused" in stderr and "FRE" in stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_session_over_openigtlink(case, tmp_path):
    """The CLI serves the plan to a connecting client and answers each pose with guidance."""
    port = _free_port()
    out = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-m", "openir", "navigate", str(case / "plan.json"), "--port", str(port),
                             "--tracker-frame", "lps", "--max-seconds", "12", "-o", str(out),
                             "--procedure-id", "NAV-LIVE"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sock = None
        end = time.monotonic() + 60
        while sock is None and time.monotonic() < end:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                time.sleep(0.2)
        assert sock is not None, "the bridge never listened"
        with sock:
            seen = {}
            while not {"PlanPoints", "CT", "P1Trajectory", "tumour_1", "portal_vein"} <= set(seen):
                m = igtl_raw.read_message(sock)
                seen[m["device"]] = m
            pts = seen["PlanPoints"]["points"] * [-1, -1, 1]
            assert seen["PlanPoints"]["names"] == ["P1 entry", "P1 tip", "tumour_1"]
            assert np.abs(pts[:2] - [ENTRY, TUMOUR_C]).max() < 0.01
            assert np.abs(pts[2] - TUMOUR_C).max() < 0.5  # the tumour's centroid
            u = (TUMOUR_C - ENTRY) / np.linalg.norm(TUMOUR_C - ENTRY)
            n = 50
            sock.sendall(b"".join(igtl_raw.transform("NeedleToTracker", needle_pose(ENTRY + (i + 1) * u, u))
                                  for i in range(n)))
            guidance = []
            while len(guidance) < n:
                m = igtl_raw.read_message(sock)
                if m["type"] == "STRING" and m["device"] == "Guidance":
                    guidance.append(json.loads(m["string"]))
            assert [g["seq"] for g in guidance] == list(range(n))
            assert guidance[-1]["inserted_mm"] == pytest.approx(n, abs=1e-3)
            assert guidance[-1]["lateral_mm"] == pytest.approx(0.0, abs=1e-3)
            sock.sendall(igtl_raw.status("Tracker", 1, "OK"))
            time.sleep(0.5)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
    log = read_log(out / "navigation.jsonl")
    assert sum(1 for _ in log.of("pose")) == 50
    assert [r["status"] for r in log.of("status")] == ["OK"]


def test_fiducials_surface_points_and_robot(case, tmp_path):
    """Live registration from files: fiducials, then ICP on skin points; the robot's poses written."""
    from openir.navigate import label_surface, random_rigid
    from openir.navigate.registration import apply

    _, lab = phantom()
    rng = np.random.default_rng(8)
    t = random_rigid(rng)  # tracker <- image
    img = np.array([[0, -66, 0], [40, -50, 30], [-40, -50, -30], [30, -58, -40], [-30, -58, 40.0]])
    skin = label_surface(lab, "skin")[0]
    pts = skin[(skin[:, 1] < -20)]
    pts = pts[rng.choice(len(pts), 200, replace=False)]
    (tmp_path / "fid.json").write_text(json.dumps({"image_lps": img.tolist(),
                                                   "tracker": apply(t, img + rng.normal(scale=0.4, size=img.shape)).tolist()}))
    (tmp_path / "skin.json").write_text(json.dumps(apply(t, pts).tolist()))
    robot = np.eye(4)
    robot[:3, 3] = [10, 20, 30]
    (tmp_path / "robot.json").write_text(json.dumps(robot.tolist()))
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "openir", "navigate", str(case / "plan.json"), "--port", str(_free_port()),
                        "--fiducials", str(tmp_path / "fid.json"), "--surface-points", str(tmp_path / "skin.json"),
                        "--robot", str(tmp_path / "robot.json"), "--max-seconds", "1", "-o", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    s = NavigationSummary.model_validate_json((out / "summary.json").read_text())
    reg = s.registration
    assert reg.method == "surface_icp" and reg.accepted and reg.surface_rms_mm < 1.0
    m = np.asarray(reg.image_from_tracker) @ t
    assert np.abs(m[:3, 3]).max() < 1.5 and np.abs(m[:3, :3] - np.eye(3)).max() < 0.02
    rt = json.loads((out / "robot_target.json").read_text())
    assert np.allclose(rt["target_robot"], TUMOUR_C + [10, 20, 30])
    u = (TUMOUR_C - ENTRY) / np.linalg.norm(TUMOUR_C - ENTRY)
    assert np.allclose(np.asarray(rt["approach_pose"])[:3, 3], ENTRY - rt["standoff_mm"] * u + [10, 20, 30])


def test_a_second_writer_is_refused(tmp_path):
    from openir.core.errors import InputError
    from openir.navigate import NavigationLog

    with NavigationLog(tmp_path / "nav.jsonl", "A") as log:
        log.write("note", text="first")
        with pytest.raises(InputError, match="another process"):
            NavigationLog(tmp_path / "nav.jsonl", "B")
    with NavigationLog(tmp_path / "nav.jsonl", "A") as log:  # released on close: a resumed procedure appends
        log.write("note", text="again")
    assert [r["text"] for r in read_log(tmp_path / "nav.jsonl").records] == ["first", "again"]
