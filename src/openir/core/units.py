"""Unit normalisation at the import border.

Vendors spell units many ways ("Gym2", "dGy*cm2", "mGycm"); OpenIR stores one unit per quantity
(mm, s, W, °C, Gy, Gy·cm², mGy·cm) and converts here, once.
"""

from __future__ import annotations

from .errors import InputError

# canonical unit -> {spelling (normalised): factor to canonical}
_SPELLINGS: dict[str, dict[str, float]] = {
    "Gy": {"gy": 1.0, "mgy": 1e-3, "ugy": 1e-6, "µgy": 1e-6, "dgy": 0.1, "cgy": 1e-2},
    "Gy·cm²": {
        "gy·cm²": 1.0, "gycm2": 1.0, "gy*cm2": 1.0, "gy.cm2": 1.0, "gy·cm2": 1.0,
        "gy·m²": 1e4, "gym2": 1e4, "gy*m2": 1e4, "gy.m2": 1e4, "gy·m2": 1e4,
        "dgy·cm²": 0.1, "dgycm2": 0.1, "dgy*cm2": 0.1, "dgy.cm2": 0.1, "dgy·cm2": 0.1,
        "mgy·cm²": 1e-3, "mgycm2": 1e-3, "mgy*cm2": 1e-3, "mgy.cm2": 1e-3, "mgy·cm2": 1e-3,
        "µgy·m²": 1e-2, "ugym2": 1e-2, "ugy·m2": 1e-2, "ugy*m2": 1e-2, "µgym2": 1e-2,
        "cgy·cm²": 1e-2, "cgycm2": 1e-2,
    },
    "mGy·cm": {"mgy·cm": 1.0, "mgycm": 1.0, "mgy*cm": 1.0, "mgy.cm": 1.0, "gy·cm": 1e3, "gycm": 1e3},
    "s": {"s": 1.0, "sec": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
    "mm": {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 1e-3, "µm": 1e-3},
    "kV": {"kv": 1.0, "kvp": 1.0},
    "mA": {"ma": 1.0},
    "W": {"w": 1.0, "mw": 1e-3, "kw": 1e3},
}


def _norm(unit: str) -> str:
    u = unit.strip().replace(" ", "").replace("^", "").replace("{", "").replace("}", "")
    return u.replace("m2", "m2").replace("·", "·").lower()


def to_canonical(value: float, unit: str, quantity: str) -> float:
    """Convert ``value`` in ``unit`` to the canonical unit ``quantity`` (e.g. "Gy·cm²").

    Raises InputError naming the unit when it is not a known spelling of that quantity, rather than
    guessing: a dose off by 10^4 is worse than an import that stops.

    >>> to_canonical(2.5e-4, "Gym2", "Gy·cm²"), to_canonical(1500, "mGy", "Gy")
    (2.5, 1.5)
    >>> to_canonical(1.0, "Gy/min", "Gy")
    Traceback (most recent call last):
    ...
    openir.core.errors.InputError: unknown unit 'Gy/min' for Gy; expected one of [...]
    """
    table = _SPELLINGS.get(quantity)
    if table is None:
        raise InputError(f"no unit table for quantity {quantity!r}")
    factor = table.get(_norm(unit))
    if factor is None:
        raise InputError(f"unknown unit {unit!r} for {quantity}; expected one of {sorted(table)}")
    return float(value) * factor

