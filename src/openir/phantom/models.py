"""Public types of the phantom package: what to build (`TumourSpec`) and what was built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic.dataclasses import dataclass as pydantic_dataclass

from openir.core import InputError, LabelMap, Volume

VESSEL_LABELS = ("aorta", "ivc", "portal_vein", "hepatic_veins")
BONE_LABELS = ("ribs", "spine")

Shape = Literal["sphere", "ellipsoid", "lobulated"]
Location = Literal["central", "subcapsular", "perivascular"]
_LUNG_ORGANS = ("lung", "lung_left", "lung_right")


@dataclass(frozen=True)
class TumourSpec:
    """A tumour to build.

    ``diameter_mm`` is the volume-equivalent sphere diameter (so ellipsoids and lobulated shapes
    have the same volume as a sphere of that diameter): 10-60 mm for solid organs, 5-30 mm for
    lung nodules. ``location`` is a placement rule or an LPS centre in mm. ``hu`` defaults to a
    hypodense liver lesion or, in lung, a ground-glass value.
    """

    diameter_mm: float = 30.0
    shape: Shape = "sphere"
    location: Location | tuple[float, float, float] = "central"
    organ: str = "liver"
    hu: float | None = None

    def __post_init__(self) -> None:
        lo, hi = (5.0, 30.0) if self.organ in _LUNG_ORGANS else (10.0, 60.0)
        d = self.diameter_mm
        if not isinstance(d, (int, float)) or not np.isfinite(d) or not lo <= d <= hi:
            raise InputError(f"tumour diameter must be {lo:g}-{hi:g} mm in {self.organ}, got {d!r}",
                             field="diameter_mm")
        if self.shape not in ("sphere", "ellipsoid", "lobulated"):
            raise InputError(f"unknown tumour shape {self.shape!r} (sphere, ellipsoid, lobulated)", field="shape")
        loc = self.location
        if isinstance(loc, str):
            if loc not in ("central", "subcapsular", "perivascular"):
                raise InputError(f"unknown tumour location {loc!r} (central, subcapsular, perivascular or an "
                                 "LPS point)", field="location")
        else:
            try:
                pt = tuple(float(v) for v in loc)
            except (TypeError, ValueError) as exc:
                raise InputError(f"tumour location must be a rule or 3 numbers, got {loc!r}", field="location") \
                    from exc
            if len(pt) != 3 or not np.all(np.isfinite(pt)):
                raise InputError(f"tumour location must be 3 finite LPS mm values, got {loc!r}", field="location")
            object.__setattr__(self, "location", pt)
        if self.hu is not None and not -1000 <= self.hu <= 3000:
            raise InputError(f"tumour HU must be within -1000..3000, got {self.hu}", field="hu")

    @property
    def location_name(self) -> str:
        return self.location if isinstance(self.location, str) else "point"


@pydantic_dataclass
class TumourInfo:
    """The truth about one tumour as built (label value, centre, volume-equivalent diameter)."""

    name: str
    label: int
    centre_lps: tuple[float, float, float]
    diameter_mm: float
    shape: str
    location: str
    volume_ml: float
    organ: str = "liver"
    hu: float = 0.0


@dataclass
class Phantom:
    """A synthetic (or tumour-implanted) patient.

    ``vessel_segments`` holds the centrelines painted for each vessel label as rows
    ``(x0, y0, z0, x1, y1, z1, r0_mm, r1_mm, generation)`` in LPS mm (empty for an implant).
    """

    ct: Volume
    labels: LabelMap
    tumours: list[TumourInfo]
    seed: int
    vessel_segments: dict[str, np.ndarray] = field(default_factory=dict)
