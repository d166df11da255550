"""Large vessels as flow-dependent heat sinks.

Blood in a large vessel is replaced faster than heat can warm it, so the lumen stays near the
arterial temperature; what limits the heat drawn from the ablation is the thermal boundary layer at
the wall. Its film coefficient h follows the flow through the Nusselt number: laminar developing
flow (Sieder-Tate, Ind Eng Chem 1936;28:1429), never below fully developed laminar flow (Nu = 3.66,
constant wall temperature), and Dittus-Boelter (Univ Calif Publ Eng 1930;2:443) for turbulent flow.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from openir.core.errors import InputError

from .tissues import TissueTable, load_tissue_table

RE_TURBULENT = 2300.0  # onset of turbulence in pipe flow (textbook value, e.g. Incropera)


def wall_heat_transfer(
    diameter_mm: float,
    velocity_m_s: float,
    *,
    heated_length_mm: float = 40.0,
    table: TissueTable | None = None,
) -> float:
    """Wall film coefficient h in W/m^2/K for blood flowing at ``velocity_m_s`` in a vessel.

    ``heated_length_mm``: the length of vessel wall exposed to heating (about the zone length),
    which sets the thermal entrance effect in laminar flow.
    """
    if diameter_mm <= 0 or velocity_m_s < 0 or heated_length_mm <= 0:
        raise InputError("vessel diameter and heated length must be > 0, velocity >= 0")
    b = (table or load_tissue_table()).blood
    d = diameter_mm * 1e-3
    mu, k = b.viscosity_pa_s.value, b.conductivity_w_m_k.value
    re = b.density_kg_m3.value * velocity_m_s * d / mu
    pr = mu * b.heat_capacity_j_kg_k.value / k
    if re < RE_TURBULENT:
        nu = max(3.66, 1.86 * (re * pr * d / (heated_length_mm * 1e-3)) ** (1.0 / 3.0))
    else:
        nu = 0.023 * re**0.8 * pr**0.4
    return float(nu * k / d)


def vessel_diameter_mm(mask: np.ndarray, spacing_mm: tuple[float, float, float]) -> float:
    """Diameter of a vessel mask from its largest inscribed sphere (2 x max distance to the wall)."""
    if not mask.any():
        return 0.0
    edt = ndimage.distance_transform_edt(mask, sampling=tuple(spacing_mm[::-1]))
    return float(2.0 * edt.max())
