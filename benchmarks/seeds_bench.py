"""Seed implantation (issue 21) benchmarks: TG-43 accuracy, 100-seed dose grid speed, inverse plans.

    .venv/bin/python benchmarks/seeds_bench.py            # all parts
    .venv/bin/python benchmarks/seeds_bench.py dose       # accuracy + grid speed only

Baseline for the grid: a plain vectorised numpy implementation a competent engineer would write
(per seed: crop the box around the kernel sphere, r and theta by array maths, the same precomputed
(r, u) kernel table looked up bilinearly with numpy fancy indexing), run in the same process.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from openir.core.volume import Grid, make_affine
from openir.seeds import (
    Seed,
    dose_rate_2d,
    dose_rate_at_points,
    dose_rate_grid,
    get_seed_model,
    kernel_for,
)


def numpy_dose_rate(seeds, kern, grid: Grid) -> np.ndarray:
    """Plain numpy reference: same kernel table, per-seed cropped boxes, vectorised."""
    out = np.zeros(grid.shape)
    inv = np.linalg.inv(grid.affine)
    half = kern.r_max_mm * np.linalg.norm(inv[:3, :3], axis=1)
    n = np.array(grid.shape_ijk)
    nu_m1 = kern.table.shape[1] - 1
    for s in seeds:
        p = np.array(s.position_lps)
        d = np.array(s.direction_lps)
        c = p @ inv[:3, :3].T + inv[:3, 3]
        lo = np.clip(np.ceil(c - half).astype(int), 0, n - 1)
        hi = np.clip(np.floor(c + half).astype(int), 0, n - 1)
        k, j, i = np.meshgrid(*(np.arange(lo[a], hi[a] + 1) for a in (2, 1, 0)), indexing="ij")
        v = (i[..., None] * grid.affine[:3, 0] + j[..., None] * grid.affine[:3, 1]
             + k[..., None] * grid.affine[:3, 2] + grid.affine[:3, 3] - p)
        r = np.sqrt(np.einsum("...a,...a->...", v, v))
        cos = np.abs(v @ d) / np.maximum(r, 1e-9)
        fr = np.minimum(r / kern.dr_mm, kern.table.shape[0] - 1.000001)
        ir = fr.astype(int)
        wr = fr - ir
        fu = np.sqrt(np.maximum(0.0, 1.0 - cos)) * nu_m1
        iu = np.minimum(fu.astype(int), nu_m1 - 1)
        wu = fu - iu
        t = kern.table
        a = t[ir, iu] + wu * (t[ir, iu + 1] - t[ir, iu])
        b = t[ir + 1, iu] + wu * (t[ir + 1, iu + 1] - t[ir + 1, iu])
        val = s.air_kerma_strength_U * (a + wr * (b - a))
        val[r > kern.r_max_mm] = 0.0
        out[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] += val
    return out


def _g_quad(r_cm: float, theta_deg: float, length_cm: float) -> float:
    from scipy.integrate import quad

    th = math.radians(theta_deg)
    x, z = r_cm * math.sin(th), r_cm * math.cos(th)
    return quad(lambda s: 1.0 / (x * x + (z - s) ** 2), -length_cm / 2, length_cm / 2, epsabs=1e-12)[0] / length_cm


def bench_accuracy() -> None:
    """Kernel vs the consensus table nodes (0.5-7 cm), and vs the TG-43U1 formula everywhere."""
    print("== TG-43U1 accuracy: dose around one seed at the consensus table nodes, 0.5-7 cm ==")
    for name in ("6711", "6702", "2301"):
        m = get_seed_model(name)
        fr = m.anisotropy.r_cm
        g0 = _g_quad(1.0, 90.0, m.active_length_cm)
        pts, truth = [], []
        for r, gl in zip(m.radial_dose.r_cm, m.radial_dose.g_l, strict=True):
            if not 0.5 <= r <= 7.0 or (fr[0] <= r <= fr[-1] and r not in fr):
                continue
            row = m.anisotropy.f[fr.index(r)] if r in fr else m.anisotropy.f[0 if r < fr[0] else -1]
            for th, f in zip(m.anisotropy.theta_deg, row, strict=True):
                t = math.radians(th)
                pts.append((10 * r * math.sin(t), 0.0, 10 * r * math.cos(t)))
                truth.append(m.dose_rate_constant * _g_quad(r, th, m.active_length_cm) / g0 * gl * f)
        got = dose_rate_at_points([Seed(position_lps=(0, 0, 0), air_kerma_strength_U=1.0)], m, np.array(pts))
        rel = np.abs(got / np.array(truth) - 1)
        print(f"  {name}: {len(truth)} nodes, max deviation {rel.max() * 100:.3f} % (bar 2 %)")
    print("== TG-43U1 accuracy: kernel vs consensus formula, 0.5-7 cm, 0-90 deg, 20000 random points ==")
    rng = np.random.default_rng(1)
    for name in ("6711", "6702", "2301"):
        m = get_seed_model(name)
        r = rng.uniform(0.5, 7.0, 20000)
        th = rng.uniform(0.0, 90.0, r.size)
        pts = np.stack([10 * r * np.sin(np.radians(th)), np.zeros_like(r), 10 * r * np.cos(np.radians(th))], 1)
        got = dose_rate_at_points([Seed(position_lps=(0, 0, 0), air_kerma_strength_U=1.0)], m, pts)
        ref = dose_rate_2d(m, 1.0, r, th)
        rel = np.abs(got / ref - 1)
        print(f"  {name}: max |kernel/TG43 - 1| = {rel.max() * 100:.3f} %  (mean {rel.mean() * 100:.4f} %)")


def bench_grid(n_seeds: int = 100, repeats: int = 3) -> None:
    print(f"== {n_seeds} seeds, 1 mm grid over a 10 cm cube (101^3 voxels), 6711, kernel radius 100 mm ==")
    grid = Grid((101, 101, 101), make_affine((1.0, 1.0, 1.0), origin=(-50.0, -50.0, -50.0)))
    rng = np.random.default_rng(0)
    seeds = []
    for _ in range(n_seeds):
        d = rng.normal(size=3)
        seeds.append(Seed(position_lps=tuple(rng.uniform(-25, 25, 3)), direction_lps=tuple(d / np.linalg.norm(d)),
                          air_kerma_strength_U=0.6))
    m = get_seed_model("6711")
    kern = kernel_for(m)
    dose_rate_grid(seeds[:2], m, grid)  # compile / load cache
    best_w, best_c = math.inf, math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fast = dose_rate_grid(seeds, m, grid)
        best_w = min(best_w, time.perf_counter() - w0)
        best_c = min(best_c, time.process_time() - c0)
    w0, c0 = time.perf_counter(), time.process_time()
    slow = numpy_dose_rate(seeds, kern, grid)
    np_w, np_c = time.perf_counter() - w0, time.process_time() - c0
    err = float(np.max(np.abs(fast - slow)) / np.max(slow))
    print(f"  numba: {best_w:.3f} s wall, {best_c:.3f} s CPU (best of {repeats}); "
          f"numpy: {np_w:.2f} s wall, {np_c:.2f} s CPU; max diff {err:.1e} of max")
    print(f"  speed-up vs numpy: {np_w / best_w:.1f}x wall, {np_c / best_c:.1f}x CPU")
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["dose", "plan"]
    if "dose" in parts:
        bench_accuracy()
        bench_grid()
    if "plan" in parts:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from seeds_plan_cases import bench_plans  # type: ignore[import-not-found]

        bench_plans()
