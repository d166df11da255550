"""Verdict by the standard ablation terminology, with the minimal-margin class."""

from __future__ import annotations

from .config import load_config, load_terminology
from .models import Verdict


def margin_class(min_margin_mm: float) -> str:
    """Name of the configured minimal-margin class that ``min_margin_mm`` falls in."""
    for c in load_terminology().margin_classes:
        if c.upper_mm is None or min_margin_mm < c.upper_mm:
            return c.name
    raise AssertionError("terminology has an open-ended last class")  # validated on load


def classify(min_margin_mm: float, residual_ml: float = 0.0) -> Verdict:
    """Complete (technical success) when no tumour surface lies outside the zone.

    The sub-voxel minimal margin decides; ``residual_ml`` (voxel count) is reported alongside,
    since a few partial voxels can remain at a surface that just touches the zone.
    """
    term = load_terminology()
    tol = float(load_config().margins.complete_tolerance_mm.value)  # type: ignore[arg-type]
    complete = min_margin_mm >= tol
    cls = margin_class(min_margin_mm)
    if complete:
        text = (f"The ablation zone covers the tumour; minimal margin {min_margin_mm:.1f} mm "
                f"(class {cls}).")
        name = "technical success (complete ablation)"
        src = [term.terms["technical_success"].source]
    else:
        text = (f"Tumour extends {-min_margin_mm:.1f} mm beyond the ablation zone "
                f"(residual about {residual_ml:.2f} ml).")
        name = "incomplete ablation"
        src = [term.terms["incomplete_ablation"].source]
    src.append(term.terms["minimal_ablative_margin"].source)
    return Verdict(complete=complete, term=name, margin_class=cls, explanation=text, sources=src)
