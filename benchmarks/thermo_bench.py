"""MR thermometry latency: one 256x256x8 frame (thermometry + dose + alerts), incremental session
versus a plain non-incremental implementation measured in the same run.

Run: .venv/bin/python benchmarks/thermo_bench.py [--frames 30]
The plain baseline recomputes from the stored history each frame, as a first script would:
np.angle of each image and subtraction, np.unwrap over time, a fresh least-squares drift fit with
the full design matrix, and CEM43/Arrhenius over the whole history (physics.dose).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from openir.core.volume import Grid, make_affine  # noqa: E402
from openir.monitor import MonitorSession, MonitorStructures, OrganLimit, phase_for_temperature  # noqa: E402
from openir.physics import arrhenius_damage, cem43  # noqa: E402

SHAPE = (8, 256, 256)
TE, B0, PERIOD = 10.0, 3.0, 1.0


def make_frames(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in SHAPE), indexing="ij")
    r2 = ((k - 3.5) * 2.5) ** 2 + (j - 128) ** 2 + (i - 128) ** 2
    body = ((j - 128) / 110) ** 2 + ((i - 128) / 120) ** 2 < 1
    mag = np.where(body, 1.0, 0.0).astype(np.float32)
    bg = 0.002 * (i - 128) + 0.001 * (j - 128)
    out = []
    for f in range(n):
        t = f * PERIOD
        temp = 37.0 + (45.0 * min(t / 20.0, 1.0)) * np.exp(-r2 / (2 * 8.0**2)) if f >= 4 else np.full(SHAPE, 37.0)
        ph = bg + phase_for_temperature(temp - 37.0, B0, TE) + 0.01 * t
        z = mag * np.exp(1j * ph) + (rng.normal(0, 1 / 30, SHAPE) + 1j * rng.normal(0, 1 / 30, SHAPE))
        out.append((np.abs(z).astype(np.float32), np.angle(z).astype(np.float32), t))
    return out, body, r2


def plain_frame(history_z, base_z, ref_idx, design, times):
    """Recompute everything from the history (what the incremental session avoids)."""
    phis = np.stack([np.angle(z) - np.angle(base_z) for z in history_z])
    phis = np.unwrap(phis, axis=0)
    temps = []
    for p in phis:
        coef, *_ = np.linalg.lstsq(design[ref_idx], p.reshape(-1)[ref_idx], rcond=None)
        temps.append(37.0 + (p.reshape(-1) - design @ coef) / (2 * np.pi * 42.577 * -0.01 * B0 * TE * 1e-3))
    hist = np.concatenate([np.full((1, phis.shape[1] * phis.shape[2] * phis.shape[3]), 37.0), np.stack(temps)])
    dose = cem43(hist, PERIOD)
    dmg = arrhenius_damage(hist, PERIOD)
    return dose, dmg


def plain_incremental(frames, base_z, ref_idx, design):
    """Frame-by-frame but plain numpy: np.angle, lstsq drift fit, physics.cem43 on each interval."""
    prev_u = np.zeros(base_z.size, np.float32)
    prev_t = np.full(base_z.size, 37.0)
    cem = np.zeros(base_z.size)
    dmg = np.zeros(base_z.size)
    out = []
    for m, p, _ in frames:
        t0 = time.perf_counter()
        d = np.angle(m * np.exp(1j * p) * np.conj(base_z)).reshape(-1)
        prev_u = d + 2 * np.pi * np.round((prev_u - d) / (2 * np.pi))
        coef, *_ = np.linalg.lstsq(design[ref_idx], prev_u[ref_idx], rcond=None)
        t = 37.0 + (prev_u - design @ coef) / (2 * np.pi * 42.577 * -0.01 * B0 * TE * 1e-3)
        pair = np.stack([prev_t, t])
        cem += cem43(pair, PERIOD)
        dmg += arrhenius_damage(pair, PERIOD)
        prev_t = t
        out.append((time.perf_counter() - t0) * 1000)
    return float(np.median(out[1:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()
    n_base = 4
    frames, body, r2 = make_frames(args.frames + n_base)
    grid = Grid(SHAPE, make_affine((1.5, 1.5, 4.0)))
    target = r2 < 10.0**2
    oar = (np.abs(np.sqrt(r2) - 30) < 2) & body
    ref = body & (r2 > 60.0**2)
    st = MonitorStructures(target=target, organs=[OrganLimit("oar", oar, 45.0, "bench")], reference=ref)
    sess = MonitorSession(grid, te_ms=TE, b0_t=B0, structures=st, drift_order=2, points={"c": (192.0, 192.0, 14.0)})
    for m, p, t in frames[:n_base]:
        sess.add_baseline(m, p, t - n_base * PERIOD)
    sess.process(*frames[n_base][:2], frames[n_base][2])  # warm-up (numba compile, pinv)
    ms = []
    for m, p, t in frames[n_base + 1:]:
        t0 = time.perf_counter()
        sess.process(m, p, t)
        ms.append((time.perf_counter() - t0) * 1000)
    inc = float(np.median(ms))
    # plain baseline at the same history length (last frame), timed twice
    z_hist = [m * np.exp(1j * p) for m, p, _ in frames[n_base:]]
    base_z = frames[0][0] * np.exp(1j * frames[0][1])
    kk, jj, ii = (a.reshape(-1) / s for a, s in zip(np.meshgrid(*(np.arange(s, dtype=np.float64) for s in SHAPE),
                                                               indexing="ij"), SHAPE, strict=True))
    design = np.stack([np.ones_like(ii), ii, jj, kk, ii * ii, jj * jj, kk * kk, ii * jj, ii * kk, jj * kk], axis=1)
    ref_idx = np.flatnonzero(ref & sess.valid)
    plain = []
    for _ in range(2):
        t0 = time.perf_counter()
        plain_frame(z_hist, base_z, ref_idx, design, None)
        plain.append((time.perf_counter() - t0) * 1000)
    pl = min(plain)
    pinc = plain_incremental(frames[n_base:n_base + 6], base_z, ref_idx, design)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus visible, "
          f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")
    print(f"frame {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} = {np.prod(SHAPE)} voxels, {len(ms)} frames after warm-up")
    print(f"incremental session: median {inc:.1f} ms/frame (p90 {np.percentile(ms, 90):.1f} ms, max {max(ms):.1f} ms)")
    print(f"ratio to the 1 s frame period: {inc / 1000 / PERIOD:.3f}")
    print(f"plain recompute-from-history at {len(z_hist)} frames: {pl:.0f} ms/frame")
    print(f"speed-up vs plain recompute baseline (same run): {pl / inc:.1f}x")
    print(f"plain incremental numpy (np.angle, lstsq, physics.cem43 per interval): {pinc:.0f} ms/frame; "
          f"speed-up {pinc / inc:.1f}x")
    print(f"events: {[e.kind for e in sess.events]}; final coverage {sess.summaries[-1].target_coverage:.2f}")


if __name__ == "__main__":
    main()
