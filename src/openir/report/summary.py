"""The demo's summary page: one section per stage, in the order the stages ran."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from openir import __version__

from .html import page, table


def write_summary(out: Path, sections: Sequence[tuple[str, str]], timings_s: Mapping[str, float],
                  *, subtitle: str) -> Path:
    """Write ``index.html`` (the stages' ``(title, html)`` sections, then their run times) into ``out``."""
    timing = table(["stage", "seconds"], [(name, f"{sec:.1f}") for name, sec in timings_s.items()], numeric=(1,))
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    html = page(
        "OpenIR demo",
        subtitle,
        [*sections, ("Run", timing)],
        footer=f"OpenIR {__version__} · generated {stamp} · synthetic data, not for clinical use",
    )
    path = Path(out) / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
