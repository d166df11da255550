"""`openir thermo replay` and the folder watcher on a synthetic series written as Siemens DICOM."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core.labels import LabelMap
from openir.io import write_nifti
from openir.monitor import FolderWatcher, MonitorPlan, MonitorStructure
from openir.monitor.synthetic_series import (
    HeatingSeriesSpec,
    make_heating_series,
    write_heating_dicom,
)


@pytest.fixture(scope="module")
def dicom_series(tmp_path_factory):
    s = make_heating_series(HeatingSeriesSpec(shape=(3, 40, 40), heat_s=30, cool_s=4, power_w=4.0,
                                              breathing_amplitude_mm=0.0, n_baselines=3, seed=2))
    root = tmp_path_factory.mktemp("thermo")
    write_heating_dicom(s, root / "series")
    lab = s.labels.array.copy()
    write_nifti(LabelMap(lab, s.grid.affine, {}, dict(s.labels.labels)), root / "labels.nii.gz")
    (root / "labels.json").write_text(json.dumps({"labels": {str(k): v for k, v in s.labels.labels.items()}}))
    plan = MonitorPlan(labels="labels.nii.gz", structures=[
        MonitorStructure(label="tumour", role="target", margin_mm=2.0),
        MonitorStructure(label="organ_at_risk", role="organ_at_risk", kind="nerve"),
        MonitorStructure(label="fat", role="fat"),
    ], points={"tip": s.tip_lps})
    (root / "plan.json").write_text(plan.model_dump_json())
    return s, root


def test_replay_cli(dicom_series, tmp_path):
    s, root = dicom_series
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["thermo", "replay", str(root / "series"), "--plan", str(root / "plan.json"),
                                   "--baselines", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "summary.json").read_text())
    n_heated = len(s.times_s) - s.n_baselines
    assert len(doc["frames"]) == n_heated
    # frame times come from AcquisitionTime (relative to the first frame)
    assert doc["frames"][0]["time_s"] == pytest.approx(s.times_s[s.n_baselines] - s.times_s[0], abs=0.01)
    peak = max(f["max_temperature_c"] for f in doc["frames"])
    assert abs(peak - float(s.true_temperature_c.max())) < 5.0
    assert (out / "live.html").read_text().count("<img") == 1
    assert "refresh" not in (out / "live.html").read_text()  # finished: no more reloading
    maps = np.load(out / "final_maps.npz")
    assert maps["temperature_c"].shape == s.grid.shape


def test_replay_bad_plan_is_a_clean_error(dicom_series, tmp_path):
    _, root = dicom_series
    bad = tmp_path / "plan.json"
    bad.write_text('{"labels": "x.nii.gz", "structures": [{"label": "t", "role": "bogus"}]}')
    res = CliRunner().invoke(app, ["thermo", "replay", str(root / "series"), "--plan", str(bad)])
    assert res.exit_code != 0
    assert "structures" in str(res.exception)


def test_watcher_waits_for_complete_frames(dicom_series, tmp_path):
    _, root = dicom_series
    files = sorted((root / "series").glob("*.dcm"))
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    w = FolderWatcher(incoming, n_slices=3)
    first = [f for f in files if f.name.startswith("f0000")]
    for f in first[:4]:  # magnitude complete, one phase slice of three
        shutil.copy(f, incoming / f.name)
    assert w.poll() == [] and w.poll() == []
    for f in first[4:] + [f for f in files if f.name.startswith("f0001")]:
        shutil.copy(f, incoming / f.name)
    assert w.poll() == []  # new files must keep their size over one more poll
    frames = w.poll()
    assert [f.index for f in frames] == [0, 1]
    assert frames[0].phase.shape == (3, 40, 40) and frames[0].te_ms == 10.0 and frames[0].b0_t == 3.0
    assert w.poll() == []  # each frame is handed out once


def test_replay_loses_no_frame_after_a_bad_one(dicom_series, tmp_path):
    """A dropped phase slice (frame 5) and a half-written file (frame 8): both skipped with a warning,
    every later frame processed, exit 0."""
    s, root = dicom_series
    series = tmp_path / "series"
    shutil.copytree(root / "series", series)
    (series / "f0005_P_k01.dcm").unlink()
    half = series / "f0008_M_k00.dcm"
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["thermo", "replay", str(series), "--plan", str(root / "plan.json"),
                                   "--baselines", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "summary.json").read_text())
    n_heated = len(s.times_s) - s.n_baselines
    assert len(doc["frames"]) == n_heated  # every heated frame is accounted for
    skipped = [f["frame"] for f in doc["frames"] if f["skipped"]]
    assert skipped == [5 - 3, 8 - 3]
    assert sum(not f["skipped"] for f in doc["frames"]) == n_heated - 2
    assert doc["frames"][-1]["time_s"] == pytest.approx(s.times_s[-1] - s.times_s[0], abs=0.01)
    degraded = [e for e in doc["events"] if e["kind"] == "monitoring_degraded"]
    assert len(degraded) >= 2 and all("skipped" in e["message"] for e in degraded[:2])
    assert "2 frame(s) skipped" in res.output


def test_watcher_survives_a_file_caught_mid_write(dicom_series, tmp_path):
    _, root = dicom_series
    files = sorted((root / "series").glob("f0000*.dcm"))
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    w = FolderWatcher(incoming, n_slices=3)
    for f in files[:-1]:
        shutil.copy(f, incoming / f.name)
    last = files[-1]
    data = last.read_bytes()
    (incoming / last.name).write_bytes(data[: len(data) // 3])  # the writer stalls mid-file
    assert w.poll() == [] and w.poll() == []  # seen, unreadable: retried, not fatal
    (incoming / last.name).write_bytes(data)  # writing finishes
    got = w.poll() + w.poll()
    assert len(got) == 1 and got[0].index == 0 and got[0].phase.shape == (3, 40, 40)
    assert not w.problems


def test_replay_without_a_plan_claims_no_coverage(dicom_series, tmp_path):
    _, root = dicom_series
    res = CliRunner().invoke(app, ["thermo", "replay", str(root / "series"), "--baselines", "3", "-o",
                                   str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "coverage" not in res.output.replace("no coverage", "")
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert all(f["target_coverage"] is None for f in doc["frames"])


def test_watch_cli_loses_no_frame_after_a_bad_one(dicom_series, tmp_path, monkeypatch):
    """`thermo watch` end to end while a writer delivers the series frame by frame: one file caught
    mid-write (frame 5, finished two polls later) is retried and processed; one file that stays
    half-written (frame 8) is skipped with a warning; every later frame is processed."""
    import threading
    import time

    from openir.monitor import watch as watch_mod

    s, root = dicom_series
    files = sorted((root / "series").glob("*.dcm"))
    by_frame: dict[int, list] = {}
    for f in files:
        by_frame.setdefault(int(f.name[1:5]), []).append(f)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    polls = [0]
    real_poll = watch_mod.FolderWatcher.poll

    def counted_poll(self, *, final=False):
        polls[0] += 1
        return real_poll(self, final=final)

    monkeypatch.setattr(watch_mod.FolderWatcher, "poll", counted_poll)

    def wait_polls(n, limit_s=60.0):
        start, t0 = polls[0], time.monotonic()
        while polls[0] < start + n and time.monotonic() - t0 < limit_s:
            time.sleep(0.01)

    def writer():
        for f_idx in sorted(by_frame):
            for p in by_frame[f_idx]:
                data = p.read_bytes()
                if f_idx == 5 and p is by_frame[f_idx][-1]:
                    (incoming / p.name).write_bytes(data[: len(data) // 3])  # the writer stalls mid-file
                    wait_polls(2)
                    (incoming / p.name).write_bytes(data)  # and finishes
                elif f_idx == 8 and p is by_frame[f_idx][0]:
                    (incoming / p.name).write_bytes(data[: len(data) // 2])  # never finished
                else:
                    shutil.copy(p, incoming / p.name)
            wait_polls(1)  # one frame per poll, as a scanner delivers them

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["thermo", "watch", str(incoming), "--plan", str(root / "plan.json"),
                                   "--baselines", "3", "--out", str(out), "--interval", "0.05",
                                   "--idle-timeout", "2"])
    th.join(timeout=60)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "summary.json").read_text())
    n_heated = len(s.times_s) - s.n_baselines
    assert len(doc["frames"]) == n_heated  # every heated frame is accounted for
    assert [f["frame"] for f in doc["frames"] if f["skipped"]] == [8 - 3]  # frame 5 was retried, not lost
    assert doc["frames"][-1]["time_s"] == pytest.approx(s.times_s[-1] - s.times_s[0], abs=0.01)
    assert any(e["kind"] == "monitoring_degraded" and "skipped" in e["message"] for e in doc["events"])
