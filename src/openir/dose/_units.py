"""Unit conversion for RDSR values, on top of :func:`openir.core.to_canonical`.

Core knows the dose quantities; RDSRs also carry angles, areas, pulse rates and counts, and spell
units with separators core does not list ("uGy.m2", "Gy·m²", "mGy.cm²"). Anything still unknown
raises InputError naming the unit: a KAP off by 10^4 is worse than an import that stops.
"""

from __future__ import annotations

import re

from openir.core import to_canonical
from openir.core.errors import InputError

_EXTRA: dict[str, dict[str, float]] = {
    "deg": {"deg": 1.0, "°": 1.0, "degree": 1.0, "degrees": 1.0, "degrees°": 1.0},
    "cm²": {"m2": 1e4, "cm2": 1.0, "mm2": 1e-2, "dm2": 1e2},
    "1/s": {"pulse/s": 1.0, "pulses/s": 1.0, "/s": 1.0, "1/s": 1.0, "hz": 1.0, "s-1": 1.0, "frames/s": 1.0},
    "1": {"1": 1.0, "": 1.0, "pulse": 1.0, "pulses": 1.0, "frames": 1.0, "ratio": 1.0, "nounits": 1.0},
    "%": {"%": 1.0, "percent": 1.0},
    "uAs": {"uas": 1.0, "ua.s": 1.0, "mas": 1e3, "ma.s": 1e3, "as": 1e6, "a.s": 1e6},
}


def _bare(unit: str) -> str:
    u = unit.strip().lower()
    for a, b in (("²", "2"), ("µ", "u"), ("μ", "u"), ("{", ""), ("}", ""), ("^", ""), (" ", "")):
        u = u.replace(a, b)
    return u


def convert(value: float, unit: str, quantity: str, *, source: str | None = None, field: str | None = None) -> float:
    """``value`` in ``unit`` expressed in ``quantity`` (a core canonical unit or deg, cm², 1/s, 1, %, mGy, ms)."""
    if quantity == "1" and unit.strip().startswith("{") and unit.strip().endswith("}"):
        return float(value)  # UCUM annotation, e.g. {events}, {ratio}: dimensionless
    if quantity in _EXTRA:
        factor = _EXTRA[quantity].get(_bare(unit))
        if factor is None:
            raise InputError(f"unknown unit {unit!r} for {quantity}", source=source, field=field)
        return float(value) * factor
    if quantity == "mGy":
        return 1e3 * convert(value, unit, "Gy", source=source, field=field)
    if quantity == "ms":
        return 1e3 * convert(value, unit, "s", source=source, field=field)
    try:
        return to_canonical(value, unit, quantity)
    except InputError:
        pass
    bare = _bare(unit)
    for cand in (bare, bare.replace("·", "").replace(".", "").replace("*", "")):
        try:
            return to_canonical(value, cand, quantity)
        except InputError:
            continue
    factor = _composed(bare, quantity)
    if factor is not None:
        return float(value) * factor
    raise InputError(f"unknown unit {unit!r} for {quantity}", source=source, field=field)


# vendors combine any SI prefix with Gy, A and a length or area (uGy.cm2, mGy.m2, cGy.cm, uA):
# read them by composition, each part from this table, rather than list every spelling
_PREFIX = {"": 1.0, "k": 1e3, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_COMPOSED = {
    "Gy·cm²": (re.compile(r"^([kdcmun]?)gy[.*·]?([kdcmu]?)m2$"), 1.0, 2, 1e-2),  # Gy, area in cm²
    "mGy·cm": (re.compile(r"^([kdcmun]?)gy[.*·]?([kdcmu]?)m$"), 1e-3, 1, 1e-2),  # mGy, length in cm
    "mA": (re.compile(r"^([kmun]?)a$"), 1e-3, 0, 1.0),
}


def _composed(bare: str, quantity: str) -> float | None:
    """Factor of a prefixed dose-product or current unit, or None when it does not parse."""
    spec = _COMPOSED.get(quantity)
    if spec is None:
        return None
    rx, dose_unit, power, base = spec
    m = rx.match(bare)
    if m is None:
        return None
    factor = _PREFIX[m.group(1)] / dose_unit
    if power:
        factor *= (_PREFIX[m.group(2)] / base) ** power
    return factor
