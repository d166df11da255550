"""Device source presets: which source model a device uses and its (calibrated) parameters.

Kept in ``data/source_calibration.yaml``; the calibrated values are written by
``openir simulate --calibrate`` (calibrate.py) from target zone axes, which come from the device
catalogue (plan/data/devices.yaml) and are cited beside each setting.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openir.core.datafiles import load_yaml_model
from openir.core.errors import DataFileError, InputError
from openir.core.labels import normalise_label_name

from .models import Criterion, SourceKind
from .tissues import Sourced

CALIBRATION_YAML = Path(__file__).with_name("data") / "source_calibration.yaml"

REQUIRED = {
    "microwave": ("feed_offset_mm", "sigma_radial_mm", "sigma_axial_mm", "absorbed_fraction"),
    "radiofrequency": ("exposed_length_mm", "electrode_radius_mm", "absorbed_fraction"),
    "laser": ("diffuser_length_mm", "mu_eff_per_mm", "fibre_radius_mm", "absorbed_fraction"),
    "cryo": ("freeze_length_mm", "probe_radius_mm", "temperature_c"),
}


class TargetAxes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    along: float = Field(gt=0)
    across: float = Field(gt=0)
    source: str = Field(min_length=3)


class CalibratedSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    power_w: float = Field(gt=0)
    time_s: float = Field(gt=0)
    target_semi_axes_mm: TargetAxes
    fitted: dict[str, float]
    achieved_semi_axes_mm: tuple[float, float]
    spacing_mm: float = Field(gt=0)
    criterion: Criterion


class DevicePreset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: SourceKind
    aliases: list[str] = Field(default_factory=list)
    default_power_w: float | None = None
    default_time_s: float | None = None
    parameters: dict[str, Sourced]
    settings: list[CalibratedSetting] = Field(default_factory=list)


class PresetTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    devices: dict[str, DevicePreset]


def load_presets(path: str | Path | None = None) -> PresetTable:
    """Read and validate a source-calibration YAML (the packaged one by default)."""
    return _packaged() if path is None else _load(Path(path))


@lru_cache(maxsize=1)
def _packaged() -> PresetTable:
    return _load(CALIBRATION_YAML)


def _load(path: Path) -> PresetTable:
    table = load_yaml_model(PresetTable, path)
    for name, dev in table.devices.items():
        missing = [p for p in REQUIRED[dev.kind] if p not in dev.parameters]
        if missing:
            raise DataFileError(f"{path} [devices.{name}.parameters]: missing {', '.join(missing)}")
    return table


def find_device(name: str, table: PresetTable | None = None, kind: str | None = None) -> tuple[str, DevicePreset]:
    """The preset for a device id or alias; the generic preset of ``kind`` if the id is unknown."""
    t = table or load_presets()
    n = normalise_label_name(name)
    for key, dev in t.devices.items():
        if n == key or n in (normalise_label_name(a) for a in dev.aliases):
            return key, dev
    if kind is not None and f"generic_{kind}" in t.devices:
        return f"generic_{kind}", t.devices[f"generic_{kind}"]
    raise InputError(f"unknown device {name!r}; known: {', '.join(sorted(t.devices))}", field="device")


def source_parameters(dev: DevicePreset, power_w: float | None, time_s: float | None) -> tuple[dict[str, float], list[str]]:
    """Parameters for a setting: the calibrated ones of the nearest calibrated setting, with notes."""
    params: dict[str, Any] = {k: v.value for k, v in dev.parameters.items()}
    notes: list[str] = []
    if not dev.settings:
        notes.append("source strength not calibrated for this device (generic parameters)")
        return params, notes
    p = power_w if power_w is not None else dev.default_power_w or dev.settings[0].power_w
    tt = time_s if time_s is not None else dev.default_time_s or dev.settings[0].time_s
    best = min(dev.settings, key=lambda s: abs(s.power_w - p) / s.power_w + abs(s.time_s - tt) / s.time_s)
    params.update(best.fitted)
    if best.power_w != p or best.time_s != tt:
        notes.append(
            f"calibration taken from the nearest calibrated setting {best.power_w:g} W / {best.time_s:g} s "
            f"(requested {p:g} W / {tt:g} s)"
        )
    return params, notes


def write_setting(path: Path, device: str, setting: CalibratedSetting) -> None:
    """Add or replace one calibrated setting of ``device`` in a calibration YAML (atomic write)."""
    original = path.read_text(encoding="utf-8")
    header = "".join(line for line in original.splitlines(keepends=True)[:40] if line.startswith("#"))
    raw = yaml.safe_load(original)
    dev = raw["devices"][device]
    items = [s for s in dev.get("settings") or [] if not (s["power_w"] == setting.power_w and s["time_s"] == setting.time_s)]
    items.append(setting.model_dump(mode="json"))
    dev["settings"] = sorted(items, key=lambda s: (s["power_w"], s["time_s"]))
    text = header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=110)
    _load_text_check(text, path)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    _packaged.cache_clear()


def _load_text_check(text: str, path: Path) -> None:
    try:
        PresetTable.model_validate(yaml.safe_load(text))
    except ValidationError as exc:  # never write a file that would not load
        raise DataFileError(f"{path}: refusing to write an invalid calibration: {exc.errors()[0]['msg']}") from None
