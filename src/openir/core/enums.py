"""Coded vocabularies shared by several packages, each spelt once.

The ablation modality is named by the plan, simulated by physics, recorded by the registry and shown
by the web, so it lives here (packages below `plan` cannot import it from there). Vocabularies of one
package live in that package's ``enums.py``.
"""

from __future__ import annotations

from typing import Literal, get_args

AblationModality = Literal["microwave", "radiofrequency", "laser", "cryo", "ire", "chemical"]
ABLATION_MODALITIES: tuple[str, ...] = get_args(AblationModality)
#: modalities that kill by heating (thermal dose, MR thermometry applies)
THERMAL_MODALITIES: frozenset[str] = frozenset({"microwave", "radiofrequency", "laser"})
#: modalities whose probes work as one array (ice balls coalesce; the IRE field lives between pairs)
ARRAY_MODALITIES: frozenset[str] = frozenset({"cryo", "ire"})
#: modalities with a physics model (ethanol/chemical ablation has none)
SIMULATED_MODALITIES: frozenset[str] = frozenset(ABLATION_MODALITIES) - {"chemical"}
