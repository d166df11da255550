"""Trajectory search benchmark on the generated 512 x 512 x 300 abdomen (openir.phantom).

Since issue 15 the search walks every voxel a path touches (Amanatides-Woo) and the reference is a
slab-test walk of every candidate voxel plus exact k-d-tree clearances every 0.1 mm.

Prints: per-case preparation time, time to evaluate 100,000 directions against every risk
structure (stopping a ray at its first must-not-cross hit, and marching every ray to the skin),
and the ratio to the brute-force reference (0.25 mm sampling, voxel-by-voxel checks, exact k-d
tree distances) measured on a random subset of the same directions in the same run, with the
agreement between the two on that subset.

    .venv/bin/python benchmarks/trajectory_bench.py [--directions 100000] [--reference 200]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from openir.plan.reference import brute_force_rays
from openir.plan.trajectories import (
    evaluate_directions,
    fibonacci_directions,
    find_trajectories,
    prepare_case,
)


def warm_up() -> float:
    """Compile (or load from cache) the numba kernels on a tiny case; not part of the figures."""
    from openir.core import Grid, LabelMap, make_affine

    g = Grid((12, 12, 12), make_affine((1, 1, 1), (-6, -6, -6)))
    arr = np.zeros(g.shape, np.uint8)
    arr[2:10, 2:10, 2:10] = 1
    arr[5:7, 3:5, 5:7] = 2
    lm = LabelMap(arr, g.affine, {}, {1: "fat", 2: "aorta"})
    from openir.plan import load_policy

    pol = load_policy().model_copy(update={"needle_gauge": None, "patient_position": "any"})
    pol.keep_away_by_kind = {}
    t = time.perf_counter()
    find_trajectories(lm, (0.0, 0.0, 0.0), pol, needle_length_mm=10, n_directions=200)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--directions", type=int, default=100_000)
    ap.add_argument("--reference", type=int, default=200, help="directions for the brute-force run")
    ap.add_argument("--needle", type=float, default=150.0, help="needle length, mm")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from openir.phantom import make_abdomen

    print(f"threads: numba {numba.get_num_threads()}")
    print(f"JIT warm-up: {warm_up():.2f} s (compile or cache load; excluded)")
    t = time.perf_counter()
    ph = make_abdomen(a.seed)
    print(f"phantom: {ph.labels.grid.describe()} generated in {time.perf_counter() - t:.1f} s")
    target = np.asarray(ph.tumours[0].centre_lps)

    t = time.perf_counter()
    prep = prepare_case(ph.labels, target, needle_length_mm=a.needle)
    t_prep = time.perf_counter() - t
    print(f"preparation: {t_prep:.2f} s  (crop {prep.codes.shape}, {len(prep.structures)} risk structures: "
          f"{', '.join(prep.names)}; distance voxels {prep.dist.size / 1e6:.1f} M)")

    dirs = fibonacci_directions(a.directions)
    t = time.perf_counter()
    evaluate_directions(prep, dirs, stop_at_block=True)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    rays_full = evaluate_directions(prep, dirs, stop_at_block=False)
    t_full = time.perf_counter() - t
    t = time.perf_counter()
    res = find_trajectories(ph.labels, target, n_directions=a.directions, prep=prep)
    t_rank = time.perf_counter() - t
    print(f"search {a.directions} directions: {t_fast:.2f} s (stop at first hit), {t_full:.2f} s "
          f"(every ray to the skin); with scoring + Pareto + shortlist: {t_rank:.2f} s")
    print(f"feasible: {res.n_feasible}  Pareto: {len(res.pareto)}  blocked: {res.blocked_by}")
    best = res.shortlist[0]
    print(f"best: length {best.length_mm:.1f} mm, min clearance {best.min_clearance_mm:.1f} mm, "
          f"axial {best.angle_to_axial_deg:.0f} deg, skin {best.angle_to_skin_normal_deg:.0f} deg, "
          f"capsules {best.capsules_crossed}")

    rng = np.random.default_rng(1)
    sub = rng.choice(a.directions, size=min(a.reference, a.directions), replace=False)
    t = time.perf_counter()
    ref = brute_force_rays(prep, dirs[sub])
    t_ref = time.perf_counter() - t
    per_ref = t_ref / len(sub)
    per_fast = t_full / a.directions
    agree = float((ref.status == rays_full.status[sub]).mean())
    dc = np.abs(ref.clearance_mm - rays_full.clearance_mm[sub])
    print(f"brute force: {len(sub)} directions in {t_ref:.1f} s = {per_ref * 1e3:.1f} ms/direction "
          f"(extrapolated {per_ref * a.directions:.0f} s for {a.directions})")
    print(f"ratio brute force / fast (per direction, full march): {per_ref / per_fast:,.0f}x")
    fast_ok = rays_full.status[sub] == 0
    unsafe = int((fast_ok & (ref.status != 0)).sum())
    signed = rays_full.clearance_mm[sub] - ref.clearance_mm
    print(f"agreement on the subset: status {agree:.1%}, clearance max |diff| {dc.max():.2f} mm "
          f"(voxel {prep.grid.spacing.max():.2f} mm, diagonal {np.linalg.norm(prep.grid.spacing):.2f} mm); "
          f"fast clearance - exact in [{signed.min():.2f}, {signed.max():.2f}] mm (a lower bound); "
          f"feasible for the fast search but not the exact reference: {unsafe}")
    print(f"BAR: prep {t_prep:.2f} s (<= 15 s), search {t_fast:.2f} s / {t_full:.2f} s (< 2 s)")


if __name__ == "__main__":
    main()
