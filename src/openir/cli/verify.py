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
    pre_labels: Path = typer.Option(..., "--pre-labels", help="labels with the tumour (and organ)"),
    post_labels: Path | None = typer.Option(None, "--post-labels", help="labels with the ablation zone"),
    pre_image: Path | None = typer.Option(None, "--pre-image", help="pre image (for registration)"),
    post_image: Path | None = typer.Option(None, "--post-image", help="post image (for registration)"),
    tumour: str = typer.Option("tumour", help="tumour label name or prefix"),
    zone: str = typer.Option("ablation_zone", help="ablation-zone label name"),
    organ: str = typer.Option("liver", help="organ label ('' for none)"),
    stages: str = typer.Option("rigid", help="registration stages: rigid, rigid+affine, rigid+bspline, ..."),
    landmarks: Path | None = typer.Option(None, help="CSV of paired points post_xyz,pre_xyz (LPS mm)"),
    capsule_rule: bool = typer.Option(False, "--capsule-rule", help="exclude surface near the organ capsule"),
    capsule_mm: float | None = typer.Option(None, help="capsule exclusion distance, mm (default from YAML)"),
    out: Path = typer.Option(Path("openir-verify"), "--out", "-o", help="output folder"),
    case_id: str | None = typer.Option(None, help="case name for the report"),
) -> None:
    """Verify one ablation: margins, coverage and verdict; writes JSON, HTML, NIfTI and mesh."""
    from openir.io import read_image, read_labels
    from openir.verify.pipeline import verify

    lm = _landmarks(landmarks)
    console = Console()
    with console.status("verifying ..."):
        v = verify(
            read_labels(pre_labels), read_labels(post_labels) if post_labels else None,
            pre_image=read_image(pre_image) if pre_image else None,
            post_image=read_image(post_image) if post_image else None,
            tumour=tumour, zone=zone, organ=organ or None,
            stages=tuple(s for s in stages.split("+") if s),
            landmarks_post=lm[:, :3] if lm is not None else None,
            landmarks_pre=lm[:, 3:] if lm is not None else None,
            capsule_rule=capsule_rule, capsule_exclusion_mm=capsule_mm, case_id=case_id, out=out,
        )
    r = v.report
    colour = "green" if r.verdict.complete else "red"
    console.print(f"[bold {colour}]{r.verdict.term}[/bold {colour}]: {r.verdict.explanation}")
    console.print(f"minimal margin {r.min_margin_mm:.2f} mm ({r.verdict.margin_class}); surface "
                  + ", ".join(f"{k}: {x:.1f} %" for k, x in r.surface_pct_by_class.items()))
    console.print(f"report: {r.files.get('html')}")


@app.command("batch")
def batch(
    cases: Path = typer.Argument(..., help="CSV with case_id, pre_labels[, post_labels, pre_image, ...]"),
    results: Path = typer.Option(Path("verify-results.csv"), "--results", "-r", help="output CSV"),
    out: Path | None = typer.Option(None, "--out", "-o", help="folder for per-case reports"),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: local threads)"),
    workers: int = typer.Option(2, help="local worker threads"),
) -> None:
    """Verify every case in a CSV, in parallel with Dask; one result row per case."""
    from openir.core.settings import get_settings
    from openir.verify.batch import run_batch

    rows = run_batch(cases, results, out_dir=out, scheduler=scheduler or get_settings().dask_scheduler,
                     workers=workers)
    ok = sum(r["status"] == "ok" for r in rows)
    Console().print(f"{ok}/{len(rows)} cases verified; results in {results}")
