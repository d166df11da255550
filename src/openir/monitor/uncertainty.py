"""Temperature uncertainty per voxel from image noise.

The phase noise of a voxel is 1/SNR radians (SNR = magnitude / noise sigma, for SNR >~ 5), so the
temperature noise is sigma_T = 1 / (SNR * |2 pi gamma alpha B0 TE|) (Rieke & Butts Pauly, JMRI
2008). A difference with a baseline adds the baseline's noise: sqrt(1 + 1/n) for a baseline
averaged over n images. The noise sigma comes from background (air) voxels, whose magnitude is
Rayleigh distributed: mean = sigma * sqrt(pi/2).
"""

from __future__ import annotations

import math

import numpy as np

from openir.core.errors import InputError


def background_mask(magnitude: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Voxels darker than ``fraction`` of the 99th-percentile magnitude (air, outside the body)."""
    hi = float(np.percentile(magnitude, 99))
    return magnitude < fraction * hi


def noise_sigma(magnitude: np.ndarray, background: np.ndarray | None = None) -> float:
    """Noise standard deviation of the underlying complex data from background magnitude."""
    bg = background_mask(magnitude) if background is None else np.asarray(background, bool)
    if int(bg.sum()) < 20:
        raise InputError("too few background voxels to estimate the noise (need >= 20)", field="background")
    mean = float(np.mean(magnitude[bg], dtype=np.float64))
    if not mean > 0:
        raise InputError("background magnitude is zero: noise cannot be estimated (masked or synthetic data?)",
                         field="background")
    return mean / math.sqrt(math.pi / 2.0)


def snr_map(magnitude: np.ndarray, sigma: float) -> np.ndarray:
    return (magnitude / np.float32(sigma)).astype(np.float32)


def temperature_sigma(snr: np.ndarray, rad_per_c: float, baseline_images: int = 1) -> np.ndarray:
    """Per-voxel temperature standard deviation (°C) of a baseline-subtracted PRF map."""
    factor = math.sqrt(1.0 + 1.0 / max(baseline_images, 1)) / abs(rad_per_c)
    with np.errstate(divide="ignore"):
        return (np.float32(factor) / np.maximum(snr, np.float32(1e-6))).astype(np.float32)
