"""End to end: label files in, report files out; `openir verify run` and the Dask batch."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner
from verify_synth import ball, grid_for

from openir.cli import app
from openir.core import InputError, LabelMap
from openir.io import write_nifti
from openir.report.verify_report import write_verification
from openir.verify import VerifyOptions, run_batch, verify


def _write_labels(path, masks, grid):
    lm = LabelMap.from_masks(masks, grid)
    write_nifti(lm, path)
    stem = path.name.removesuffix(".nii.gz")
    (path.parent / f"{stem}.labels.json").write_text(json.dumps({str(k): v for k, v in lm.labels.items()}))
    return lm


@pytest.fixture()
def files(tmp_path):
    g = grid_for(50.0, (1.0, 1.0, 2.0))
    c = np.array([25.0, 25.0, 25.0])
    organ = ball(g, c, 23.0)
    pre = _write_labels(tmp_path / "pre.nii.gz", {"liver": organ, "tumour_1": ball(g, c, 7.0)}, g)
    post = _write_labels(tmp_path / "post.nii.gz", {"liver": organ, "ablation_zone": ball(g, c + [1, 0, 0], 11.0)}, g)
    return tmp_path, pre, post


def test_verify_labels_only_writes_everything(files):
    tmp, pre, post = files
    v = verify(pre, post, options=VerifyOptions(organ="liver"))
    write_verification(v, tmp / "out")
    assert abs(v.report.min_margin_mm - 3.0) <= 1.0 and v.report.verdict.margin_class == "0-5 mm"
    for name in ("report.json", "report.html", "margin_map.nii.gz", "margin_surface.vtk", "margin_surface.png"):
        assert (tmp / "out" / name).stat().st_size > 0
    html = (tmp / "out" / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<ul>")[0]
    data = json.loads((tmp / "out" / "report.json").read_text())
    assert data["verdict"]["complete"] is True and data["registration"]["method"].startswith("identity")
    assert data["registration"]["measured_by"] == ["organ"] and data["registration"]["organ_dice"] == 1.0


def test_unmeasured_alignment_gives_no_verdict_and_unknown_organ_is_an_error(files):
    tmp, pre, post = files
    v = verify(pre, post)  # separate files, no images, no organ: alignment not measured
    assert not v.report.verdict.complete and v.report.verdict.term.startswith("no verdict")
    assert not v.report.registration.usable_for_verdict
    assert verify(pre, post, options=VerifyOptions(same_frame=True)).report.verdict.complete
    with pytest.raises(InputError, match="no organ label 'livr'.*liver"):
        verify(pre, post, options=VerifyOptions(organ="livr"))


def test_scanner_coordinates_are_checked_by_the_organ(files):
    from openir.verify import RegistrationRefused

    tmp, pre, post = files
    shifted = LabelMap(np.roll(post.array, 12, axis=2), post.affine.copy(), dict(post.meta), dict(post.labels))
    with pytest.raises(RegistrationRefused, match="do not line up in scanner coordinates: organ Dice"):
        verify(pre, shifted, options=VerifyOptions(organ="liver"))


def test_unknown_zone_label_is_clear(files):
    _, pre, _ = files
    with pytest.raises(InputError, match="ablation zone label 'ablation_zone'"):
        verify(pre)


def test_cli_run_and_batch(files):
    tmp, _, _ = files
    runner = CliRunner()
    res = runner.invoke(app, ["verify", "run", "--pre-labels", str(tmp / "pre.nii.gz"), "--post-labels",
                              str(tmp / "post.nii.gz"), "--organ", "liver", "--out", str(tmp / "cli")])
    assert res.exit_code == 0, res.output
    assert "technical success" in res.output and (tmp / "cli" / "report.html").exists()

    res = runner.invoke(app, ["verify", "run", "--pre-labels", str(tmp / "pre.nii.gz"), "--post-labels",
                              str(tmp / "post.nii.gz"), "--organ", "livr", "--out", str(tmp / "cli2")])
    # (the top-level `openir` entry point prints InputError's one line and exits 2)
    assert isinstance(res.exception, InputError) and "no organ label 'livr'" in str(res.exception)
    res = runner.invoke(app, ["verify", "run", "--pre-labels", str(tmp / "pre.nii.gz"), "--post-labels",
                              str(tmp / "post.nii.gz"), "--out", str(tmp / "cli3")])
    assert res.exit_code == 3 and "no verdict" in res.output  # alignment not measured

    (tmp / "cases.csv").write_text(
        "case_id,pre_labels,post_labels,zone,organ\n"
        "good,pre.nii.gz,post.nii.gz,,liver\n"
        "missing,nope.nii.gz,post.nii.gz,,liver\n"
        "wrongzone,pre.nii.gz,post.nii.gz,necrosis,liver\n"
        "unchecked,pre.nii.gz,post.nii.gz,,\n"
    )
    res = runner.invoke(app, ["verify", "batch", str(tmp / "cases.csv"), "--results", str(tmp / "res.csv")])
    assert res.exit_code == 1, res.output  # some cases failed: non-zero, and each is named
    assert "1/4 cases verified" in res.output
    for cid in ("missing", "wrongzone", "unchecked"):
        assert cid in res.output
    rows = {r["case_id"]: r for r in csv.DictReader((tmp / "res.csv").open())}
    assert rows["good"]["status"] == "ok" and float(rows["good"]["min_margin_mm"]) > 2.0
    assert rows["missing"]["status"] == "error" and "nope.nii.gz" in rows["missing"]["message"]
    assert rows["wrongzone"]["status"] == "error" and "necrosis" in rows["wrongzone"]["message"]
    assert rows["unchecked"]["status"] == "no verdict"
    (tmp / "good.csv").write_text("case_id,pre_labels,post_labels,organ\ng,pre.nii.gz,post.nii.gz,liver\n")
    res = runner.invoke(app, ["verify", "batch", str(tmp / "good.csv"), "--results", str(tmp / "r2.csv")])
    assert res.exit_code == 0, res.output


def test_batch_rejects_bad_csv(tmp_path):
    (tmp_path / "c.csv").write_text("id,labels\nx,y\n")
    with pytest.raises(InputError, match="missing column"):
        run_batch(tmp_path / "c.csv", tmp_path / "r.csv")


def test_batch_on_a_dask_scheduler_address(files):
    """The cluster path: a real scheduler reached by its tcp:// address, as a site cluster would be."""
    from distributed import LocalCluster

    tmp, _, _ = files
    (tmp / "cases.csv").write_text("case_id,pre_labels,post_labels,organ\nc1,pre.nii.gz,post.nii.gz,liver\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        rows = run_batch(tmp / "cases.csv", tmp / "res.csv", scheduler=cluster.scheduler_address)
    assert cluster.scheduler_address.startswith(("tcp://", "inproc://"))
    assert rows[0]["status"] == "ok" and float(rows[0]["min_margin_mm"]) > 2.0
