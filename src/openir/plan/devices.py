"""The ablation device catalogue: devices, their zone tables, and validation on load.

The catalogue is data that experts edit (``data/devices.yaml``); loading checks it so a bad row is
reported by device id, row and field instead of silently producing a wrong zone: positive axes,
growth with time and power, a stated volume that matches the ellipsoid, and a source for every row.
Rows marked ``source: unsourced`` stay in the file to show the gap but are never used.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import read_yaml, validate_data
from openir.core.enums import THERMAL_MODALITIES, AblationModality
from openir.core.errors import DataFileError

Modality = AblationModality
Evidence = Literal["manufacturer", "clinical", "in vivo animal", "ex vivo", "phantom"]
THERMAL: frozenset[str] = THERMAL_MODALITIES
VOLUME_TOLERANCE = 0.10  # stated volume vs pi/6*L*D1*D2 (published volumes are rounded/measured)

# Which table a device's zone comes from when the caller does not name one. The manufacturer's
# chart first (what vendor planning software uses and what users check a plan against), then
# measurements in patients, in living animals, ex vivo and in phantoms. Ex vivo zones run larger
# than in vivo ones (no perfusion), so they rank below them. `zone_dimensions(evidence=...)` and
# `openir plan --evidence` pick another table explicitly.
EVIDENCE_PREFERENCE: tuple[str | None, ...] = (
    "manufacturer", "clinical", "in vivo animal", "ex vivo", "phantom", None)

# The settings that select a row, per modality, in interpolation order: discrete keys must match a
# row exactly; continuous ones are interpolated between rows (never extrapolated).
SETTING_AXES: dict[str, tuple[tuple[str, bool], ...]] = {
    "microwave": (("power_w", True), ("time_s", True)),
    "radiofrequency": (("exposure_mm", False), ("power_w", True), ("time_s", True)),
    "cryo": (("isotherm_c", False), ("time_s", True)),
    "ire": (("exposure_mm", False), ("spacing_mm", True)),
    "chemical": (("injected_ml", True),),
}


class ZoneRow(BaseModel):
    """One published zone: setting (power x time, freeze time + isotherm, ...) and its extents."""

    model_config = ConfigDict(extra="forbid")

    power_w: float | None = None
    time_s: float | None = None
    control: Literal["power", "impedance", "temperature"] | None = Field(
        None, description="RF generator mode; impedance/temperature-controlled rows need no fixed power")
    isotherm_c: float | None = None
    spacing_mm: float | None = None
    exposure_mm: float | None = None
    injected_ml: float | None = None
    probes: int = Field(1, ge=1, description="probes that made the zone together (IRE pairs: 2)")
    length_mm: float | None = Field(None, description="extent along the shaft")
    diameter_mm: float | None = Field(None, description="extent across the shaft")
    diameter2_mm: float | None = Field(None, description="second transverse extent (default = diameter)")
    volume_ml: float | None = None
    tip_to_centre_mm: float | None = Field(None, description="tip back along the shaft to zone centre")
    beyond_tip_mm: float | None = Field(None, description="how far the zone reaches past the tip")
    evidence: Evidence | None = Field(None, description="what the numbers are: manufacturer chart, "
                                      "clinical series, in vivo animal, ex vivo, phantom")
    n: int | None = Field(None, description="number of ablations measured, where stated")
    tissue: str | None = None
    source: str
    verified: bool = False
    note: str | None = None

    @property
    def usable(self) -> bool:
        return self.source.strip().lower() != "unsourced"

    @property
    def centre_offset_mm(self) -> float | None:
        """Tip-to-zone-centre distance: stated, or half the length minus the reach past the tip."""
        if self.tip_to_centre_mm is not None:
            return self.tip_to_centre_mm
        if self.beyond_tip_mm is not None and self.length_mm is not None:
            return self.length_mm / 2 - self.beyond_tip_mm
        return None

    @property
    def semi_axes_mm(self) -> tuple[float, float, float]:
        """(along, across, across2) semi-axes."""
        d2 = self.diameter2_mm if self.diameter2_mm is not None else self.diameter_mm
        return (self.length_mm / 2, self.diameter_mm / 2, d2 / 2)  # type: ignore[operator]

    @property
    def ellipsoid_volume_ml(self) -> float:
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    def label(self) -> str:
        parts = []
        for name, unit in (("power_w", " W"), ("time_s", " s"), ("isotherm_c", " C"),
                           ("spacing_mm", " mm spacing"), ("exposure_mm", " mm exposure"),
                           ("injected_ml", " mL")):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{v:g}{unit}")
        if self.control and self.control != "power":
            parts.append(f"{self.control}-controlled")
        return ", ".join(parts) or "no setting"


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    manufacturer: str
    modality: Modality
    gauge: float | None = None
    usable_lengths_mm: list[float] = Field(default_factory=list)
    spec_source: str = "unsourced"
    active_length_mm: float | None = Field(None, gt=0, description="cryo: freezing (active) length of the needle")
    active_length_source: str | None = Field(None, description="where the active length comes from, or NOT SOURCED")
    zones: list[ZoneRow]

    @property
    def thermal(self) -> bool:
        return self.modality in THERMAL

    def usable_rows(self) -> list[ZoneRow]:
        return [r for r in self.zones if r.usable]

    @property
    def evidence_kinds(self) -> list[str | None]:
        """The evidence tables this device has sourced rows for, in preference order."""
        have = {r.evidence for r in self.usable_rows()}
        return [e for e in EVIDENCE_PREFERENCE if e in have]

    def table(self, evidence: str | None = None) -> list[ZoneRow]:
        """The sourced rows of one evidence table: ``evidence``, else the preferred one present.

        Rows of different evidence (a manufacturer chart and a clinical series of the same setting)
        are never mixed in one interpolation.
        """
        kinds = self.evidence_kinds
        if evidence is None:
            return [r for r in self.usable_rows() if r.evidence == kinds[0]] if kinds else []
        if evidence not in kinds:
            from openir.core.errors import InputError

            have = ", ".join(str(k) for k in kinds) or "none"
            raise InputError(f"device {self.id!r} has no sourced {evidence!r} rows; it has: {have}",
                             field="evidence")
        return [r for r in self.usable_rows() if r.evidence == evidence]


class ArrayDefault(BaseModel):
    """The device an array of one modality is planned with when the user names none, and why."""

    model_config = ConfigDict(extra="forbid")
    device: str
    reason: str = Field(min_length=10, description="sourced reason for the choice")


class DeviceCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    catalogue_version: str
    array_defaults: dict[str, ArrayDefault] = Field(default_factory=dict)
    devices: list[Device]

    def get(self, device_id: str) -> Device:
        for d in self.devices:
            if d.id == device_id:
                return d
        from openir.core.errors import InputError

        raise InputError(f"unknown device {device_id!r}; catalogue has: {', '.join(self.ids)}",
                         field="device")

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.devices]


# ---- validation ---------------------------------------------------------------------------------

def _row_problems(dev: Device, i: int, row: ZoneRow) -> list[str]:
    where = f"devices[{dev.id}].zones[{i}] ({row.label()})"
    out: list[str] = []
    if not row.usable:
        return out
    need = ["length_mm", "diameter_mm", *(name for name, _ in SETTING_AXES[dev.modality])]
    if dev.modality == "radiofrequency":
        # An RF row is set by power x time, or by the exposed tip x time: under impedance or
        # temperature control the power is not a setting, and many papers do not state it.
        need.remove("power_w")
        need.remove("exposure_mm")
        if row.control in ("impedance", "temperature"):
            need.append("exposure_mm")
        elif row.power_w is None and row.exposure_mm is None:
            out.append(f"{where}: an RF row needs power_w or exposure_mm (mark the row 'unsourced' instead)")
    elif dev.modality == "cryo":
        need.remove("isotherm_c")  # null = histological zone, not an isotherm
    for f in need:
        if getattr(row, f) is None:
            out.append(f"{where}: {f} is missing on a sourced row (mark the row 'unsourced' instead)")
    for f in ("length_mm", "diameter_mm", "diameter2_mm", "volume_ml", "power_w", "time_s",
              "spacing_mm", "exposure_mm", "injected_ml"):
        v = getattr(row, f)
        if v is not None and not (v > 0 and math.isfinite(v)):
            out.append(f"{where}: {f} must be positive, got {v}")
    if row.tip_to_centre_mm is not None and row.tip_to_centre_mm < 0:
        out.append(f"{where}: tip_to_centre_mm must be >= 0, got {row.tip_to_centre_mm}")
    if row.beyond_tip_mm is not None:
        if row.beyond_tip_mm < 0:
            out.append(f"{where}: beyond_tip_mm must be >= 0, got {row.beyond_tip_mm}")
        elif row.length_mm is not None and row.beyond_tip_mm > row.length_mm / 2:
            out.append(f"{where}: beyond_tip_mm {row.beyond_tip_mm} puts the zone centre ahead of the "
                       f"tip (more than half the length {row.length_mm})")
    if not out and row.volume_ml is not None:
        calc = row.ellipsoid_volume_ml
        if abs(calc - row.volume_ml) > VOLUME_TOLERANCE * row.volume_ml:
            out.append(f"{where}: stated volume {row.volume_ml} mL differs from the ellipsoid "
                       f"pi/6*L*D*D2 = {calc:.1f} mL by more than {VOLUME_TOLERANCE:.0%}")
    return out


_GROWTH_WORDS: dict = {"time_s": "time", "power_w": "power", ("cryo", "time_s"): "freeze time",
                       "isotherm_c": "isotherm temperature", "spacing_mm": "spacing",
                       "injected_ml": "injected volume"}


def _monotone_problems(dev: Device) -> list[str]:
    """Within one table (evidence x tissue), zones must not shrink with a larger setting.

    More time at the same power, more power at the same time, a warmer isotherm (colder isotherms
    lie inside warmer ones), wider IRE spacing, more ethanol. Two rows with the same setting in one
    table are a duplicate.
    """
    axes = SETTING_AXES[dev.modality]
    rows = [(i, r) for i, r in enumerate(dev.zones) if r.usable and r.length_mm and r.diameter_mm]
    out = []
    growing = [name for name, cont in axes if cont] + (["isotherm_c"] if dev.modality == "cryo" else [])
    names = [name for name, _ in axes]
    for order in growing:
        groups: dict = {}
        for i, r in rows:
            if getattr(r, order) is None:
                continue
            key = (r.evidence, r.tissue, r.control, *(getattr(r, n) for n in names if n != order))
            groups.setdefault(key, []).append((getattr(r, order), i, r))
        for items in groups.values():
            items.sort(key=lambda t: t[0])
            for (x0, i0, r0), (x1, i1, r1) in zip(items, items[1:], strict=False):
                if x1 == x0:
                    msg = (f"devices[{dev.id}].zones[{i1}] ({r1.label()}): duplicates the setting "
                           f"of zones[{i0}]")
                    if msg not in out:
                        out.append(msg)
                    continue
                what = _GROWTH_WORDS.get((dev.modality, order)) or _GROWTH_WORDS.get(order, order)
                for ax in ("length_mm", "diameter_mm"):
                    if getattr(r1, ax) < getattr(r0, ax):
                        out.append(f"devices[{dev.id}].zones[{i1}] ({r1.label()}): {ax} "
                                   f"{getattr(r1, ax)} shrinks with more {what} "
                                   f"(zones[{i0}] has {getattr(r0, ax)})")
    return out


def validate_catalogue(cat: DeviceCatalogue) -> list[str]:
    """All problems found in ``cat`` (empty when it is valid)."""
    problems: list[str] = []
    seen: set[str] = set()
    for dev in cat.devices:
        if dev.id in seen:
            problems.append(f"devices[{dev.id}]: duplicate device id")
        seen.add(dev.id)
        for i, row in enumerate(dev.zones):
            problems += _row_problems(dev, i, row)
        problems += _monotone_problems(dev)
        if dev.active_length_mm is not None and dev.modality != "cryo":
            problems.append(f"devices[{dev.id}].active_length_mm: only cryo needles have a freezing length "
                            f"(this device is {dev.modality}; IRE/RF use exposure_mm)")
        if dev.active_length_mm is not None and not (dev.active_length_source or "").strip():
            problems.append(f"devices[{dev.id}].active_length_source: a freezing length needs its source")
    for mod, d in cat.array_defaults.items():
        dev_mod = {x.id: x.modality for x in cat.devices}.get(d.device)
        if dev_mod is None:
            problems.append(f"array_defaults[{mod}]: unknown device {d.device!r}")
        elif dev_mod != mod:
            problems.append(f"array_defaults[{mod}]: device {d.device!r} is {dev_mod}, not {mod}")
    return problems


def _default_path() -> Path:
    return Path(str(resources.files("openir.plan") / "data" / "devices.yaml"))


def parse_catalogue(data: object, source: str | Path = "<catalogue>") -> DeviceCatalogue:
    cat = validate_data(DeviceCatalogue, data, source)
    problems = validate_catalogue(cat)
    if problems:
        raise DataFileError(f"{source}: {len(problems)} bad row(s):\n  " + "\n  ".join(problems))
    return cat


@lru_cache(maxsize=8)
def _load_cached(path: str) -> DeviceCatalogue:
    p = Path(path)
    return parse_catalogue(read_yaml(p), p)


def load_catalogue(path: str | Path | None = None) -> DeviceCatalogue:
    """Load and validate a device catalogue (default: the one shipped in ``openir.plan``)."""
    return _load_cached(str(Path(path) if path is not None else _default_path()))


def catalogue_version(path: str | Path | None = None) -> str:
    return load_catalogue(path).catalogue_version
