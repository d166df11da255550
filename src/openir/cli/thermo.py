"""`openir thermo watch FOLDER --plan PLAN.json` and `openir thermo replay SERIES`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from openir.monitor.models import FrameResult
from openir.report.monitor_view import write_live_view

app = typer.Typer(help="MR thermometry: live temperature, thermal dose and safety alerts.", no_args_is_help=True)
console = Console()


def _printer(res: FrameResult) -> None:
    s = res.summary
    if s.skipped:
        console.print(f"frame {s.frame:4d}  t={s.time_s:7.1f} s  [yellow]skipped[/yellow]", highlight=False)
    else:
        cov = "" if s.target_coverage is None else f"coverage {100 * s.target_coverage:5.1f} %  "
        masked = f"  {s.masked_voxels} masked" if s.masked_voxels else ""
        console.print(f"frame {s.frame:4d}  t={s.time_s:7.1f} s  Tmax {s.max_temperature_c:6.1f} °C  "
                      f"{cov}{s.processing_ms:5.1f} ms{masked}", highlight=False)
    for e in res.events:
        colour = {"critical": "bold red", "warning": "yellow"}.get(e.severity, "cyan")
        console.print(f"[{colour}]{e.kind}[/{colour}] {e.message}", highlight=False)


def _inputs(plan: Path | None, labels: Path | None, names: Path | None, mr_from_plan: Path | None,
            tumour: list[str], out: Path, ct: Path | None = None) -> dict:
    """Keyword arguments of `run_monitoring` for ``--plan``: a monitoring plan (labels + roles) or an
    ablation plan from `openir plan` (targets, organs at risk and probe tips rebuilt on the MR grid)."""
    from openir.core.errors import InputError
    from openir.monitor.plan_input import (
        find_case_ct,
        find_case_labels,
        load_plan_input,
        plan_points,
        read_matrix,
    )
    from openir.plan import Plan, body_from_ct

    if plan is None:
        if labels or mr_from_plan or tumour or ct:
            raise InputError("--labels, --ct, --mr-from-plan and --tumour need --plan")
        return {}
    p = load_plan_input(plan)
    m = read_matrix(mr_from_plan) if mr_from_plan is not None else None
    if not isinstance(p, Plan):
        if m is not None:
            p = p.model_copy(update={"mr_from_plan": m.tolist()})
        return {"plan": p, "plan_dir": plan.parent}
    from openir.io import read_image, read_labels
    from openir.monitor.plan_input import structures_from_ablation_plan

    lp = find_case_labels(p, plan, labels)
    lm = read_labels(lp, names) if names else read_labels(lp)
    cp = find_case_ct(p, plan, ct)
    body = None
    if cp is not None:
        img = read_image(cp)
        if img.shape != lm.shape:
            raise InputError(f"planning CT grid {img.shape} differs from the label map's {lm.shape}", source=cp)
        body = body_from_ct(img.array, lm.array)
    frame = "identity (CT and MR share the patient frame)" if m is None else f"{mr_from_plan}"
    console.print(f"ablation plan {plan}: label map {lp}, planning CT {cp or '(not found)'}, "
                  f"plan -> MR transform: {frame}")

    def build(grid):
        ps = structures_from_ablation_plan(p, lm, grid, mr_from_plan=m, tumours=tumour or None, body_mask=body)
        for s in ps.info:
            lim = f", limit {s.max_c:g} °C ({s.kind})" if s.max_c is not None else ""
            console.print(f"  {s.role:14s} {s.name}: {s.voxels} voxels on the MR grid{lim}", highlight=False)
        for n in ps.notes:
            console.print(f"  [yellow]note[/yellow]: {n}", highlight=False)
        out.mkdir(parents=True, exist_ok=True)
        (out / "structures.json").write_text(json.dumps({"plan": str(plan), "labels": str(lp),
                                                         "mr_from_plan": None if m is None else m.tolist(),
                                                         "structures": [s.model_dump() for s in ps.info],
                                                         "notes": ps.notes}, indent=1))
        return ps.structures

    return {"structures_for": build, "points": plan_points(p, mr_from_plan=m, tumours=tumour or None)}


_PLAN_HELP = "ablation plan JSON from `openir plan` (or a monitoring plan JSON: labels, structures, points)"
_LABELS_HELP = "label map the plan was made on (default: the plan's case.labels, or labels.nii.gz beside it)"
_CT_HELP = "planning CT the plan was made on, for the plan's body mask (default: the plan's case.ct)"
_MR_HELP = "4x4 matrix file (JSON or text) taking plan/CT LPS to MR LPS (default: identity, same patient frame)"


@app.command()
def watch(
    folder: Path = typer.Argument(..., help="folder the scanner writes DICOM magnitude + phase images into"),
    plan: Path | None = typer.Option(None, "--plan", help=_PLAN_HELP),
    labels: Path | None = typer.Option(None, "--labels", help=_LABELS_HELP),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for a NIfTI/NRRD label map"),
    ct: Path | None = typer.Option(None, "--ct", help=_CT_HELP),
    mr_from_plan: Path | None = typer.Option(None, "--mr-from-plan", help=_MR_HELP),
    tumour: list[str] = typer.Option([], "--tumour", "--tumor", help="monitor only this planned tumour (repeatable)"),
    out: Path = typer.Option(Path("thermo-out"), "--out", "-o", help="output folder (live.html, events.jsonl)"),
    baselines: int = typer.Option(4, help="number of first frames used as the baseline library"),
    slices: int | None = typer.Option(None, help="slices per frame (default: from the first frame)"),
    echo: int | None = typer.Option(None, help="echo number to use (multi-echo series)"),
    interval: float = typer.Option(0.5, help="polling interval (s)"),
    idle_timeout: float = typer.Option(60.0, help="stop after this many seconds without a new frame"),
) -> None:
    """Watch a folder and monitor each new frame as it completes; open OUT/live.html in a browser."""
    from openir.monitor.pipeline import run_monitoring
    from openir.monitor.watch import FolderWatcher

    kw = _inputs(plan, labels, names, mr_from_plan, tumour, out, ct)
    w = FolderWatcher(folder, n_slices=slices, echo=echo)
    console.print(f"watching {folder} (live view: {out / 'live.html'})")
    run_monitoring(w.frames(interval_s=interval, idle_timeout_s=idle_timeout), n_baselines=baselines, out=out,
                   live=write_live_view,
                   on_frame=_printer, **kw)
    console.print(f"[green]done:[/green] {out / 'summary.json'}, {out / 'events.jsonl'}")


@app.command()
def replay(
    series: Path = typer.Argument(..., help="folder holding a complete magnitude + phase series"),
    plan: Path | None = typer.Option(None, "--plan", help=_PLAN_HELP),
    labels: Path | None = typer.Option(None, "--labels", help=_LABELS_HELP),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for a NIfTI/NRRD label map"),
    ct: Path | None = typer.Option(None, "--ct", help=_CT_HELP),
    mr_from_plan: Path | None = typer.Option(None, "--mr-from-plan", help=_MR_HELP),
    tumour: list[str] = typer.Option([], "--tumour", "--tumor", help="monitor only this planned tumour (repeatable)"),
    out: Path = typer.Option(Path("thermo-out"), "--out", "-o", help="output folder"),
    baselines: int = typer.Option(4, help="number of first frames used as the baseline library"),
    echo: int | None = typer.Option(None, help="echo number to use (multi-echo series)"),
) -> None:
    """Process a recorded series frame by frame, as if it were arriving live."""
    from openir.monitor.pipeline import run_monitoring
    from openir.monitor.watch import read_series_frames

    kw = _inputs(plan, labels, names, mr_from_plan, tumour, out, ct)
    frames = read_series_frames(series, echo=echo)
    console.print(f"{len(frames)} frames in {series}")
    s = run_monitoring(frames, n_baselines=baselines, out=out, on_frame=_printer, live_every=0, live=write_live_view,
                       **kw)
    console.print(f"[green]done:[/green] {len(s.summaries)} frames, {len(s.events)} events; {out / 'live.html'}")
    if s.skipped:
        console.print(f"[yellow]{len(s.skipped)} frame(s) skipped[/yellow] (see events.jsonl)")
    stop = next((e for e in s.events if e.kind == "target_covered"), None)
    final = next((x.target_coverage for x in reversed(s.summaries) if not x.skipped), None)
    if s.structures.target is None:
        console.print("no target given (no --plan): no coverage or time to stop is reported")
    else:
        console.print(f"time to stop: {stop.time_s:.1f} s" if stop else
                      f"target not fully covered (final coverage {100 * (final or 0.0):.1f} %)")
