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


def no_verdict(reason: str) -> Verdict:
    """No verdict: the alignment a margin would rest on was not measured (safe side: not complete).

    >>> no_verdict("quality not measured").term
    'no verdict (registration not verified)'
    """
    return Verdict(complete=False, term="no verdict (registration not verified)", margin_class="not assessed",
                   explanation=f"The margins are shown but no verdict is given: {reason}.",
                   sources=[load_terminology().terms["indeterminate"].source])


def classify(min_margin_mm: float, residual_ml: float = 0.0, *, resolved: bool = True,
             estimate_mm: float | None = None) -> Verdict:
    """Complete (technical success) when no tumour surface lies outside the zone.

    The reported minimal margin decides (the conservative value when the grid does not resolve the
    tumour, ``resolved=False``); ``residual_ml`` (voxel count) is reported alongside, since a few
    partial voxels can remain at a surface that just touches the zone.

    >>> classify(3.2).term, classify(3.2).margin_class
    ('technical success (complete ablation)', '0-5 mm')
    >>> classify(-0.4, resolved=False, estimate_mm=1.1).term
    'not determinable on this grid'
    """
    term = load_terminology()
    tol = float(load_config().margins.complete_tolerance_mm.value)  # type: ignore[arg-type]
    complete = min_margin_mm >= tol
    cls = margin_class(min_margin_mm)
    if complete:
        text = (f"The ablation zone covers the tumour; minimal margin {min_margin_mm:.1f} mm "
                f"(class {cls}{'' if resolved else ', conservative: the grid does not resolve the tumour tip'}).")
        name = "technical success (complete ablation)"
        src = [term.terms["technical_success"].source]
    elif not resolved and estimate_mm is not None and estimate_mm >= tol:
        text = (f"The sub-voxel estimate ({estimate_mm:.1f} mm) covers the tumour, but the grid cannot resolve "
                f"its pointed part: the conservative margin is {min_margin_mm:.1f} mm. Thinner slices are "
                "needed to call technical success.")
        name = "not determinable on this grid"
        src = [term.terms["indeterminate"].source]
    else:
        text = (f"Tumour extends {-min_margin_mm:.1f} mm beyond the ablation zone "
                f"(residual about {residual_ml:.2f} ml).")
        name = "incomplete ablation"
        src = [term.terms["incomplete_ablation"].source]
    src.append(term.terms["minimal_ablative_margin"].source)
    return Verdict(complete=complete, term=name, margin_class=cls, explanation=text, sources=src)
