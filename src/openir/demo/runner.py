"""Runs the demo stages with a Rich progress display and writes the summary page."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from openir.core.errors import InputError


@dataclass
class DemoContext:
    """What the stages share: the output folder, options, results and summary sections."""

    out: Path
    seed: int = 7
    quick: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, html fragment)
    timings_s: dict[str, float] = field(default_factory=dict)

    def add_section(self, title: str, html: str) -> None:
        self.sections.append((title, html))


def run_demo(out: Path, seed: int = 7, quick: bool = False, only: list[str] | None = None) -> Path:
    """Run every demo stage (or those in ``only``) and return the path of ``index.html``."""
    from openir.report.summary import write_summary

    from .stages import STAGES

    names = [s.name for s in STAGES]
    unknown = [n for n in (only or []) if n not in names]
    if unknown:
        raise InputError(f"unknown demo stage(s) {', '.join(unknown)}; stages are: {', '.join(names)}")
    selected = [s for s in STAGES if not only or s.name in only or s.name == "patient"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, seed=seed, quick=quick)
    console = Console()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("demo", total=len(selected))
        for stage in selected:
            progress.update(task, description=stage.title)
            t0 = time.perf_counter()
            stage.run(ctx)
            ctx.timings_s[stage.name] = time.perf_counter() - t0
            progress.console.print(f"[green]✓[/green] {stage.title} ({ctx.timings_s[stage.name]:.1f} s)")
            progress.advance(task)
    subtitle = f"Synthetic patient, seed {seed}{' (quick, 2 mm voxels)' if quick else ''}"
    return write_summary(out, ctx.sections, ctx.timings_s, subtitle=subtitle)
