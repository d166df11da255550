"""`openir thermo watch FOLDER --plan PLAN.json` and `openir thermo replay SERIES`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .models import FrameResult

app = typer.Typer(help="MR thermometry: live temperature, thermal dose and safety alerts.", no_args_is_help=True)
console = Console()


def _printer(res: FrameResult) -> None:
    s = res.summary
    console.print(f"frame {s.frame:4d}  t={s.time_s:7.1f} s  Tmax {s.max_temperature_c:6.1f} °C  "
                  f"coverage {100 * s.target_coverage:5.1f} %  {s.processing_ms:5.1f} ms")
    for e in res.events:
        colour = {"critical": "bold red", "warning": "yellow"}.get(e.severity, "cyan")
        console.print(f"[{colour}]{e.kind}[/{colour}] {e.message}", highlight=False)


def _plan(plan: Path | None):
    from .structures import load_plan

    return (load_plan(plan), plan.parent) if plan is not None else (None, Path("."))


@app.command()
def watch(
    folder: Path = typer.Argument(..., help="folder the scanner writes DICOM magnitude + phase images into"),
    plan: Path | None = typer.Option(None, "--plan", help="monitoring plan JSON (structures, limits, points)"),
    out: Path = typer.Option(Path("thermo-out"), "--out", "-o", help="output folder (live.html, events.jsonl)"),
    baselines: int = typer.Option(4, help="number of first frames used as the baseline library"),
    slices: int | None = typer.Option(None, help="slices per frame (default: from the first frame)"),
    echo: int | None = typer.Option(None, help="echo number to use (multi-echo series)"),
    interval: float = typer.Option(0.5, help="polling interval (s)"),
    idle_timeout: float = typer.Option(60.0, help="stop after this many seconds without a new frame"),
) -> None:
    """Watch a folder and monitor each new frame as it completes; open OUT/live.html in a browser."""
    from .pipeline import run_monitoring
    from .watch import FolderWatcher

    p, base = _plan(plan)
    w = FolderWatcher(folder, n_slices=slices, echo=echo)
    console.print(f"watching {folder} (live view: {out / 'live.html'})")
    run_monitoring(w.frames(interval_s=interval, idle_timeout_s=idle_timeout), n_baselines=baselines, out=out,
                   plan=p, plan_dir=base, on_frame=_printer)
    console.print(f"[green]done:[/green] {out / 'summary.json'}, {out / 'events.jsonl'}")


@app.command()
def replay(
    series: Path = typer.Argument(..., help="folder holding a complete magnitude + phase series"),
    plan: Path | None = typer.Option(None, "--plan", help="monitoring plan JSON"),
    out: Path = typer.Option(Path("thermo-out"), "--out", "-o", help="output folder"),
    baselines: int = typer.Option(4, help="number of first frames used as the baseline library"),
    echo: int | None = typer.Option(None, help="echo number to use (multi-echo series)"),
) -> None:
    """Process a recorded series frame by frame, as if it were arriving live."""
    from .pipeline import run_monitoring
    from .watch import read_series_frames

    p, base = _plan(plan)
    frames = read_series_frames(series, echo=echo)
    console.print(f"{len(frames)} frames in {series}")
    s = run_monitoring(frames, n_baselines=baselines, out=out, plan=p, plan_dir=base, on_frame=_printer, live_every=0)
    console.print(f"[green]done:[/green] {len(s.summaries)} frames, {len(s.events)} events; {out / 'live.html'}")
