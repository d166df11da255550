"""MR thermometry latency: one 256x256x8 frame, the session against a well-written plain numpy
pipeline that does the same work, both measured in this run on the same frames.

Run: .venv/bin/python benchmarks/thermo_bench.py [--frames 30] [--repeats 3]

Both pipelines, per frame: validity (finite, SNR floor, monitored), temporal unwrap of the trusted
voxels only, the spatial wrap check (isolated voxels dropped, suspects compared with their in-plane
neighbours), drift fit over the usable reference voxels (precomputed pseudo-inverse) and separable
evaluation, temperature and uncertainty, exact CEM43 and 3-point Gauss Arrhenius increments for a
temperature linear between frames (Arrhenius skipped below its floor, as physics.dose does), the
held temperature for gaps, lethal flag, coverage and organ maxima. The numpy baseline is vectorised
(float32 where the session uses it, no Python loop over voxels, nothing recomputed from history);
the session fuses these steps into numba kernels run on NUMBA_NUM_THREADS threads (vectorised
loops, a polynomial exponential). The run
checks that both give the same temperatures and doses before it prints the ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from openir.core.volume import Grid, make_affine  # noqa: E402
from openir.monitor import (  # noqa: E402
    MonitorSession,
    MonitorStructures,
    OrganLimit,
    SessionOptions,
    phase_for_temperature,
)

SHAPE = (8, 256, 256)
TE, B0, PERIOD = 10.0, 3.0, 1.0
TWO_PI = 2 * math.pi


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


class PlainPipeline:
    """The same frame computation, vectorised numpy (what a competent engineer would write)."""

    def __init__(self, sess: MonitorSession) -> None:
        self.s = sess
        self.valid = sess.valid
        self.u = np.zeros(SHAPE, np.float32)
        self.ok_prev = np.zeros(SHAPE, bool)
        # float32 state and dose only where temperature is monitored, as the session
        self.mon = np.flatnonzero(self.valid)
        self.base_mags = [np.abs(z)[:, ::2, ::2].astype(np.float32) for z in sess.library.complex]
        self.prev_t = np.full(self.mon.size, sess.body_c, np.float32)
        self.cem = np.zeros(SHAPE, np.float32)
        self.e_prev = sess._e_prev.reshape(-1)[self.mon].copy()
        self.dmg = np.zeros(SHAPE, np.float32)
        self.prev_time = sess.prev_time
        self.mag_min = np.float32(sess.snr_min * sess._sigma_noise)
        d = sess.drift
        self.idx, self.pinv, self.design = d.index, d.pinv, d.design
        z, y, x = d._z, d._y, d._x
        # separable drift basis evaluated once: x^a y^b z^c on the grid, one float32 field per term
        self.basis = np.stack([(z[:, None, None] ** c * y[None, :, None] ** b * x[None, None, :] ** a).astype(np.float32)
                               for a, b, c in d.exps])
        self.inv_k = np.float32(1.0 / sess.k)
        c = sess._dose_c
        self.ln_hi, self.ln_lo = c["ln_r_above"], c["ln_r_below"]
        self.ln_a, self.ea_r, self.floor = c["ln_a"], c["ea_over_r"], c["floor_c"]
        self.tgt = sess._target_idx
        self.organs = sess._organ_idx

    def _cem(self, t0, t1, e0, dt):
        """Exact CEM43 (min) for T linear from t0 to t1, R^(43 - t0) = e0 kept from the previous
        frame (one exp per voxel, as the session), split where it crosses 43 °C (vectorised)."""
        def piece(a0, a1, x, d):
            small = np.abs(x) < 1e-3
            xs = np.where(small, 1.0, x)
            return np.where(small, d * a0 * (1.0 + x * (0.5 + x * (1 / 6 + x / 24))), d * (a1 - a0) / xs)

        hi0, hi1 = t0 >= 43.0, t1 >= 43.0
        ln1 = np.where(hi1, self.ln_hi, self.ln_lo)
        e1 = np.exp(ln1 * (43.0 - t1))
        ln = np.where(hi0 & hi1, self.ln_hi, self.ln_lo)
        out = piece(e0, e1, -ln * (t1 - t0), dt)
        cross = (hi0 != hi1) & (t0 != 43.0) & (t1 != 43.0)
        if cross.any():
            a, b, ea, eb = t0[cross], t1[cross], e0[cross], e1[cross]
            f = (43.0 - a) / (b - a)
            la = np.where(a >= 43.0, self.ln_hi, self.ln_lo)
            lb = np.where(b >= 43.0, self.ln_hi, self.ln_lo)
            one = np.ones_like(a)
            out[cross] = piece(ea, one, -la * (43.0 - a), f * dt) + piece(one, eb, -lb * (b - 43.0), (1 - f) * dt)
        return out / 60.0, e1

    def _arrhenius(self, t0, t1, dt):
        hot = (t0 > self.floor) | (t1 > self.floor)
        out = np.zeros(t0.shape)
        if hot.any():
            a, b = t0[hot], t1[hot]
            s = np.zeros(a.shape)
            for xq, wq in ((-0.7745966692414834, 5 / 9), (0.0, 8 / 9), (0.7745966692414834, 5 / 9)):
                tq = 0.5 * (a + b) + 0.5 * (b - a) * xq
                s += np.where(tq > self.floor, wq * np.exp(self.ln_a - self.ea_r / (tq + 273.15)), 0.0)
            out[hot] = 0.5 * dt * s
        return out

    def process(self, mag, phase, time_s):
        s = self.s
        sub = mag[:, ::2, ::2]
        sub = np.where(np.isfinite(sub), sub, np.float32(0.0))
        b = int(np.argmin([np.sum((sub - m) ** 2, dtype=np.float64) for m in self.base_mags]))
        ok_in = self.valid & np.isfinite(phase) & np.isfinite(mag) & (mag >= self.mag_min)
        d = phase - s.library.phase[b]
        d -= np.float32(TWO_PI) * np.floor((d + np.float32(math.pi)) / np.float32(TWO_PI))
        new = d + np.float32(TWO_PI) * np.rint((self.u - d) / np.float32(TWO_PI))
        step = new - self.u
        suspect_all = (np.abs(step) > 0.5 * math.pi) | ~self.ok_prev
        # drift from the reference voxels (suspects left out unless too few remain)
        vals = new.reshape(-1)[self.idx].astype(np.float64)
        use = ok_in.reshape(-1)[self.idx]
        calm = use & ~suspect_all.reshape(-1)[self.idx]
        use = calm if calm.sum() >= 0.5 * use.sum() else use
        coeffs = self.pinv @ vals if use.all() else np.linalg.lstsq(self.design[use], vals[use], rcond=None)[0]
        # trusted: usable and at least 3 usable in-plane neighbours (8 shifted views)
        okp = np.pad(ok_in, ((0, 0), (1, 1), (1, 1)))
        nj, ni = SHAPE[1], SHAPE[2]
        views = [(dj, di) for dj in (-1, 0, 1) for di in (-1, 0, 1) if dj or di]
        nv = sum(okp[:, 1 + dj:1 + dj + nj, 1 + di:1 + di + ni].astype(np.int8) for dj, di in views)
        ok = ok_in & (nv >= 3)
        self.u = np.where(ok, new, self.u)
        suspect = ok & suspect_all
        if suspect.any():  # rare after the first frame: suspects against their trusted neighbours
            up = np.pad(self.u, ((0, 0), (1, 1), (1, 1)))
            okp = np.pad(ok, ((0, 0), (1, 1), (1, 1)))
            far = np.zeros(SHAPE, np.int8)
            cnt = np.zeros(SHAPE, np.int8)
            for dj, di in views:
                o = okp[:, 1 + dj:1 + dj + nj, 1 + di:1 + di + ni]
                cnt += o
                far += o & (np.abs(up[:, 1 + dj:1 + dj + nj, 1 + di:1 + di + ni] - self.u) > math.pi)
            for k, j, i in np.argwhere(suspect & (2 * far > cnt)):
                sl = (k, slice(j, j + 3), slice(i, i + 3))
                m = okp[sl].copy()
                m[1, 1] = False
                self.u[k, j, i] += TWO_PI * round((float(np.median(up[sl][m])) - self.u[k, j, i]) / TWO_PI)
        drift = np.tensordot(coeffs.astype(np.float32), self.basis, axes=1)
        temp = np.where(ok, np.float32(s.body_c) + (self.u - drift) * self.inv_k, np.nan).astype(np.float32)
        sigma = np.where(ok, np.float32(s._sig_factor) / mag, np.nan).astype(np.float32)
        okm = ok.reshape(-1)[self.mon]
        tn = np.where(okm, temp.reshape(-1)[self.mon], self.prev_t)  # a gap: hold the last temperature
        dt = time_s - self.prev_time
        inc, e1 = self._cem(self.prev_t, tn, self.e_prev, dt)
        self.e_prev = e1.astype(np.float32)
        self.cem.reshape(-1)[self.mon] += inc.astype(np.float32)
        self.dmg.reshape(-1)[self.mon] += self._arrhenius(self.prev_t, tn, dt).astype(np.float32)
        self.prev_t, self.prev_time, self.ok_prev = tn, time_s, ok
        lethal = self.cem >= s.lethal_cem43
        cov = float(lethal.reshape(-1)[self.tgt].mean())
        maxes = [float(np.nanmax(temp.reshape(-1)[i])) for i in self.organs]
        return temp, sigma, cov, maxes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    n_base = 4
    frames, body, r2 = make_frames(args.frames + n_base)
    grid = Grid(SHAPE, make_affine((1.5, 1.5, 4.0)))
    target = r2 < 10.0**2
    oar = (np.abs(np.sqrt(r2) - 30) < 2) & body
    ref = body & (r2 > 60.0**2)
    st = MonitorStructures(target=target, organs=[OrganLimit("oar", oar, 45.0, "bench")], reference=ref)

    def new_session():
        sess = MonitorSession(grid, te_ms=TE, b0_t=B0, structures=st,
                              options=SessionOptions(drift_order=2, points={"c": (192.0, 192.0, 14.0)}))
        for m, p, t in frames[:n_base]:
            sess.add_baseline(m, p, t - n_base * PERIOD)
        return sess

    heated = frames[n_base:]
    # warm-up (numba compile and caches), then the timed runs, alternating the two pipelines
    warm = new_session()
    warm.process(*heated[0][:2], heated[0][2])
    sess_ms: list[float] = []
    plain_ms: list[float] = []
    sess_cpu: list[float] = []  # CPU time of all threads: the work done, whatever else runs on the machine
    plain_cpu: list[float] = []
    for _ in range(args.repeats):
        sess = new_session()
        sess._prepare()
        plain = PlainPipeline(sess)
        for m, p, t in heated:
            c0, t0 = time.process_time(), time.perf_counter()
            r = sess.process(m, p, t)
            sess_ms.append((time.perf_counter() - t0) * 1000)
            sess_cpu.append((time.process_time() - c0) * 1000)
            c0, t0 = time.process_time(), time.perf_counter()
            temp, _, _, _ = plain.process(m, p, t)
            plain_ms.append((time.perf_counter() - t0) * 1000)
            plain_cpu.append((time.process_time() - c0) * 1000)
        # same work, same answer
        both = np.isfinite(temp) & np.isfinite(r.temperature_c)
        assert np.array_equal(np.isfinite(temp), np.isfinite(r.temperature_c))
        assert float(np.max(np.abs(temp[both] - r.temperature_c[both]))) < 0.01
        assert np.allclose(plain.cem, sess.cem, rtol=1e-3, atol=1e-5)
        assert np.array_equal(plain.cem >= 240, sess.lethal)
    # the first frame of each run does the full spatial check (nothing trusted before): report it apart
    steady_s = [x for i, x in enumerate(sess_ms) if i % len(heated)]
    steady_p = [x for i, x in enumerate(plain_ms) if i % len(heated)]
    inc, pl = float(np.median(steady_s)), float(np.median(steady_p))
    paired = np.array(steady_p) / np.array(steady_s)  # the two ran back to back on each frame
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus visible, "
          f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, threading layer {numba.threading_layer()}, "
          f"load {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"frame {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} = {np.prod(SHAPE)} voxels, {len(steady_s)} frames "
          f"({args.repeats} runs of {len(heated)}, first frame of each run excluded)")
    print(f"session (numba, fused): median {inc:.2f} ms/frame (p90 {np.percentile(steady_s, 90):.2f} ms)")
    print(f"plain vectorised numpy, same work: median {pl:.2f} ms/frame (p90 {np.percentile(steady_p, 90):.2f} ms)")
    print(f"speed-up vs plain numpy (same run): {pl / inc:.1f}x (ratio of medians); frame by frame: median "
          f"{np.median(paired):.1f}x, best-of-run times {min(steady_p) / min(steady_s):.1f}x")
    cs = float(np.median([x for i, x in enumerate(sess_cpu) if i % len(heated)]))
    cp = float(np.median([x for i, x in enumerate(plain_cpu) if i % len(heated)]))
    print(f"CPU time per frame (all threads; what a loaded machine cannot inflate): session {cs:.2f} ms, "
          f"plain numpy {cp:.2f} ms: {cp / cs:.1f}x")
    print(f"ratio to the 1 s frame period: {inc / 1000 / PERIOD:.4f}")
    print(f"events: {[e.kind for e in sess.events]}; final coverage {sess.summaries[-1].target_coverage:.2f}")


if __name__ == "__main__":
    main()
