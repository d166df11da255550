"""The demo's summary page: one section per stage, in the order the stages ran."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from openir import __version__

from .html import page, table

if TYPE_CHECKING:
    from openir.demo.runner import DemoContext


def write_summary(ctx: DemoContext) -> Path:
    """Write ``index.html`` into the demo folder and return its path."""
    timing = table(
        ["stage", "seconds"],
        [(name, f"{sec:.1f}") for name, sec in ctx.timings_s.items()],
        numeric=(1,),
    )
    sections = [*ctx.sections, ("Run", timing)]
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    html = page(
        "OpenIR demo",
        f"Synthetic patient, seed {ctx.seed}{' (quick, 2 mm voxels)' if ctx.quick else ''}",
        sections,
        footer=f"OpenIR {__version__} · generated {stamp} · synthetic data, not for clinical use",
    )
    path = ctx.out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
