"""Every hospital is drawn inside the funnel plot, also one with fewer cases than the limits need."""

from __future__ import annotations

import re

import pandas as pd

from openir.registry import load_indicators
from openir.report.registry_figures import funnel_svg


def test_a_small_hospital_is_on_the_canvas():
    d = load_indicators()[0]
    t = pd.DataFrame({"unit": ["SMALL", "MID", "BIG"], "n": [2, 40, 400], "x": [0, 4, 30],
                      "adjusted_rate": [0.0, 0.1, 0.075], "benchmark": [0.08] * 3,
                      "status": ["too few", "ok", "ok"], "phi": [1.0] * 3, "tau2": [0.0] * 3,
                      "overdispersed": [False] * 3})
    svg = funnel_svg(t, d, highlight="SMALL")
    xs = [float(v) for v in re.findall(r'<circle cx="([-0-9.]+)"', svg)]
    assert len(xs) == 3 and all(50 <= x <= 590 for x in xs), xs  # inside the axes (margin 50 of 640)
    assert xs[0] < xs[1] < xs[2]
