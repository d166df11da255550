"""Ablation planning benchmark: synthetic liver tumours of 1-5 cm (sphere / ellipsoid / lobulated;
central / subcapsular / perivascular) on the 2 mm phantom.

Prints per case: modality, probes, planning time, coverage of tumour and tumour + 5 mm, minimal
margin, must-spare overlap; and, on cases small enough, the probe count of an exhaustive search over
the same candidate set and the ratio of its time to the planner's placement time (the baseline).
Default: 15 cases (each size with three shape/location pairs); ``--full`` runs all 45.

    .venv/bin/python benchmarks/plan_bench.py [--full]
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from openir.phantom import TumourSpec, make_abdomen
from openir.plan import load_catalogue
from openir.plan.modality import describe_tumour, recommend_modality
from openir.plan.placement import (
    build_candidates,
    min_probes_exhaustive,
    place_probes,
    zone_options,
)
from openir.plan.planner import _directions, plan_ablation
from openir.plan.policy import load_policy
from openir.plan.target import build_target

SIZES = (10, 20, 30, 40, 50)
PAIRS = (("sphere", "central"), ("ellipsoid", "subcapsular"), ("lobulated", "perivascular"))
ALL = tuple((s, loc) for s in ("sphere", "ellipsoid", "lobulated") for loc in ("central", "subcapsular", "perivascular"))


def exhaustive_check(p, name, modality):
    """Placement vs exhaustive minimum on the same candidates (one direction keeps it small)."""
    cat = load_catalogue()
    f = describe_tumour(p.labels, name)
    opts, _ = zone_options(cat, modality, f.organ)
    pad = 2 * max(max(o.semi_mm) for o in opts)
    pt = build_target(p.labels, name, organ=f.organ, organ_label=f.organ_label, pad_mm=pad)
    dirs, prep, _ = _directions(p.labels, name, load_policy(), 150.0, None, 2000, 1, None)
    if not dirs:
        return None
    t0 = time.perf_counter()
    pl = place_probes(pt, opts, dirs, prep, required_coverage=0.99)
    t_pl = time.perf_counter() - t0
    cands, trows, _, n_t, ok, _ = build_candidates(pt, opts, dirs, prep)
    req = min(math.ceil(0.99 * n_t), int(ok.sum()))
    t0 = time.perf_counter()
    ex = min_probes_exhaustive([trows.get(i) for i in range(len(cands))], n_t, req, max_k=3,
                               max_combinations=8_000_000)
    t_ex = time.perf_counter() - t0
    return len(pl.chosen), (ex[0] if ex else None), len(cands), t_pl, t_ex


def main(full: bool = False) -> None:
    cases = [(d, s, loc) for d in SIZES for s, loc in (ALL if full else PAIRS)]
    print(f"{'size':>4} {'shape':9} {'location':12} {'modality':10} {'probes':>6} {'time s':>7} "
          f"{'tumour%':>7} {'t+5mm%':>7} {'margin':>6} {'spare':>5} {'full':>4}")
    worst_time = {}
    bar_ok = True
    for d, shape, loc in cases:
        p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=float(d), shape=shape, location=loc),),
                         spacing_mm=(2.0, 2.0, 2.0))
        t0 = time.perf_counter()
        plan = plan_ablation(p.labels, [t.name for t in p.tumours])
        dt = time.perf_counter() - t0
        t = plan.targets[0]
        worst_time[d] = max(worst_time.get(d, 0.0), dt)
        spare = sum(t.must_spare_touched_ml.values())
        if spare > 0 or (t.full_coverage and t.target_coverage_pct < 99.0):
            bar_ok = False
        print(f"{d:>4} {shape:9} {loc:12} {t.modality:10} {t.n_probes:>6} {dt:>7.1f} {t.tumour_coverage_pct:>7.1f} "
              f"{t.target_coverage_pct:>7.1f} {t.min_margin_mm:>6.1f} {spare:>5.1f} {'yes' if t.full_coverage else 'NO':>4}"
              + ("" if t.full_coverage else f"  blocked: {t.blocked_ml} {t.notes[-1:] if t.notes else ''}"))
    print("\nworst planning time per size (s, incl. trajectory search):",
          ", ".join(f"{d} mm: {v:.1f}" for d, v in worst_time.items()))
    print("bar (coverage >= 99% where feasible, no must-spare overlap):", "met" if bar_ok else "NOT met")
    print("\nprobe count vs exhaustive search (one direction, same candidates):")
    for d in (10, 20, 30):
        p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm=float(d)),), spacing_mm=(2.0, 2.0, 2.0))
        name = p.tumours[0].name
        mod = recommend_modality(describe_tumour(p.labels, name)).chosen
        r = exhaustive_check(p, name, mod)
        if r is None:
            print(f"  {d} mm: no feasible path")
            continue
        n_pl, n_ex, n_c, t_pl, t_ex = r
        print(f"  {d} mm {mod}: planner {n_pl} probe(s), exhaustive {n_ex} ({n_c} candidates); "
              f"placement {t_pl:.2f} s, exhaustive {t_ex:.2f} s, ratio exhaustive/planner {t_ex / max(t_pl, 1e-9):.1f}x")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(full="--full" in sys.argv)
