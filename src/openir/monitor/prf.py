"""Proton resonance frequency (PRF) shift thermometry: phase difference to temperature change.

    dT = dphi / (2 pi * gamma * alpha * B0 * TE)

with gamma = 42.577 MHz/T and alpha = -0.01 ppm/°C (Rieke & Butts Pauly, JMRI 2008). The phase
difference to the baseline is taken as the angle of the complex-conjugate product (no wrap at the
subtraction itself); heating past one cycle (about 78 °C at 3 T, TE 10 ms; 39 °C at TE 20 ms) is
followed by temporal unwrapping of each voxel's phase from frame to frame.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ThermometryTable, load_thermometry

TWO_PI = 2.0 * math.pi


def prf_rad_per_c(b0_t: float, te_ms: float, *, alpha_ppm_c: float | None = None,
                  gamma_mhz_t: float | None = None, table: ThermometryTable | None = None) -> float:
    """Phase change per °C (rad/°C; negative for the PRF coefficient's sign)."""
    t = table or load_thermometry()
    a = t.prf_coefficient_ppm_c.value if alpha_ppm_c is None else alpha_ppm_c
    g = t.gyromagnetic_ratio_mhz_t.value if gamma_mhz_t is None else gamma_mhz_t
    return TWO_PI * g * 1e6 * a * 1e-6 * b0_t * te_ms * 1e-3


def wrap(phi: np.ndarray) -> np.ndarray:
    """Wrap angles to -pi..pi."""
    return (phi + math.pi) % TWO_PI - math.pi


def phase_difference(z: np.ndarray, z_ref: np.ndarray) -> np.ndarray:
    """angle(z * conj(z_ref)): the wrapped phase change from a baseline, without subtraction wraps."""
    return np.angle(z * np.conj(z_ref)).astype(np.float32)


def temporal_unwrap(previous: np.ndarray, wrapped: np.ndarray) -> np.ndarray:
    """The value ``wrapped + 2 pi n`` nearest ``previous`` (per voxel): follows phase past +-pi.

    Valid while the true change between two frames stays under pi (about 39 °C per frame at 3 T,
    TE 10 ms).
    """
    return wrapped + np.float32(TWO_PI) * np.rint((previous - wrapped) / np.float32(TWO_PI))


def temperature_change(dphi: np.ndarray, b0_t: float, te_ms: float, **kw: float) -> np.ndarray:
    """Temperature change (°C) from an (unwrapped, drift-corrected) phase difference in radians."""
    return (dphi / np.float32(prf_rad_per_c(b0_t, te_ms, **kw))).astype(np.float32)  # type: ignore[arg-type]


def phase_for_temperature(dt_c: np.ndarray | float, b0_t: float, te_ms: float, **kw: float) -> np.ndarray:
    """The PRF phase change (rad) a temperature change implies (for synthetic series and tests)."""
    return np.asarray(dt_c, dtype=np.float64) * prf_rad_per_c(b0_t, te_ms, **kw)  # type: ignore[arg-type]


class BaselineLibrary:
    """Baseline images over the respiratory cycle; each frame uses the best-matching one.

    Matching compares magnitudes over a subsampled region (breathing moves anatomy, which shows in
    the magnitude), so the baseline is taken in the same respiratory position as the frame.
    """

    def __init__(self, stride: int = 2) -> None:
        self.complex: list[np.ndarray] = []
        self.phase: list[np.ndarray] = []
        self._mags: list[np.ndarray] = []
        self.stride = stride
        self._sel: tuple[slice, ...] = (slice(None), slice(None, None, stride), slice(None, None, stride))

    def __len__(self) -> int:
        return len(self.complex)

    def add(self, magnitude: np.ndarray, phase: np.ndarray) -> int:
        z = (magnitude * np.exp(1j * phase)).astype(np.complex64)
        self.complex.append(z)
        self.phase.append(np.ascontiguousarray(phase, dtype=np.float32))
        self._mags.append(np.ascontiguousarray(magnitude[self._sel], dtype=np.float32))
        self._stack: np.ndarray | None = None
        return len(self.complex) - 1

    def select(self, magnitude: np.ndarray) -> int:
        """Index of the baseline whose magnitude is closest (least squares) to ``magnitude``."""
        if len(self._mags) == 1:
            return 0
        from ._kernels import baseline_sse

        if getattr(self, "_stack", None) is None:
            self._stack = np.ascontiguousarray(np.stack(self._mags))
        # one fused pass over the sampled voxels; a NaN counts as 0 so it cannot make every baseline look equal
        errs = baseline_sse(np.asarray(magnitude, np.float32), self._stack, self.stride)
        return int(np.argmin(errs))
