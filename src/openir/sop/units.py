"""Laboratory units normalised at the border: platelets 10^9/L, eGFR mL/min/1.73 m², haemoglobin g/L.

Chinese laboratories report platelets in 10^9/L, others in /µL (= 10^6/L) or 10^3/µL; haemoglobin in
g/L or g/dL. A platelet count of 150 000 read as 10^9/L would pass every threshold, so a number
without a unit that only makes sense in /µL is refused rather than guessed.
"""

from __future__ import annotations

import math
import re
from typing import Any

# quantity -> {normalised spelling: factor to the canonical unit}; pure unit conversions (no clinical numbers)
_UNITS: dict[str, dict[str, float]] = {
    "platelets": {"10^9/l": 1.0, "x10^9/l": 1.0, "10*9/l": 1.0, "109/l": 1.0, "g/l": 1.0, "/nl": 1.0,
                  "10^3/ul": 1.0, "x10^3/ul": 1.0, "k/ul": 1.0, "10^3/mm3": 1.0, "/ul": 1e-3, "/mm3": 1e-3,
                  "10^6/l": 1e-3},
    "egfr": {"ml/min/1.73m2": 1.0, "ml/min/1.73m^2": 1.0, "ml/min/1.73m²": 1.0, "ml/min": 1.0},
    "haemoglobin": {"g/l": 1.0, "g/dl": 10.0},
    "inr": {"": 1.0, "1": 1.0, "ratio": 1.0},
}
CANONICAL = {"platelets": "10^9/L", "egfr": "mL/min/1.73m2", "haemoglobin": "g/L", "inr": "1"}
# a bare number above this cannot be a count in 10^9/L (physiological counts are below ~1500 x 10^9/L)
_BARE_PLATELET_MAX = 2000.0
_NUM_UNIT = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(.*?)\s*$")


def _spell(unit: str) -> str:
    u = unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u").replace("×", "x")
    return u.replace("**", "^").replace("³", "3").replace("⁹", "^9")


def normalise_lab(quantity: str, raw: Any) -> float | None:
    """``raw`` (number, ``"150000 /uL"``, ``{"value": .., "unit": ..}``) in the canonical unit of ``quantity``.

    Raises ValueError (pydantic names the field) for NaN, unknown units, or a bare platelet number
    too large to be 10^9/L.

    >>> normalise_lab("platelets", "150000 /uL"), normalise_lab("haemoglobin", {"value": 12.5, "unit": "g/dL"})
    (150.0, 125.0)
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    unit: str | None = None
    if isinstance(raw, dict):
        if set(raw) - {"value", "unit"} or "value" not in raw:
            raise ValueError("give {value, unit}")
        value, unit = raw["value"], raw.get("unit")
    elif isinstance(raw, str):
        m = _NUM_UNIT.match(raw)
        if m is None:
            if raw.strip().lower() in ("nan", "na", "n/a"):
                raise ValueError(f"{raw!r} is not a value (NaN refused; leave the field empty if not recorded)")
            raise ValueError(f"{raw!r} is not a number with an optional unit")
        value, unit = m.group(1), m.group(2) or None
    else:
        value = raw
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN or infinite value refused (leave the field empty if not recorded)")
    table = _UNITS[quantity]
    if unit is None:
        if quantity == "platelets" and x > _BARE_PLATELET_MAX:
            raise ValueError(f"platelet count {x:g} without a unit looks like /uL; give the unit "
                             f"(e.g. '{x:g} /uL' or {x / 1000:g} in 10^9/L)")
        return x
    factor = table.get(_spell(unit))
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} for {quantity}; use {CANONICAL[quantity]} or one of "
                         f"{', '.join(sorted(k for k in table if k))}")
    return x * factor
