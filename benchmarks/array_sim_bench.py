"""Speed of a 10-minute multi-probe simulation on a 120 mm cube at 1 mm (issue 14 bar: < 60 s, 2 cores).

    python benchmarks/array_sim_bench.py                 # microwave cluster + cryo array
    python benchmarks/array_sim_bench.py --only microwave --baseline-steps 20

Microwave: three Emprint antennas 15 mm apart at 100 W for 600 s, synchronous (`openir simulate`'s
path: simulate.simulate). Cryo: three cryoprobes 15 mm apart freezing 600 s (the phase-change
path: RKL2 super-steps on the active box). The baseline is forward Euler at its stability step in
plain vectorised numpy (bioheat backend="numpy"), run for ``--baseline-steps`` steps in the same
process and scaled to the full step count; for cryo also the numba forward-Euler kernel on the full
grid (the solver before super-steps), ``--fe-steps`` steps scaled.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from openir.physics.bioheat import (
    HeatSource,
    HeldSource,
    SolverOptions,
    solve_pennes,
    stable_time_step,
)
from openir.physics.models import SimulationRequest
from openir.physics.simulate import _build_sources, cube_grid, homogeneous_medium, simulate


def request(kind: str) -> SimulationRequest:
    tips = [(-7.5, -4.3, 0.0), (7.5, -4.3, 0.0), (0.0, 8.7, 0.0)]
    if kind == "microwave":
        probes = [{"device": "emprint", "modality": "microwave", "power_w": 100, "time_s": 600, "tip_lps": t,
                   "direction_lps": (0, 0, 1)} for t in tips]
    else:
        probes = [{"device": "icerod", "modality": "cryo", "time_s": 600, "tip_lps": t, "direction_lps": (0, 0, 1)}
                  for t in tips]
    return SimulationRequest.model_validate({"probes": probes, "spacing_mm": 1.0, "box_mm": 120.0,
                                             "output_times_s": [120, 300, 600]})


def baseline_seconds(req: SimulationRequest, steps: int, backend: str = "numpy") -> tuple[float, int]:
    """Forward-Euler time for the same problem at the explicit step, measured over ``steps`` steps and
    scaled to the full run: plain numpy (the baseline), or the numba kernel on the full grid (the
    solver before super-steps and the active box)."""
    tips = np.array([p.tip_lps for p in req.probes])
    grid = cube_grid(tips.mean(axis=0) - 10.0 * np.array([0, 0, 1.0]), req.box_mm, req.spacing_mm)
    medium = homogeneous_medium(grid)
    heat, held, _, end, _ = _build_sources(req.probes, grid)
    limit = stable_time_step(medium, may_freeze=bool(held), extra_held=np.logical_or.reduce([h.mask for h in held]) if held else None)
    n_full = int(np.ceil(end / (0.9 * limit)))
    dur = steps * 0.9 * limit
    sched_heat = [HeatSource(h.pattern, [(0.0, dur, 100.0)], h.name) for h in heat]
    sched_held = [HeldSource(h.mask, h.temperature_c, [(0.0, dur, 1.0)], h.name) for h in held]
    t0 = time.perf_counter()
    solve_pennes(medium, dur, sources=sched_heat, held_sources=sched_held, method="explicit",
                 options=SolverOptions(backend=backend, active_region=False, super_step_s=None))  # type: ignore[arg-type]
    return (time.perf_counter() - t0) * n_full / steps, n_full


def cryo_rate(req: SimulationRequest, box_mm: float, time_s: float) -> None:
    """Cryo on a smaller cube and a shorter freeze; the 120 mm / 600 s time from its update rate."""
    from openir.physics.bioheat import stable_time_step

    small = SimulationRequest.model_validate({**req.model_dump(), "box_mm": box_mm,
                                              "probes": [{**p.model_dump(), "time_s": time_s} for p in req.probes],
                                              "output_times_s": [time_s]})
    simulate(SimulationRequest.model_validate({**small.model_dump(), "box_mm": 30.0, "spacing_mm": 2.0,
                                               "probes": [{**p.model_dump(), "time_s": 5} for p in req.probes],
                                               "output_times_s": [5]}))  # compile outside the timing
    t0 = time.perf_counter()
    res, fields = simulate(small)
    wall = time.perf_counter() - t0
    n = int(np.prod(fields.grid.shape))
    rate = n * res.n_steps / res.runtime_s
    big = cube_grid(np.zeros(3), 120.0, 1.0)
    heat, held, _, _, _ = _build_sources(req.probes, big)
    limit = stable_time_step(homogeneous_medium(big), may_freeze=True, extra_held=np.logical_or.reduce([h.mask for h in held]))
    steps = int(np.ceil(600.0 / (0.9 * limit)))
    print(f"cryo: 3 probes, {time_s:g} s on a {box_mm:g} mm cube at 1 mm ({n} voxels, {res.n_steps} steps): {wall:.1f} s wall, "
          f"{rate / 1e6:.2f} M voxel-updates/s; 120 mm / 600 s needs {steps} steps x {int(np.prod(big.shape))} voxels "
          f"= {steps * np.prod(big.shape) / rate:.0f} s at that rate")


def solve_pennes_compile(req: SimulationRequest) -> None:
    """Compile the forward-Euler enthalpy kernel outside the timing."""
    grid = cube_grid(np.zeros(3), 20.0, 2.0)
    heat, held, _, _, _ = _build_sources([p.model_copy(update={"tip_lps": (0.0, 0.0, 5.0)}) for p in req.probes[:1]], grid)
    solve_pennes(homogeneous_medium(grid), 1.0, held_sources=held, method="explicit",
                 options=SolverOptions(active_region=False, super_step_s=None))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["microwave", "cryo"], default=None)
    p.add_argument("--baseline-steps", type=int, default=10)
    p.add_argument("--fe-steps", type=int, default=200, help="cryo: forward-Euler numba steps (full grid), scaled")
    p.add_argument("--cryo-box-mm", type=float, default=120.0, help="cryo: smaller cube, extrapolated by voxel-updates")
    p.add_argument("--cryo-time-s", type=float, default=600.0)
    a = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    for kind in (a.only,) if a.only else ("microwave", "cryo"):
        req = request(kind)
        if kind == "cryo" and a.cryo_box_mm < 120:  # the phase-change step count makes the full run hours under load
            cryo_rate(req, a.cryo_box_mm, a.cryo_time_s)
            continue
        simulate(SimulationRequest.model_validate({**req.model_dump(), "box_mm": 20.0, "spacing_mm": 2.0,
                                                   "output_times_s": [10]}))  # compile outside the timing
        t0 = time.perf_counter()
        res, fields = simulate(req)
        wall = time.perf_counter() - t0
        base, n_full = baseline_seconds(req, a.baseline_steps)
        az = res.array_zone
        print(f"{kind}: 3 probes, 600 s, {fields.grid.shape} voxels at 1 mm: {wall:.1f} s wall "
              f"(solver {res.runtime_s:.1f} s, {res.n_steps} {res.method} steps); zone {az.along_mm:.0f} x "
              f"{az.across1_mm:.0f} x {az.across2_mm:.0f} mm, {az.volume_ml:.1f} ml")
        print(f"  numpy baseline (forward Euler, {a.baseline_steps} steps scaled to {n_full}): {base:.0f} s; "
              f"ratio {base / res.runtime_s:.1f}x")
        meta = fields.solution.meta if fields.solution is not None else {}
        if kind == "cryo":
            print(f"  stepper {meta.get('stepper')}: {meta.get('active_voxel_updates', 0) / 1e6:.0f} M voxel-stage updates, "
                  f"final active box {meta.get('active_fraction_final', 1.0):.0%} of the grid")
            if a.fe_steps:
                solve_pennes_compile(req)
                fe, _ = baseline_seconds(req, a.fe_steps, backend="numba")
                print(f"  forward Euler, numba, full grid (the previous solver; {a.fe_steps} steps scaled to {n_full}): "
                      f"{fe:.0f} s; ratio {fe / res.runtime_s:.1f}x")


if __name__ == "__main__":
    main()
