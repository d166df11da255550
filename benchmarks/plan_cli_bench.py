"""`openir plan` as a user runs it: each case in a fresh Python process (JIT cache load included).

The planner's per-candidate needle checks call the ray marcher once per candidate; before issue 15
that serial build shared one numba cache entry with the parallel build, so every new process
recompiled one of them. This benchmark times whole processes (import, JIT load, plan), the figure a
user waits for, on the same synthetic cases as `plan_bench.py` (2 mm abdomen, seed 11).

    .venv/bin/python benchmarks/plan_cli_bench.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = ((10, "sphere", "central"), (30, "ellipsoid", "subcapsular"), (50, "lobulated", "perivascular"))

_ONE = """
import time, numpy as np
t0 = time.perf_counter()
from openir.phantom import TumourSpec, make_abdomen
from openir.plan import plan_ablation
p = make_abdomen(seed=11, tumours=(TumourSpec(diameter_mm={d}.0, shape='{s}', location='{loc}'),), spacing_mm=(2.0, 2.0, 2.0))
t1 = time.perf_counter()
plan = plan_ablation(p.labels, [t.name for t in p.tumours])
t2 = time.perf_counter()
print(f"{{t2 - t1:.2f}} {{plan.targets[0].n_probes}} {{plan.targets[0].target_coverage_pct:.1f}}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="fresh processes per case (the first may compile)")
    a = ap.parse_args()
    print(f"{'size':>4} {'shape':9} {'location':12} {'run':>3} {'process s':>9} {'plan s':>7} {'probes':>6} {'t+m %':>6}")
    for d, s, loc in CASES:
        for r in range(a.repeats):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _ONE.format(d=d, s=s, loc=loc)], capture_output=True,
                                 text=True, check=True).stdout.split()
            wall = time.perf_counter() - t
            print(f"{d:>4} {s:9} {loc:12} {r + 1:>3} {wall:>9.1f} {float(out[0]):>7.1f} {out[1]:>6} {out[2]:>6}")


if __name__ == "__main__":
    main()
