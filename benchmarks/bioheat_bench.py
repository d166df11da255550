"""Bioheat benchmark: numba vs plain-numpy throughput of the same explicit scheme, the 10-minute
single-antenna case on a 120 mm cube at 1 mm, the analytic validation error, and the calibrated
Emprint zone in liver without and beside a 6 mm vessel.

    .venv/bin/python benchmarks/bioheat_bench.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from openir.physics.analytic import gaussian_source_rise
from openir.physics.bioheat import HeatSource, ThermalMedium, solve_pennes
from openir.physics.heatsink import microwave_heat_sink
from openir.physics.models import SimulationRequest
from openir.physics.presets import find_device, source_parameters
from openir.physics.simulate import cube_grid, homogeneous_medium, simulate
from openir.physics.sources import microwave_pattern


def throughput(n: int, sim_s_numba: float, sim_s_numpy: float) -> tuple[float, float]:
    grid = cube_grid(np.zeros(3), n, 1.0)
    med = homogeneous_medium(grid)
    pat = microwave_pattern(grid, (0, 0, 10), (0, 0, 1), feed_offset_mm=10, sigma_radial_mm=5, sigma_axial_mm=7,
                            absorbed_fraction=0.13)
    src = [HeatSource(pat, [(0.0, 1e9, 100.0)])]
    solve_pennes(med, 2.0, sources=src)  # compile / load the cached kernel
    a = solve_pennes(med, sim_s_numba, sources=src, backend="numba")
    b = solve_pennes(med, sim_s_numpy, sources=src, backend="numpy")
    return a.voxel_updates / a.runtime_s, b.voxel_updates / b.runtime_s


def analytic_error(h: float, edge: float, times: list[float]) -> list[tuple[float, float, float]]:
    n = int(round(edge / h)) | 1
    shape = (n, n, n)
    rc, wb = 1079 * 3540, 0.01 * 1060 * 3617
    med = ThermalMedium(np.full(shape, rc), np.full(shape, 0.52), np.full(shape, wb), (h, h, h))
    ax = (np.arange(n) - n // 2) * h
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt(x * x + y * y + z * z)
    src = HeatSource(2e6 * np.exp(-(r**2) / 32.0), [(0.0, 1e9, 1.0)])
    sol = solve_pennes(med, max(times), sources=[src], snapshot_times_s=times, perfusion_shutdown=False)
    out = []
    for t, temp in zip(sol.times_s, sol.temperature_c, strict=True):
        ana = gaussian_source_rise(r, t, q0_w_m3=2e6, sigma_mm=4.0, density_kg_m3=1079, heat_capacity_j_kg_k=3540,
                                   conductivity_w_m_k=0.52, perfusion_1_s=0.01, blood_density_kg_m3=1060,
                                   blood_heat_capacity_j_kg_k=3617)
        out.append((t, float(np.abs(temp - 37 - ana).max()), float(ana.max())))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="skip the 1 mm heat-sink case")
    args = ap.parse_args()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numba threads {numba.get_num_threads()}, load avg {os.getloadavg()[0]:.1f}")

    nb, npy = throughput(100, 60.0, 6.0)
    print(f"[throughput] 100^3 voxels, explicit step + in-loop CEM43/Arrhenius: numba {nb / 1e6:.1f} M voxel-updates/s, "
          f"numpy {npy / 1e6:.2f} M/s, ratio {nb / npy:.1f}x")

    _, dev = find_device("emprint")
    p, _ = source_parameters(dev, 100, 600)
    req = SimulationRequest.model_validate({"probes": [{"device": "emprint", "power_w": 100, "time_s": 600,
                                                        "tip_lps": [0, 0, 0], "direction_lps": [0, 0, 1]}],
                                            "spacing_mm": 1.0, "box_mm": 120})
    t0 = time.perf_counter()
    res, fields = simulate(req)
    wall = time.perf_counter() - t0
    print(f"[10-min antenna] 120 mm cube at 1 mm ({np.prod(fields.grid.shape) / 1e6:.2f} M voxels), "
          f"{res.n_steps} steps of {res.dt_s:.2f} s: solver {res.runtime_s:.1f} s, total {wall:.1f} s (bar < 60 s)")
    print(f"[emprint 100 W/10 min] zone {res.final_length_mm:.1f} x {res.final_width_mm:.1f} mm "
          f"(table 42 x 36 mm), {res.final_volume_ml:.1f} ml (table ~28 ml); "
          f"errors {res.final_length_mm - 42:+.1f} / {res.final_width_mm - 36:+.1f} mm")

    for t, err, peak in analytic_error(0.75, 50.0, [60.0, 300.0]):
        print(f"[analytic] Gaussian source, 0.75 mm grid, t = {t:.0f} s: max |error| {err:.3f} C (peak rise {peak:.2f} C)")

    if not args.quick:
        hs = microwave_heat_sink(power_w=100, time_s=600, absorbed_fraction=p["absorbed_fraction"],
                                 sigma_axial_mm=p["sigma_axial_mm"], feed_offset_mm=p["feed_offset_mm"],
                                 sigma_radial_mm=p["sigma_radial_mm"], vessel_diameter_mm=6.0,
                                 vessel_axis_distance_mm=14.0, velocity_m_s=0.15, spacing_mm=1.0, box_mm=90)
        print(f"[heat sink] 6 mm vessel, axis 14 mm from the antenna, 0.15 m/s (h = {hs.wall_h_w_m2_k:.0f} W/m2/K): "
              f"volume {hs.homogeneous.volume_ml:.1f} -> {hs.with_vessel.volume_ml:.1f} ml "
              f"(-{hs.volume_shrinkage_pct:.0f}%), radius towards vessel {hs.radius_towards_vessel_mm[0]:.1f} -> "
              f"{hs.radius_towards_vessel_mm[1]:.1f} mm, away {hs.radius_away_mm[0]:.1f} -> {hs.radius_away_mm[1]:.1f} mm")


if __name__ == "__main__":
    main()
