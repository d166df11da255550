"""Field-drift correction: a low-order polynomial fitted to the phase of unheated reference voxels.

The main field drifts during a procedure (gradient heating, shim), adding a smooth phase that
looks like temperature everywhere. Fitting a polynomial of order 0-2 in x, y, z over voxels known
to stay at body temperature and subtracting it removes it (Rieke & Butts Pauly, JMRI 2008).
The pseudo-inverse over the fixed reference mask is computed once, so each frame costs one small
matrix-vector product plus the evaluation of the polynomial.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from openir.core.errors import InputError


def monomials(order: int) -> list[tuple[int, int, int]]:
    """Exponents (a, b, c) of x^a y^b z^c with a + b + c <= order."""
    if order not in (0, 1, 2):
        raise InputError(f"drift polynomial order must be 0, 1 or 2, got {order}", field="drift_order")
    return [e for e in product(range(order + 1), repeat=3) if sum(e) <= order]


def _axes(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised coordinates (-1..1) along k, j, i (kept as 1-D arrays for broadcasting)."""
    def ax(n: int) -> np.ndarray:
        return np.linspace(-1.0, 1.0, n, dtype=np.float64) if n > 1 else np.zeros(1)
    return ax(shape[0]), ax(shape[1]), ax(shape[2])


class DriftModel:
    """Least-squares polynomial drift over a fixed reference mask on a fixed grid."""

    def __init__(self, reference: np.ndarray, order: int = 1, max_voxels: int = 20000) -> None:
        ref = np.asarray(reference, bool)
        if ref.ndim != 3:
            raise InputError("reference mask must be 3-D [k, j, i]", field="reference")
        self.exps = monomials(order)
        if int(ref.sum()) < 3 * len(self.exps):
            raise InputError(f"reference region has {int(ref.sum())} voxels; order {order} drift needs at least "
                             f"{3 * len(self.exps)}", field="reference")
        self.shape = ref.shape
        self.index = np.flatnonzero(ref)
        if self.index.size > max_voxels:  # an even subsample: the fit has at most 10 unknowns
            self.index = self.index[:: int(np.ceil(self.index.size / max_voxels))]
        z, y, x = _axes(ref.shape)
        kk, jj, ii = np.unravel_index(self.index, ref.shape)
        a = np.stack([x[ii] ** e[0] * y[jj] ** e[1] * z[kk] ** e[2] for e in self.exps], axis=1)
        self.design = a
        self.pinv = np.linalg.pinv(a)
        self.ref_mean_row = a.mean(axis=0)  # drift coefficients -> mean drift over the reference
        self._z, self._y, self._x = z, y, x

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Power tables px[a, i] = x_i^a (likewise y, z) and the exponents, for fused kernels."""
        def powers(ax: np.ndarray) -> np.ndarray:
            return np.stack([ax**e for e in range(3)])
        return powers(self._x), powers(self._y), powers(self._z), np.array(self.exps, dtype=np.int64)

    def fit(self, phase: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        """Polynomial coefficients fitted to ``phase`` over the reference voxels.

        ``ok`` (bool, the grid's shape): voxels usable this frame. Reference voxels outside it (NaN,
        low signal) are left out of the fit rather than poisoning it; `InputError` when too few are
        left for the polynomial (the caller skips the frame and says so).
        """
        vals = phase.reshape(-1)[self.index].astype(np.float64)
        use = np.isfinite(vals) if ok is None else ok.reshape(-1)[self.index] & np.isfinite(vals)
        if use.all():
            return self.pinv @ vals
        if int(use.sum()) < 3 * len(self.exps):
            raise InputError(f"only {int(use.sum())} of {use.size} drift reference voxels are usable in this frame",
                             field="reference")
        coeffs, *_ = np.linalg.lstsq(self.design[use], vals[use], rcond=None)
        return coeffs

    def fit_values(self, vals: np.ndarray, use: np.ndarray) -> np.ndarray:
        """Coefficients from the reference voxels' values ``vals`` (in ``index`` order), ``use`` of them."""
        if use.all():
            return self.pinv @ vals
        if int(use.sum()) < 3 * len(self.exps):
            raise InputError(f"only {int(use.sum())} of {use.size} drift reference voxels are usable in this frame",
                             field="reference")
        coeffs, *_ = np.linalg.lstsq(self.design[use], vals[use], rcond=None)
        return coeffs

    def usable_fraction(self, ok: np.ndarray) -> float:
        """Fraction of the reference voxels usable in a frame (``ok``)."""
        return float(ok.reshape(-1)[self.index].mean()) if self.index.size else 0.0

    def evaluate(self, coeffs: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """The drift field of ``coeffs`` on the whole grid (separable evaluation, no design matrix)."""
        out = np.zeros(self.shape, dtype=dtype)
        z, y, x = (a.astype(dtype) for a in (self._z, self._y, self._x))
        for c, (a, b, e) in zip(coeffs, self.exps, strict=True):
            if c == 0:
                continue
            out += (dtype(c) * z[:, None, None] ** e) * (y[None, :, None] ** b * x[None, None, :] ** a)
        return out


def fit_drift(phase: np.ndarray, reference: np.ndarray, order: int = 1) -> np.ndarray:
    """One-off drift field (radians) fitted to ``phase`` over ``reference``; see `DriftModel`."""
    m = DriftModel(reference, order)
    return m.evaluate(m.fit(phase), np.float64)
