"""Lethal-zone dimensions of canonical probe arrays, fast enough for the planner's inner loop.

``array_zone_dimensions`` answers from a precomputed table (``data/array_zone_table.json``,
interpolated linearly in probe spacing; other active lengths / exposures shift the extent along the
probes and the centre by the difference) and falls back to a simulation, cached in memory, when
the request lies outside the table (cryo 5-6 probes, spacings outside 10-25 mm, another schedule,
isotherm or field strength; seconds to minutes once, then cached). The table holds cryo 1-4 probes
(2 mm voxels, 10-8-10 min, -40/-30/-20 C, perfused liver) and IRE 2-6 electrodes (1 mm voxels,
1500 V/cm capped at 3000 V), each at 10/15/20/25 mm spacing. ``confluent`` False marks arrays
whose lethal zones do not join (the extents then span untreated gaps). Regenerate after changing
the physics or its data (rows are merged into the file as they come)::

    python -m openir.physics.array_table --write              # ~40 min on 2 busy cores
    python -m openir.physics.array_table --write --only cryo  # one modality; the other's rows are kept

>>> from openir.physics.array_table import array_zone_dimensions
>>> d = array_zone_dimensions("cryo", 2, 15.0)
>>> d.across1_mm > d.across2_mm > 0
True
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openir.core.errors import InputError

from .arrays import ArrayDims, ArrayModality, layout_tips, load_array_data
from .cryo_array import CryoOptions, cryo_array_zone
from .ire import IREOptions, ire_array_zone

TABLE_JSON = Path(__file__).with_name("data") / "array_zone_table.json"
TABLE_SPACINGS_MM = (10.0, 15.0, 20.0, 25.0)
TABLE_PROBES = {"cryo": (1, 2, 3, 4, 5, 6), "ire": (2, 3, 4, 5, 6)}
CRYO_TABLE_ISOTHERMS_C = (-40.0, -30.0, -20.0)
TABLE_CRYO_LENGTH_MM = 30.0
TABLE_IRE_EXPOSURE_MM = 20.0
TABLE_IRE_FIELDS_V_CM = (1500.0,)
TABLE_CRYO_GRID_MM = 2.0
TABLE_IRE_GRID_MM = 1.0


class ArraySetting(BaseModel):
    """What sets an array's zone besides its geometry (hashable, for caching)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    isotherm_c: float | None = Field(None, description="cryo lethal isotherm (default -40 C)")
    schedule_min: tuple[float, ...] | None = Field(None, description="cryo freeze/thaw minutes (default 10-8-10)")
    field_v_per_cm: float | None = Field(None, gt=0, description="IRE voltage / distance (default 1500 V/cm)")


def _defaults(modality: str, setting: ArraySetting | None) -> ArraySetting:
    data = load_array_data()
    s = setting or ArraySetting()
    if modality == "cryo":
        sched = s.schedule_min or tuple(data.cryo.default_schedule_min.value)
        iso = s.isotherm_c if s.isotherm_c is not None else data.cryo.planning_isotherm(sched).value
        return ArraySetting(isotherm_c=iso, schedule_min=sched)
    return ArraySetting(field_v_per_cm=s.field_v_per_cm or data.ire.field_v_per_cm.value)


def _key(modality: str, s: ArraySetting) -> str:
    if modality == "cryo":
        return f"cryo|{s.isotherm_c:g}|{'-'.join(f'{m:g}' for m in s.schedule_min or ())}"
    return f"ire|{s.field_v_per_cm:g}"


@lru_cache(maxsize=1)
def _table() -> dict:
    if not TABLE_JSON.exists():
        return {"entries": {}}
    return json.loads(TABLE_JSON.read_text(encoding="utf-8"))


def array_zone_dimensions(
    modality: ArrayModality,
    n_probes: int,
    spacing_mm: float,
    *,
    active_length_mm: float | None = None,
    exposure_mm: float | None = None,
    setting: ArraySetting | None = None,
) -> ArrayDims:
    """Zone dimensions of ``n_probes`` parallel probes in the canonical layout (arrays.canonical_layout).

    ``active_length_mm`` (cryo) or ``exposure_mm`` (IRE) default to the table's 30 / 20 mm. Table
    answers are microseconds; a request outside the table is simulated once (seconds) and cached.
    """
    if modality not in ("cryo", "ire"):
        raise InputError(f"array zones exist for cryo and ire, not {modality!r}", field="modality")
    if not spacing_mm > 0:
        raise InputError(f"probe spacing must be > 0 mm, got {spacing_mm}", field="spacing_mm")
    if modality == "ire" and n_probes < 2:
        raise InputError("IRE needs at least two electrodes", field="n_probes")
    length = active_length_mm if modality == "cryo" else exposure_mm
    base_len = TABLE_CRYO_LENGTH_MM if modality == "cryo" else TABLE_IRE_EXPOSURE_MM
    if length is None:
        length = base_len
    if not length > 0:
        raise InputError(f"active length / exposure must be > 0 mm, got {length}", field="active_length_mm")
    s = _defaults(modality, setting)
    return _lookup(modality, int(n_probes), float(spacing_mm), float(length), s)


@lru_cache(maxsize=4096)
def _lookup(modality: str, n: int, spacing: float, length: float, s: ArraySetting) -> ArrayDims:
    base_len = TABLE_CRYO_LENGTH_MM if modality == "cryo" else TABLE_IRE_EXPOSURE_MM
    rows = _table()["entries"].get(_key(modality, s), {}).get(str(n)) or {}
    sp = np.array(sorted(float(x) for x in rows))
    if sp.size and (n == 1 or sp[0] - 1e-9 <= spacing <= sp[-1] + 1e-9) and abs(length - base_len) <= 15.0:
        keys = {float(x): x for x in rows}
        vals = np.array([[rows[keys[x]][k] for k in ("along_mm", "across1_mm", "across2_mm", "centre_offset_mm", "volume_ml")]
                         for x in sp])
        v = np.array([np.interp(spacing, sp, vals[:, c]) for c in range(5)])
        lo = int(np.clip(np.searchsorted(sp, spacing, side="right") - 1, 0, len(sp) - 1))
        hi = min(lo + 1, len(sp) - 1) if spacing > sp[lo] + 1e-9 else lo
        confluent = all(rows[keys[sp[i]]].get("confluent", True) for i in {lo, hi})
        dl = length - base_len
        along = v[0] + dl
        vol = v[4] * along / v[0] if v[0] > 0 else 0.0
        return ArrayDims(along_mm=float(along), across1_mm=float(v[1]), across2_mm=float(v[2]),
                         centre_offset_mm=float(v[3] + dl / 2), volume_ml=float(vol), confluent=confluent,
                         source="table")
    return _simulate(modality, n, spacing, length, s)


def _simulate(modality: str, n: int, spacing: float, length: float, s: ArraySetting, grid_mm: float | None = None) -> ArrayDims:
    tips, dirs = layout_tips(n, spacing)
    if modality == "cryo":
        z = cryo_array_zone(tips, dirs, active_length_mm=length, freeze_schedule=list(s.schedule_min or ()),
                            isotherm_c=s.isotherm_c, options=CryoOptions(spacing_mm=grid_mm or TABLE_CRYO_GRID_MM))
    else:
        z = ire_array_zone(tips, dirs, exposure_mm=length, field_v_per_cm=s.field_v_per_cm,
                           options=IREOptions(spacing_mm=grid_mm or TABLE_IRE_GRID_MM, margin_mm=15.0, heating=False))
    return z.dims


def _cryo_all_isotherms(n: int, spacing: float, schedule: tuple[float, ...]) -> dict[float, ArrayDims]:
    """One simulation, the dims at each tabulated isotherm."""
    from .arrays import measure_dims

    tips, dirs = layout_tips(n, spacing)
    z = cryo_array_zone(tips, dirs, active_length_mm=TABLE_CRYO_LENGTH_MM, freeze_schedule=list(schedule),
                        isotherm_c=-40.0, options=CryoOptions(spacing_mm=TABLE_CRYO_GRID_MM))
    assert z.temperature_c is not None and z.grid is not None
    return {iso: measure_dims(z.temperature_c <= iso, z.grid, tips, dirs[0]) for iso in CRYO_TABLE_ISOTHERMS_C}


def build_table(modalities: tuple[str, ...] = ("cryo", "ire"), verbose: bool = True, save=None,
                probes: tuple[int, ...] | None = None) -> dict:
    """Compute the table (see the module docstring for the command that writes it).

    ``save(entries)`` is called after each computed row (so a long run keeps what it has);
    ``probes`` restricts the probe counts computed.
    """
    data = load_array_data()
    entries: dict[str, dict] = {}
    counts = {m: tuple(probes) if probes else TABLE_PROBES[m] for m in ("cryo", "ire")}
    t0 = time.perf_counter()
    if "cryo" in modalities:
        sched = tuple(float(m) for m in data.cryo.default_schedule_min.value)
        for n in counts["cryo"]:
            single = None
            for sp in TABLE_SPACINGS_MM:
                if n == 1:  # one probe: the spacing does not matter
                    single = single or _cryo_all_isotherms(n, sp, sched)
                res = single if n == 1 else _cryo_all_isotherms(n, sp, sched)
                for iso, d in res.items():
                    key = _key("cryo", ArraySetting(isotherm_c=iso, schedule_min=sched))
                    entries.setdefault(key, {}).setdefault(str(n), {})[f"{sp:g}"] = d.model_dump(exclude={"source"})
                if save is not None:
                    save(entries)
                if verbose:
                    print(f"cryo n={n} spacing={sp:g}: -40 C {res[-40.0].along_mm:.1f} x {res[-40.0].across1_mm:.1f} x "
                          f"{res[-40.0].across2_mm:.1f} mm  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "ire" in modalities:
        for fv in TABLE_IRE_FIELDS_V_CM:
            key = _key("ire", ArraySetting(field_v_per_cm=fv))
            for n in counts["ire"]:
                for sp in TABLE_SPACINGS_MM:
                    d = _simulate("ire", n, sp, TABLE_IRE_EXPOSURE_MM, ArraySetting(field_v_per_cm=fv))
                    entries.setdefault(key, {}).setdefault(str(n), {})[f"{sp:g}"] = d.model_dump(exclude={"source"})
                    if save is not None:
                        save(entries)
                    if verbose:
                        print(f"ire {fv:g} V/cm n={n} spacing={sp:g}: {d.along_mm:.1f} x {d.across1_mm:.1f} x "
                              f"{d.across2_mm:.1f} mm  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {**build_meta(), "entries": entries}


def _merge_into_file(entries: dict) -> None:
    """Merge computed rows into the packaged table (atomic replace; other rows kept)."""
    old = json.loads(TABLE_JSON.read_text(encoding="utf-8")) if TABLE_JSON.exists() else {}
    merged = old.get("entries", {})
    for key, by_n in entries.items():
        for n, by_sp in by_n.items():
            merged.setdefault(key, {}).setdefault(n, {}).update(by_sp)
    meta = build_meta()
    meta["entries"] = merged
    tmp = TABLE_JSON.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(TABLE_JSON)
    _table.cache_clear()
    _lookup.cache_clear()


def build_meta() -> dict:
    return {
        "about": "lethal-zone dimensions of canonical arrays (openir.physics.arrays.canonical_layout); "
                 "regenerate with: python -m openir.physics.array_table --write",
        "cryo_active_length_mm": TABLE_CRYO_LENGTH_MM, "ire_exposure_mm": TABLE_IRE_EXPOSURE_MM,
        "cryo_grid_mm": TABLE_CRYO_GRID_MM, "ire_grid_mm": TABLE_IRE_GRID_MM,
        "spacings_mm": list(TABLE_SPACINGS_MM),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="compute the array zone table")
    p.add_argument("--write", action="store_true", help=f"merge the rows into {TABLE_JSON.name} as they come (else print only)")
    p.add_argument("--only", choices=["cryo", "ire"], default=None)
    p.add_argument("--probes", type=int, nargs="*", default=None, help="probe counts to compute (default: all)")
    a = p.parse_args(argv)
    mods = (a.only,) if a.only else ("cryo", "ire")
    build_table(mods, save=_merge_into_file if a.write else None, probes=tuple(a.probes) if a.probes else None)
    if a.write:
        print(f"written {TABLE_JSON}")


if __name__ == "__main__":
    main()
