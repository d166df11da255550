"""Inverse seed plans on synthetic patients (issue 21 bar: 2-5 cm targets, D90 >= Rx, V100 >= 90 %,
organ limits kept, < 60 s each). Imported by seeds_bench.py; runnable alone:

    .venv/bin/python benchmarks/seeds_plan_cases.py
"""

from __future__ import annotations

import os
import time

from openir.phantom import TumourSpec, make_abdomen, make_chest
from openir.seeds.planner import SeedPlanOptions, plan_seeds

SPACING = (0.8, 0.8, 1.0)  # a clinical abdominal/chest CT grid

CASES = [  # (name, builder, tumour spec, site)
    ("liver 20 mm central", "abdomen", TumourSpec(diameter_mm=20, location="central"), "liver"),
    ("liver 30 mm central", "abdomen", TumourSpec(diameter_mm=30, location="central"), "liver"),
    ("liver 30 mm perivascular", "abdomen", TumourSpec(diameter_mm=30, location="perivascular"), "liver"),
    ("liver 40 mm central", "abdomen", TumourSpec(diameter_mm=40, location="central"), "liver"),
    ("liver 50 mm central", "abdomen", TumourSpec(diameter_mm=50, location="central"), "liver"),
    ("lung 20 mm nodule", "chest", TumourSpec(diameter_mm=20, organ="lung_right", location="central"), "lung"),
    ("lung 30 mm nodule", "chest", TumourSpec(diameter_mm=30, organ="lung_right", location="central"), "lung"),
]


def bench_plans(cases=CASES) -> list[dict]:
    print(f"== inverse seed plans, CT grid {SPACING} mm, 6711 seeds, site protocols of seeds/data/sites.yaml ==")
    print(f"{'case':28s} {'Rx':>4s} {'D90':>5s} {'V100':>6s} {'V150':>5s} {'V200':>5s} {'CI':>5s} "
          f"{'needles':>7s} {'seeds':>5s} {'mCi':>5s} {'organs':>6s} {'wall s':>6s} {'CPU s':>6s}")
    rows = []
    for name, kind, spec, site in cases:
        maker = make_abdomen if kind == "abdomen" else make_chest
        ph = maker(seed=3, spacing_mm=SPACING, **({"tumours": (spec,)} if kind == "abdomen" else {"nodules": (spec,)}))
        t0, c0 = time.perf_counter(), time.process_time()
        p = plan_seeds(ph.ct, ph.labels, SeedPlanOptions(tumour=ph.tumours[0].name, site=site)).plan
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = p.metrics
        organs = "kept" if p.goals_met["organs"] else "BROKEN"
        print(f"{name:28s} {p.prescription_gy:4.0f} {m.d90_gy:5.0f} {m.v100_pct:6.1f} {m.v150_pct:5.0f} "
              f"{m.v200_pct:5.0f} {m.ci:5.2f} {len(p.needles):7d} {len(p.seeds):5d} {p.total_activity_mci:5.1f} "
              f"{organs:>6s} {dt:6.1f} {cpu:6.1f}")
        rows.append({"case": name, "d90": m.d90_gy, "v100": m.v100_pct, "seconds": dt, "cpu_s": cpu,
                     "goals": p.goals_met})
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    bench_plans()
