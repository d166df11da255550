"""`openir verify run` (one case) and `openir verify batch` (a CSV of cases, on Dask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from openir.core.errors import InputError

app = typer.Typer(help="Ablation verification: registration, minimal ablative margin, verdict.",
                  no_args_is_help=True)


def _landmarks(path: Path | None) -> np.ndarray | None:
    """CSV of paired points: post_x,post_y,post_z,pre_x,pre_y,pre_z (LPS mm), header optional."""
    if path is None:
        return None
    try:
        rows = [ln.split(",") for ln in path.read_text().splitlines() if ln.strip()]
        if rows and not rows[0][0].strip().lstrip("-").replace(".", "").isdigit():
            rows = rows[1:]
        arr = np.array([[float(x) for x in r] for r in rows])
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read landmarks ({exc})", source=path) from None
    if arr.ndim != 2 or arr.shape[1] != 6 or len(arr) < 3:
        raise InputError("need >= 3 rows of post_x,post_y,post_z,pre_x,pre_y,pre_z", source=path)
    return arr


@app.command("run")
def run(
    pre_labels: Path = typer.Option(..., "--pre-labels", help="labels with the tumour (NIfTI/NRRD, SEG, RTSTRUCT)"),
    post_labels: Path | None = typer.Option(None, "--post-labels", help="labels with the ablation zone"),
    pre_image: Path | None = typer.Option(None, "--pre-image", help="pre image (registration; RTSTRUCT grid)"),
    post_image: Path | None = typer.Option(None, "--post-image", help="post image (registration; RTSTRUCT grid)"),
    tumour: str = typer.Option("tumour", help="tumour label name or prefix"),
    zone: str = typer.Option("ablation_zone", help="ablation-zone label name"),
    organ: str = typer.Option("", help="organ label on both scans, e.g. liver (quality gate, capsule rule)"),
    vessels: str = typer.Option("", help="large-vessel label: no margin required beyond its wall (vessel rule)"),
    stages: str = typer.Option("rigid", help="registration stages: rigid, rigid+affine, rigid+bspline, ..."),
    landmarks: Path | None = typer.Option(None, help="CSV of paired points post_xyz,pre_xyz (LPS mm)"),
    same_frame: bool = typer.Option(False, "--same-frame", help="pre and post labels share one frame (no check)"),
    capsule_rule: bool = typer.Option(False, "--capsule-rule", help="no margin required beyond the organ capsule"),
    out: Path = typer.Option(Path("openir-verify"), "--out", "-o", help="output folder"),
    case_id: str | None = typer.Option(None, help="case name for the report"),
) -> None:
    """Verify one ablation: margins, coverage and verdict; writes JSON, HTML, NIfTI and mesh."""
    from openir.io import read_image
    from openir.report.verify_report import write_verification
    from openir.verify.pipeline import VerifyOptions, verify
    from openir.verify.structures import read_structures

    lm = _landmarks(landmarks)
    console = Console()
    pre_img = read_image(pre_image) if pre_image else None
    post_img = read_image(post_image) if post_image else None
    opts = VerifyOptions(tumour=tumour, zone=zone, organ=organ or None, vessels=vessels or None,
                         stages=tuple(s for s in stages.split("+") if s), same_frame=same_frame,
                         capsule_rule=capsule_rule, vessel_rule=bool(vessels),
                         case_id=case_id)
    with console.status("verifying ..."):
        v = verify(
            read_structures(pre_labels, pre_img), read_structures(post_labels, post_img) if post_labels else None,
            pre_image=pre_img, post_image=post_img,
            landmarks=(lm[:, :3], lm[:, 3:]) if lm is not None else None, options=opts,
        )
        write_verification(v, out)
    r = v.report
    colour = "green" if r.verdict.complete else "red"
    console.print(f"[bold {colour}]{r.verdict.term}[/bold {colour}]: {r.verdict.explanation}")
    console.print(f"minimal margin {r.min_margin_mm:.2f} mm ({r.verdict.margin_class}); surface "
                  + ", ".join(f"{k}: {x:.1f} %" for k, x in r.surface_pct_by_class.items()))
    for note in (r.resolution_note, r.layout_note):
        if note:
            console.print(f"[yellow]{note}[/yellow]")
    console.print(f"report: {r.files.get('html')}")
    if r.registration is not None and not r.registration.usable_for_verdict:
        raise typer.Exit(code=3)  # margins written, but no verdict: fail on the safe side


@app.command("batch")
def batch(
    cases: Path = typer.Argument(..., help="CSV with case_id, pre_labels[, post_labels, pre_image, ...]"),
    results: Path = typer.Option(Path("verify-results.csv"), "--results", "-r", help="output CSV"),
    out: Path | None = typer.Option(None, "--out", "-o", help="folder for per-case reports"),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: a local cluster)"),
    workers: int = typer.Option(2, min=1, help="local workers"),
    threads: bool = typer.Option(False, "--threads", help="local workers as threads (no crash isolation)"),
    resume: bool = typer.Option(False, "--resume", help="skip cases already finished in --results"),
) -> None:
    """Verify every case in a CSV on Dask; one result row per case, written as each case finishes.

    Local by default: WORKERS processes, so a case that exhausts memory kills only its worker (it is
    retried once, then reported). With --scheduler every worker must read the CSV's files at the same
    absolute paths (shared file system). Exits 1 (after writing every row) naming any failed case.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from openir.core.settings import get_settings
    from openir.report.verify_report import write_verification
    from openir.verify.batch import BatchOptions, run_batch

    console = Console()
    failed: list[str] = []
    with Progress(TextColumn("[bold]verifying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
                  TimeElapsedColumn(), console=console, transient=True) as prog:
        task = prog.add_task("batch", total=None, last="starting workers ...")

        def step(done: int, total: int, row: dict) -> None:
            if row["status"] != "ok":
                failed.append(row["case_id"])
            prog.update(task, completed=done, total=total, last=f"{row['case_id']}: {row['status']}"
                        + (f" ({len(failed)} failed)" if failed else ""))

        opts = BatchOptions(out_dir=out, write=write_verification, scheduler=scheduler or get_settings().dask_scheduler,
                            workers=workers, processes=not threads, resume=resume, progress=step)
        rows = run_batch(cases, results, opts)
    bad = [r for r in rows if r["status"] != "ok"]
    console.print(f"{len(rows) - len(bad)}/{len(rows)} cases verified; results in {results}")
    if bad:
        for r in bad:
            console.print(f"[red]{r['case_id']}[/red] ({r['status']}): {r['message']}", soft_wrap=True)
        raise typer.Exit(code=1)
