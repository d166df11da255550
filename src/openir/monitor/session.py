"""`MonitorSession`: frame after frame, temperature, thermal dose, lethal zone, coverage and alerts.

Per frame: pick the baseline in the same respiratory position (multi-baseline library), take the
complex phase difference, bring it to the reference position when breathing moved the anatomy,
unwrap it in time per voxel, remove the field drift fitted over unheated reference tissue, convert to
temperature (PRF), mask noisy and fat voxels, then accumulate CEM43 and Arrhenius damage between the
previous frame and this one (physics.dose; exact for a temperature linear in time), and check the
limits of every structure. Everything is incremental: no history is kept beyond the last frame.

Faults never pass silently and never stop the session. A voxel that is NaN/Inf or below the SNR
floor in a frame is left out of that frame (counted in the summary, its last temperature held for
the dose, its unwrapped phase untouched) and of the drift fit; a wrap picked up through noise is
corrected against the neighbours (`_kernels.fix_deferred`). A frame that cannot be used at all (wrong
shape, too few drift reference voxels, most of the tissue unusable) is skipped: the dose is bridged
linearly to the next good frame and a "monitoring_degraded" event says so.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import ndimage

from openir.core.errors import InputError
from openir.core.volume import Grid
from openir.physics import load_tissue_table

from . import _kernels as _k
from .config import ThermometryTable, load_thermometry
from .drift import DriftModel
from .models import Event, FrameResult, FrameSummary, PointCurve
from .prf import BaselineLibrary, prf_rad_per_c
from .structures import MonitorStructures
from .uncertainty import noise_sigma

Criterion = Literal["cem43", "arrhenius"]
GAS_CONSTANT_J_MOL_K = 8.314462618  # CODATA 2018


def _median(x: np.ndarray) -> float:
    """np.median of a non-empty 1-D array without its NaN checks (the caller keeps finite values)."""
    k = x.size // 2
    part = np.partition(x, (k - 1, k) if x.size > 1 else k)
    return float(part[k]) if x.size % 2 else 0.5 * float(part[k - 1] + part[k])


def _shift(a: np.ndarray, shift_kji: np.ndarray, cval: float = 0.0) -> np.ndarray:
    """Translate ``a`` by ``shift_kji`` voxels: slicing for whole voxels, linear interpolation otherwise."""
    s = np.asarray(shift_kji, float)
    if np.allclose(s, np.rint(s), atol=1e-3):
        si = np.rint(s).astype(int)
        out = np.full_like(a, cval)
        src, dst = [], []
        for d, n in zip(si, a.shape, strict=True):
            src.append(slice(max(0, -d), n - max(0, d)))
            dst.append(slice(max(0, d), n - max(0, -d)))
        out[tuple(dst)] = a[tuple(src)]
        return out
    return ndimage.shift(a, s, order=1, mode="constant", cval=cval, prefilter=False)


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """How a `MonitorSession` processes frames; the defaults suit a 1.5-3 T liver gradient echo.

    ``drift_order``: polynomial order of the field-drift fit over the reference region (None: no drift
    correction). ``snr_min``: voxels below this magnitude SNR are left out of a frame. ``criterion``:
    lethal-zone rule (CEM43 or Arrhenius damage). ``alpha_ppm_c``: PRF coefficient (None: the sourced
    value in data/thermometry.yaml). ``points``: named LPS points (mm) whose temperature and dose
    curves are kept. ``motion_correction``: register baselines in-plane to follow breathing.
    ``noise_sigma``: magnitude noise sigma (None: measured from the images). ``coverage_to_stop``:
    target coverage fraction that raises "target_covered" (None: data/thermometry.yaml).
    ``clear_margin_c``: hysteresis below a limit before its alert clears, so noise alone cannot flap
    it. ``event_log``: JSON-lines file the events are appended to. ``table``: thermometry data
    (None: the packaged data/thermometry.yaml).

    >>> SessionOptions(drift_order=2).criterion
    'cem43'
    """

    drift_order: int | None = 1
    snr_min: float = 5.0
    criterion: Criterion = "cem43"
    alpha_ppm_c: float | None = None
    points: Mapping[str, tuple[float, float, float]] | None = None
    motion_correction: bool = True
    noise_sigma: float | None = None
    coverage_to_stop: float | None = None
    clear_margin_c: float = 1.0
    event_log: str | Path | None = None
    table: ThermometryTable | None = None


class MonitorSession:
    """Incremental PRF thermometry and thermal-dose monitoring of one ablation.

    Call `add_baseline` for each unheated image (over at least one breathing cycle when the target
    moves), then `process` for each new frame. ``structures`` gives the target (with margin), organs
    at risk with limits, the unheated reference region for the drift fit and fat (masked: PRF does
    not apply). Arrays are ``[k, j, i]`` on ``grid``; times in seconds.
    """

    def __init__(
        self,
        grid: Grid,
        *,
        te_ms: float,
        b0_t: float,
        structures: MonitorStructures | None = None,
        options: SessionOptions | None = None,
    ) -> None:
        if te_ms <= 0 or b0_t <= 0:
            raise InputError(f"echo time and field must be > 0, got TE {te_ms} ms, B0 {b0_t} T")
        o = options or SessionOptions()
        points = o.points or {}
        self.options = o
        self.grid = grid
        self.table = o.table or load_thermometry()
        self.te_ms, self.b0_t = float(te_ms), float(b0_t)
        self.k = prf_rad_per_c(b0_t, te_ms, alpha_ppm_c=o.alpha_ppm_c, table=self.table)
        self.structures = structures or MonitorStructures()
        self.drift_order = o.drift_order
        self.snr_min = o.snr_min
        self.criterion: Criterion = o.criterion
        self.motion_correction = o.motion_correction
        self.body_c = float(self.table.body_temperature_c.value)
        self.coverage_to_stop = self.table.coverage_to_stop.value if o.coverage_to_stop is None else o.coverage_to_stop
        tissues = load_tissue_table()
        self.lethal_cem43 = tissues.thermal_dose.lethal_cem43_min.value
        self.lethal_damage = tissues.arrhenius.lethal_damage.value
        self.arrhenius_floor_c = tissues.arrhenius.integration_floor_c.value
        self._sigma_noise = o.noise_sigma
        self.library = BaselineLibrary()
        self.shifts: list[np.ndarray] = []
        self.events: list[Event] = []
        self.summaries: list[FrameSummary] = []
        self.event_log = Path(o.event_log) if o.event_log else None
        self.curves = {n: PointCurve(name=n, lps=tuple(float(v) for v in p)) for n, p in points.items()}  # type: ignore[misc]
        self._point_idx: dict[str, tuple[int, int, int] | None] = {}
        for n, p in points.items():
            ijk = np.rint(grid.world_to_index(np.asarray(p, float))).astype(int)
            self._point_idx[n] = (int(ijk[2]), int(ijk[1]), int(ijk[0])) if grid.contains_index(ijk) else None
        self._ready = False
        self._bad_baseline: np.ndarray | None = None
        self._degraded = False
        self.skipped: list[Event] = []
        self._last_baseline_time = 0.0
        self.frame_count = 0
        self._over: dict[str, bool] = {}
        self.clear_margin_c = o.clear_margin_c  # hysteresis: noise alone must not flap an alert
        self._covered = False

    # ---- baselines ----------------------------------------------------------------------------
    def add_baseline(self, magnitude: np.ndarray, phase: np.ndarray, time_s: float = 0.0) -> int:
        """Add an unheated image to the baseline library; returns its index."""
        self._check(magnitude, phase)
        if self._ready:
            raise InputError("baselines must come before the first heated frame")
        bad = ~(np.isfinite(magnitude) & np.isfinite(phase))
        if bad.any():
            self._bad_baseline = bad if self._bad_baseline is None else (self._bad_baseline | bad)
            magnitude, phase = np.where(bad, 0.0, magnitude), np.where(bad, 0.0, phase)
        idx = self.library.add(magnitude, phase)
        self._last_baseline_time = float(time_s)
        self.shifts.append(self._register(idx))
        return idx

    def _register(self, index: int) -> np.ndarray:
        """In-plane translation (voxels, k j i; k = 0) taking baseline ``index`` onto baseline 0.

        Phase correlation of the slice-averaged magnitudes: few thick slices carry no reliable
        through-plane shift, so only the in-plane part of the breathing motion is corrected.
        """
        if not self.motion_correction or index == 0:
            return np.zeros(3)
        from skimage.registration import phase_cross_correlation

        ref = np.abs(self.library.complex[0]).mean(axis=0)
        mov = np.abs(self.library.complex[index]).mean(axis=0)
        shift, _, _ = phase_cross_correlation(ref, mov, upsample_factor=50, normalization=None)
        s = np.array([0.0, float(shift[0]), float(shift[1])])
        s[np.abs(s) < 0.02] = 0.0
        return s

    def _check(self, magnitude: np.ndarray, phase: np.ndarray) -> None:
        if magnitude.shape != self.grid.shape or phase.shape != self.grid.shape:
            raise InputError(f"frame shape {magnitude.shape}/{phase.shape} does not match the grid {self.grid.shape}")

    def _prepare(self) -> None:
        if not len(self.library):
            raise InputError("no baseline image: add at least one before processing frames")
        z0 = self.library.complex[0]
        mag0 = np.abs(z0)
        if self._sigma_noise is None:
            self._sigma_noise = noise_sigma(mag0)
        valid = mag0 >= self.snr_min * self._sigma_noise
        if self.structures.fat is not None:
            valid &= ~self.structures.fat
        if self._bad_baseline is not None:
            valid &= ~self._bad_baseline  # no trustworthy baseline phase there
        self.valid = valid
        self._n_mon = int(np.count_nonzero(valid))
        ref = self.structures.reference
        if ref is None:
            ref = self._auto_reference(valid)
        self.reference = ref & valid
        self.drift = DriftModel(self.reference, self.drift_order) if self.drift_order is not None else None
        shape = self.grid.shape
        self.unwrapped = np.zeros(shape, np.float32)
        self._ok_prev = np.zeros(shape, bool)
        self._zero_phase = np.zeros(int(np.prod(shape)), np.float32)
        # float32 state: 1e-7 relative is far below any dose threshold, and half the memory traffic
        self.prev_t = np.full(shape, self.body_c, np.float32)
        self.prev_time = self._last_baseline_time
        self.cem = np.zeros(shape, np.float32)
        self.dmg = np.zeros(shape, np.float32)
        self.voxel_ml = self.grid.voxel_volume_mm3 / 1000.0
        self.lethal = np.zeros(shape, bool)
        if self.drift is not None:
            self._px, self._py, self._pz, self._exps = self.drift.tables()
        else:
            # no drift terms: zero bases of the full axis lengths (the kernel indexes them per voxel)
            nk, nj, ni = shape
            self._px, self._py, self._pz = np.zeros((3, ni)), np.zeros((3, nj)), np.zeros((3, nk))
            self._exps = np.zeros((0, 3), np.int64)
        tg = self.structures.target
        self._target_idx = np.flatnonzero(tg) if tg is not None and tg.any() else None
        self._organ_idx = [np.flatnonzero(o.mask & valid) for o in self.structures.organs]
        ref_idx = np.flatnonzero(self.reference)
        self._ref_sample = ref_idx[:: max(1, ref_idx.size // 5000)]
        tissues = load_tissue_table()
        self._dose_c = {
            "ln_r_above": math.log(tissues.thermal_dose.r_above_43.value),
            "ln_r_below": math.log(tissues.thermal_dose.r_below_43.value),
            "ln_a": math.log(tissues.arrhenius.liver.frequency_factor_1_s.value),
            "ea_over_r": tissues.arrhenius.liver.activation_energy_j_mol.value / GAS_CONSTANT_J_MOL_K,
            "floor_c": tissues.arrhenius.integration_floor_c.value,
        }
        # R^(43 - T) of each voxel's last temperature (the CEM43 integrand), kept so a frame needs one exp
        self._e_prev = np.full(shape, math.exp(self._dose_c["ln_r_below"] * (43.0 - self.body_c)), np.float32)
        # the monitored span of each row [k, j]: the main pass skips the air on either side
        rows = valid.reshape(-1, shape[2])
        anyv = rows.any(axis=1)
        self._row_lo = np.where(anyv, rows.argmax(axis=1), 0).astype(np.int64)
        self._row_hi = np.where(anyv, shape[2] - rows[:, ::-1].argmax(axis=1), 0).astype(np.int64)
        # trusted-input mask with a zero border (the main pass counts neighbours without bounds tests)
        self._pad = np.zeros((shape[0], shape[1] + 2, shape[2] + 2), np.uint8)
        self._stats = np.zeros((min(64, shape[0] * shape[1]), 4))  # per block of rows, see _kernels.frame_pass
        self._xs = np.ascontiguousarray(self._px[1], dtype=np.float64)
        # the drift terms per row: row_basis[(r, a), t] = y^b z^c of term t when its x power is a
        nk, nj = shape[0], shape[1]
        rb = np.zeros((nk, nj, 3, len(self._exps)))
        for t, (a, b, e) in enumerate(self._exps):
            rb[:, :, a, t] = np.outer(self._pz[e], self._py[b])
        self._row_basis = rb.reshape(nk * nj * 3, len(self._exps))
        self._row_zero = np.zeros((nk * nj, 3))
        self._ref_idx = self.drift.index.astype(np.uint64) if self.drift is not None else np.zeros(0, np.uint64)
        self._sig_factor = math.sqrt(2.0) / abs(self.k) * self._sigma_noise
        self._ready = True

    def _row_drift(self, coeffs: np.ndarray) -> np.ndarray:
        """The drift polynomial along each row [k, j] as (c0, c1, c2) of c0 + c1 x + c2 x^2."""
        if not coeffs.size:
            return self._row_zero
        return (self._row_basis @ coeffs).reshape(-1, 3)

    def _auto_reference(self, valid: np.ndarray) -> np.ndarray:
        """Without a reference region: valid voxels farther than 20 mm from the target (or, on a
        small field of view, the farthest 30 % of them); with no target either, all valid voxels,
        which is right only while the heated spot is small. A plan should name real unheated tissue."""
        tgt = self.structures.target
        if tgt is None or not tgt.any():
            return valid.copy()
        sp = self.grid.spacing
        dist = ndimage.distance_transform_edt(~tgt, sampling=(sp[2], sp[1], sp[0]))
        ref = valid & (dist > 20.0)
        if ref.sum() < 200 and valid.any():
            ref = valid & (dist >= np.percentile(dist[valid], 70))
        return ref

    # ---- frames -------------------------------------------------------------------------------
    def process(self, magnitude: np.ndarray, phase: np.ndarray, time_s: float) -> FrameResult:
        """Process one heated frame; returns its maps, summary and new events.

        A frame that cannot be used comes back with ``summary.skipped`` set, NaN maps and a
        "monitoring_degraded" event; the session goes on with the next frame.
        """
        t_start = time.perf_counter()
        if not self._ready:
            self._prepare()
        dt = float(time_s) - self.prev_time
        if not dt > 0:
            raise InputError(f"frame time {time_s} s is not after the previous frame ({self.prev_time} s)", field="time_s")
        if magnitude.shape != self.grid.shape or phase.shape != self.grid.shape:
            return self.skip_frame(float(time_s), f"frame shape {magnitude.shape}/{phase.shape} is not the grid's "
                                   f"{self.grid.shape} (dropped or extra slices)", t_start)
        b = self.library.select(magnitude)
        shift = self.shifts[b]
        mag = np.ascontiguousarray(magnitude, dtype=np.float32)
        if np.any(shift != 0):
            # breathing moved the anatomy: interpolate the complex difference (never a wrapped phase)
            bad = ~(np.isfinite(magnitude) & np.isfinite(phase))
            ph = np.where(bad, 0.0, phase).astype(np.float32)
            mg = np.where(bad, 0.0, mag).astype(np.float32)
            z = mg * np.exp(1j * ph).astype(np.complex64)
            dz = z * np.conj(self.library.complex[b])
            dz = _shift(dz.real, shift) + 1j * _shift(dz.imag, shift)
            mag = np.ascontiguousarray(_shift(mg, shift), dtype=np.float32)
            if bad.any():  # a voxel touched by a bad one through the interpolation is bad too
                mag[_shift(bad.astype(np.float32), shift, cval=1.0) > 0] = np.nan
            cur = np.ascontiguousarray(np.angle(dz), dtype=np.float32).reshape(-1)
            base = self._zero_phase
        else:
            cur = np.ascontiguousarray(phase, dtype=np.float32).reshape(-1)
            base = self.library.phase[b].reshape(-1)
        # linear interpolation of the shifted difference averages neighbouring voxels' noise: the
        # variance of (1 - f) a + f b is ((1 - f)^2 + f^2) that of one voxel, per shifted axis
        frac = np.abs(shift - np.floor(shift))
        sig_factor = self._sig_factor * math.sqrt(float(np.prod((1 - frac) ** 2 + frac**2)))
        mag_min = self.snr_min * self._sigma_noise
        magf, mon = mag.reshape(-1), self.valid.reshape(-1)
        # can this frame be used at all? decided before anything is changed
        tot, good = _k.usable_mask(cur, magf, mon, mag_min, self._row_lo, self._row_hi, self._pad)
        if tot and tot - good > 0.5 * tot:
            return self.skip_frame(float(time_s), f"{tot - good} of {tot} monitored voxels are unusable (NaN, Inf or "
                                   "below the SNR floor)", t_start)
        if self.drift is not None:
            d = self.drift
            vals = np.empty(d.index.size, np.float64)
            use = np.empty(d.index.size, bool)
            sus = np.empty(d.index.size, bool)
            _k.reference_values(self._ref_idx, cur, base, magf, mon, mag_min, self.unwrapped.reshape(-1),
                                self._ok_prev.reshape(-1), vals, use, sus)
            calm = use & ~sus  # suspects may carry a wrap: left out unless too few remain
            try:
                coeffs = d.fit_values(vals, calm if calm.sum() >= 0.5 * use.sum() else use)
            except InputError as exc:
                return self.skip_frame(float(time_s), str(exc), t_start)
            drift_rad = float(coeffs @ d.ref_mean_row)
        else:
            coeffs, drift_rad = np.zeros(0), 0.0
        shape = self.grid.shape
        # every voxel of these is written by the main pass
        ok = np.empty(shape, bool)
        deferred = np.empty(shape, bool)
        temp = np.empty(shape, np.float32)
        sigma = np.empty(shape, np.float32)
        c = self._dose_c
        dc = np.array([dt, c["ln_r_above"], c["ln_r_below"], c["ln_a"], c["ea_over_r"], c["floor_c"],
                       self.lethal_cem43, self.lethal_damage, float(self.criterion == "cem43")])
        st = self._stats
        _k.frame_pass(cur, base, magf, self._pad, mon, self._row_lo, self._row_hi, 3, self.unwrapped.reshape(-1),
                      self._ok_prev.reshape(-1), self._row_drift(coeffs), self._xs,
                      np.array([self.body_c, 1.0 / self.k, sig_factor]), dc, self.prev_t.reshape(-1),
                      self.cem.reshape(-1), self.dmg.reshape(-1), self._e_prev.reshape(-1), self.lethal.reshape(-1),
                      ok.reshape(-1), deferred.reshape(-1), temp.reshape(-1), sigma.reshape(-1), st)
        n_ok, n_def = int(st[:, 0].sum()), int(st[:, 1].sum())
        tmax = float(st[:, 3].max())
        wraps = 0
        if n_def:
            dlist = np.flatnonzero(deferred)
            dose_args = (sig_factor, self.prev_t.reshape(-1), dt, c["ln_r_above"], c["ln_r_below"], c["ln_a"],
                         c["ea_over_r"], c["floor_c"], self.lethal_cem43, self.lethal_damage,
                         self.criterion == "cem43", temp.reshape(-1), sigma.reshape(-1), self.cem.reshape(-1),
                         self.dmg.reshape(-1), self.lethal.reshape(-1), self._e_prev.reshape(-1))
            wraps = int(_k.fix_deferred(dlist, self.unwrapped.reshape(-1), ok.reshape(-1), magf, self._px, self._py,
                                        self._pz, self._exps, coeffs, np.array(shape, np.int64), 1.0 / self.k,
                                        self.body_c, *dose_args, 4))
            tmax = max(tmax, float(np.max(temp.reshape(-1)[dlist])))
        masked = self._n_mon - n_ok
        self._ok_prev = ok
        self.prev_time = float(time_s)
        lethal = self.lethal
        n = self.frame_count
        self.frame_count += 1
        tgt = self._target_idx
        coverage = float(np.count_nonzero(lethal.reshape(-1)[tgt])) / tgt.size if tgt is not None else None
        organ_max = [self._organ_max(temp, i) for i in self._organ_idx]
        struct_max = {o.name: m for o, m in zip(self.structures.organs, organ_max, strict=True)}
        events = self._check_limits(organ_max, coverage, n, float(time_s))
        self._check_degraded(ok, masked, n, float(time_s), events)
        for name, idx in self._point_idx.items():
            if idx is not None:
                cv = self.curves[name]
                cv.times_s.append(float(time_s))
                cv.temperature_c.append(float(temp[idx]))
                cv.cem43_min.append(float(self.cem[idx]))
        ref_mag = mag.reshape(-1)[self._ref_sample]
        ref_mag = ref_mag[np.isfinite(ref_mag) & (ref_mag > 0)]
        summary = FrameSummary(
            frame=n, time_s=float(time_s), baseline_index=b, drift_rad=drift_rad,
            max_temperature_c=tmax if n_ok else math.nan,
            target_coverage=coverage, lethal_volume_ml=float(np.count_nonzero(lethal) * self.voxel_ml),
            structure_max_c=struct_max,
            median_sigma_c=float(sig_factor / _median(ref_mag)) if ref_mag.size else math.nan,
            processing_ms=(time.perf_counter() - t_start) * 1000.0, masked_voxels=masked, wraps_corrected=wraps,
        )
        self.summaries.append(summary)
        return FrameResult(summary, temp, sigma, self.cem, self.dmg, lethal, ok, events)

    def skip_frame(self, time_s: float, reason: str, t_start: float | None = None) -> FrameResult:
        """Record a frame that cannot be used: a "monitoring_degraded" event, a summary marked
        ``skipped``, NaN maps; the dose is bridged linearly from the last good frame to the next."""
        t_start = time.perf_counter() if t_start is None else t_start
        if not self._ready and len(self.library):
            self._prepare()
        n = self.frame_count
        self.frame_count += 1
        out: list[Event] = []
        ev = Event(time_s=float(time_s), frame=n, kind="monitoring_degraded", severity="warning",
                   message=f"monitoring degraded: frame {n} at {time_s:.1f} s skipped: {reason}; temperature and "
                           "dose are bridged from the last good frame to the next")
        self._emit(ev, out)
        self.skipped.append(ev)
        shape = self.grid.shape
        nan = np.full(shape, np.nan, np.float32)
        lethal = getattr(self, "lethal", np.zeros(shape, bool))
        tgt = getattr(self, "_target_idx", None)
        summary = FrameSummary(
            frame=n, time_s=float(time_s), baseline_index=-1, drift_rad=math.nan, max_temperature_c=math.nan,
            target_coverage=float(lethal.reshape(-1)[tgt].mean()) if tgt is not None else None,
            lethal_volume_ml=float(np.count_nonzero(lethal) * getattr(self, "voxel_ml", 0.0)),
            median_sigma_c=math.nan, processing_ms=(time.perf_counter() - t_start) * 1000.0, skipped=True,
            note=reason)
        self.summaries.append(summary)
        zeros = np.zeros(shape)
        return FrameResult(summary, nan, nan.copy(), getattr(self, "cem", zeros), getattr(self, "dmg", zeros), lethal,
                           np.zeros(shape, bool), out)

    def note_problem(self, time_s: float, message: str) -> Event:
        """A "monitoring_degraded" warning for a problem outside a heated frame (e.g. a lost baseline)."""
        ev = Event(time_s=float(time_s), frame=self.frame_count, kind="monitoring_degraded", severity="warning",
                   message=f"monitoring degraded: {message}")
        self._emit(ev, [])
        self.skipped.append(ev)
        return ev

    def _check_degraded(self, ok: np.ndarray, masked: int, n: int, t: float, out: list[Event]) -> None:
        """A "monitoring_degraded" event when target or organ-at-risk voxels (or > 20 % of the tissue;
        a breathing shift alone masks a few % at the body edge)
        cannot be read in a frame, and "monitoring_restored" once they can again (no event per frame)."""
        flat = ok.reshape(-1)
        tgt = self._target_idx
        in_target = int(np.count_nonzero(self.valid.reshape(-1)[tgt] & ~flat[tgt])) if tgt is not None else 0
        in_organs = sum(int(i.size - np.count_nonzero(flat[i])) for i in self._organ_idx)
        n_mon = max(self._n_mon, 1)
        degraded = in_target > 0 or in_organs > 0 or masked > 0.2 * n_mon
        if degraded and not self._degraded:
            self._emit(Event(time_s=t, frame=n, kind="monitoring_degraded", severity="warning", value=float(masked),
                             message=f"monitoring degraded: {masked} tissue voxels unusable in this frame (NaN, Inf "
                                     f"or low signal), {in_target} in the target, {in_organs} in organs at risk; "
                                     "their last temperature is held"), out)
        elif not degraded and self._degraded:
            self._emit(Event(time_s=t, frame=n, kind="monitoring_restored", severity="info", value=float(masked),
                             message="monitoring restored: target and organs at risk readable again"), out)
        self._degraded = degraded

    @staticmethod
    def _organ_max(temp: np.ndarray, idx: np.ndarray) -> float:
        v = temp.reshape(-1)[idx]
        return float(np.nanmax(v)) if v.size and np.isfinite(v).any() else math.nan

    def _emit(self, ev: Event, out: list[Event]) -> None:
        self.events.append(ev)
        out.append(ev)
        if self.event_log is not None:
            with open(self.event_log, "a", encoding="utf-8") as fh:
                fh.write(ev.model_dump_json() + "\n")

    def _check_limits(self, organ_max: list[float], coverage: float | None, n: int, t: float) -> list[Event]:
        """Limit and stop events from this frame's organ maxima (in ``structures.organs`` order) and
        target coverage."""
        out: list[Event] = []
        for o, tmax in zip(self.structures.organs, organ_max, strict=True):
            if not math.isfinite(tmax):
                continue
            was = self._over.get(o.name, False)
            over = tmax > o.max_c if not was else tmax > o.max_c - self.clear_margin_c
            if over and not was:
                self._emit(Event(time_s=t, frame=n, kind="limit_exceeded", severity="critical", structure=o.name,
                                 value=tmax, limit=o.max_c,
                                 message=f"{o.name}: {tmax:.1f} °C exceeds the {o.max_c:g} °C limit ({o.source})"), out)
            elif not over and was:
                self._emit(Event(time_s=t, frame=n, kind="limit_cleared", severity="info", structure=o.name, value=tmax,
                                 limit=o.max_c, message=f"{o.name}: back below {o.max_c - self.clear_margin_c:g} °C "
                                 f"({tmax:.1f} °C)"), out)
            self._over[o.name] = over
        if coverage is not None and not self._covered:
            cov = coverage
            if cov >= self.coverage_to_stop:
                self._covered = True
                self._emit(Event(time_s=t, frame=n, kind="target_covered", severity="warning", structure="target",
                                 value=cov, limit=self.coverage_to_stop,
                                 message=f"target covered: {100 * cov:.1f} % of tumour + margin has a lethal dose "
                                         f"({self.criterion}) - time to stop"), out)
        return out

    # ---- output --------------------------------------------------------------------------------
    def write_summaries(self, path: str | Path) -> Path:
        """All frame summaries and events as one JSON document."""
        p = Path(path)
        doc = {"frames": [s.model_dump() for s in self.summaries], "events": [e.model_dump() for e in self.events],
               "curves": [c.model_dump() for c in self.curves.values()]}
        p.write_text(json.dumps(doc, indent=1))
        return p
