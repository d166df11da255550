"""Closed-form Pennes solution for a Gaussian source, to validate the numerical solver.

For constant coefficients in infinite tissue starting at the arterial temperature, with a source
``Q(x) = Q0 exp(-|x - x0|^2 / (2 s^2))`` switched on at t = 0, the temperature rise theta obeys

    rho c dtheta/dt = k lap(theta) - w_b rho_b c_b theta + Q(x).

Its Green's function is the heat kernel (variance 2 alpha t per axis, alpha = k / (rho c)) times the
perfusion decay exp(-beta t), beta = w_b rho_b c_b / (rho c). A Gaussian convolved with the heat
kernel stays Gaussian with variance s^2 + 2 alpha tau, so (Duhamel)

    theta(r, t) = Q0/(rho c) * int_0^t exp(-beta tau) (s^2 / (s^2 + 2 alpha tau))^(3/2)
                  exp(-r^2 / (2 (s^2 + 2 alpha tau))) dtau,

a classical result (cf. Deng & Liu, J Biomech Eng 2002) evaluated here by adaptive quadrature.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad


def gaussian_source_rise(
    r_mm: np.ndarray | float,
    t_s: float,
    *,
    q0_w_m3: float,
    sigma_mm: float,
    density_kg_m3: float,
    heat_capacity_j_kg_k: float,
    conductivity_w_m_k: float,
    perfusion_1_s: float,
    blood_density_kg_m3: float,
    blood_heat_capacity_j_kg_k: float,
) -> np.ndarray:
    """Temperature rise (K) at distance ``r_mm`` from the source centre at time ``t_s``."""
    rc = density_kg_m3 * heat_capacity_j_kg_k
    alpha = conductivity_w_m_k / rc
    beta = perfusion_1_s * blood_density_kg_m3 * blood_heat_capacity_j_kg_k / rc
    s2 = (sigma_mm * 1e-3) ** 2
    r = np.atleast_1d(np.asarray(r_mm, dtype=float)) * 1e-3
    uniq, inv = np.unique(np.round(r, 12), return_inverse=True)

    def integrand(tau: float, rr: float) -> float:
        v = s2 + 2 * alpha * tau
        return np.exp(-beta * tau) * (s2 / v) ** 1.5 * np.exp(-rr * rr / (2 * v))

    vals = np.array([quad(integrand, 0.0, t_s, args=(rr,), epsabs=1e-12, epsrel=1e-10, limit=200)[0] for rr in uniq])
    out = (q0_w_m3 / rc) * vals[inv]
    return out.reshape(np.shape(r_mm)) if np.ndim(r_mm) else out[0]
