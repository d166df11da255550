"""The Dask batch as a hospital runs it: relative paths on a process cluster, a case that kills its
workers, results streamed as cases finish, and --resume."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner
from verify_synth import ball, grid_for

from openir.cli import app
from openir.core import LabelMap
from openir.io import write_nifti
from openir.verify import BatchOptions, run_batch

POISON = '''
import os
from openir.verify.batch import run_case


def poisoned(row, base, out_dir, write):
    if row["case_id"] == "poison":
        os._exit(1)  # the worker process dies, as it would when the kernel kills it for memory
    return run_case(row, base, out_dir, write)
'''


def _case_files(folder, n_good: int, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    g = grid_for(40.0, (1.0, 1.0, 2.0))
    c = np.array([20.0, 20.0, 20.0])
    organ = ball(g, c, 18.0)
    for name, masks in (("pre", {"liver": organ, "tumour_1": ball(g, c, 6.0)}),
                        ("post", {"liver": organ, "ablation_zone": ball(g, c + [1, 0, 0], 10.0)})):
        lm = LabelMap.from_masks(masks, g)
        write_nifti(lm, folder / f"{name}.nii.gz")
        (folder / f"{name}.labels.json").write_text(json.dumps({str(k): v for k, v in lm.labels.items()}))
    lines = ["case_id,pre_labels,post_labels,same_frame"]
    lines += [f"c{i},pre.nii.gz,post.nii.gz,1" for i in range(n_good)]
    (folder / "cases.csv").write_text("\n".join(lines) + "\n" + extra)


def _rows(path):
    return {r["case_id"]: r for r in csv.DictReader(path.open())}


def _comparable(row):
    return {k: v for k, v in row.items() if k != "report_dir"}


@pytest.mark.slow
def test_relative_paths_on_a_two_process_cluster_equal_the_local_run(tmp_path, monkeypatch):
    """Workers start in another folder than the client: every path must be absolute when it leaves."""
    from distributed import LocalCluster

    _case_files(tmp_path / "data", 4)
    local = run_batch(tmp_path / "data" / "cases.csv", tmp_path / "local.csv", processes=False)
    assert [r["status"] for r in local] == ["ok"] * 4
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.chdir(tmp_path)  # the workers keep the folder they started in
        res = CliRunner().invoke(app, ["verify", "batch", "data/cases.csv", "--results", "out/res.csv",
                                       "--out", "reports", "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 0, res.output
    assert "4/4 cases verified" in res.output
    rows = _rows(tmp_path / "out" / "res.csv")
    want = _rows(tmp_path / "local.csv")
    assert {c: _comparable(r) for c, r in rows.items()} == {c: _comparable(r) for c, r in want.items()}
    for cid in rows:
        assert (tmp_path / "reports" / cid / "report.json").exists()


@pytest.mark.slow
def test_a_case_that_kills_its_workers_is_named_and_the_others_complete(tmp_path, monkeypatch):
    (tmp_path / "poison_runner.py").write_text(POISON)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(p for p in sys.path if p)}")  # worker processes
    import poison_runner

    monkeypatch.setattr("openir.verify.batch.run_case", poison_runner.poisoned)
    _case_files(tmp_path, 8, extra="poison,pre.nii.gz,post.nii.gz,1\n")
    res = CliRunner().invoke(app, ["verify", "batch", str(tmp_path / "cases.csv"), "--results",
                                   str(tmp_path / "res.csv"), "--workers", "2"])
    assert res.exit_code == 1, res.output
    assert "8/9 cases verified" in res.output and "poison" in res.output
    rows = _rows(tmp_path / "res.csv")
    assert len(rows) == 9 and sum(r["status"] == "ok" for r in rows.values()) == 8
    assert rows["poison"]["status"] == "error" and "KilledWorker" in rows["poison"]["message"]
    assert "out of memory" in rows["poison"]["message"]

    # --resume after the cause is fixed: only the failed case runs again
    monkeypatch.undo()
    seen: list[str] = []
    again = run_batch(tmp_path / "cases.csv", tmp_path / "res.csv", resume=True, processes=False,
                      progress=lambda done, total, row: seen.append(row["case_id"]))
    assert seen == ["poison"] and [r["status"] for r in again] == ["ok"] * 9


def test_results_are_written_as_cases_finish_so_an_interrupt_keeps_them(tmp_path):
    _case_files(tmp_path, 5)

    def stop_after_two(done, total, row):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(tmp_path / "cases.csv", tmp_path / "res.csv",
                  BatchOptions(workers=1, processes=False, progress=stop_after_two))
    assert len(_rows(tmp_path / "res.csv")) == 2  # both finished cases are on disk
    seen: list[str] = []
    rows = run_batch(tmp_path / "cases.csv", tmp_path / "res.csv", BatchOptions(
        workers=1, processes=False, resume=True, progress=lambda d, t, r: seen.append(r["case_id"])))
    assert len(seen) == 3 and [r["status"] for r in rows] == ["ok"] * 5
    assert [r["case_id"] for r in rows] == [f"c{i}" for i in range(5)]  # CSV order, not finishing order


def test_resume_refuses_a_file_that_is_not_a_results_file(tmp_path):
    from openir.core import InputError

    _case_files(tmp_path, 1)
    (tmp_path / "res.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a results file"):
        run_batch(tmp_path / "cases.csv", tmp_path / "res.csv", resume=True, processes=False)
