"""Ice-ball growth of a whole cryoprobe array with the enthalpy (phase-change) Pennes solver.

All probes freeze together: each probe's cooled segment is a set of voxels held at the probe
surface temperature while its schedule says *freeze* and released (tissue again, passive thaw)
while it says *thaw*; latent heat, frozen conductivity and perfusion shutdown in frozen tissue come
from the solver (bioheat.py, tissues.yaml). The lethal zone is where the lowest temperature reached
is at or below the lethal isotherm (-40 / -30 / -20 C, sourced in data/arrays.yaml); the visible ice
ball (0 C) is reported beside it, so the rule "the -40 C isotherm lies about 1 cm inside the ice
edge" (PMC4850244) can be checked.

>>> from openir.physics.cryo_array import cryo_array_zone, CryoOptions
>>> z = cryo_array_zone([(0, 0, 0), (15, 0, 0)], [(0, 0, 1)], active_length_mm=20,
...                     freeze_schedule=[4], options=CryoOptions(spacing_mm=2.0))
>>> z.n_probes, z.dims.across1_mm > 15
(2, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import Sourced
from openir.core.errors import InputError
from openir.core.volume import Grid

from .arrays import (
    ArrayDims,
    ArrayZone,
    ZoneGrowthPoint,
    box_grid,
    load_array_data,
    mean_axis,
    measure_dims,
    probe_arrays,
)
from .bioheat import HeldSource, solve_pennes
from .simulate import homogeneous_medium
from .sources import cryoprobe_mask
from .tissues import NonNegative, Positive, TissueProps, TissueTable, load_tissue_table


class FreezeStep(BaseModel):
    """One phase of a freeze-thaw protocol."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    phase: Literal["freeze", "thaw"]
    duration_s: float = Field(gt=0)


def schedule_from_minutes(minutes: Sequence[float]) -> tuple[FreezeStep, ...]:
    """Alternating freeze/thaw phases from minutes, e.g. ``[10, 8, 10]`` = freeze-thaw-freeze."""
    if not len(minutes):
        raise InputError("a freeze schedule needs at least one freeze phase", field="freeze_schedule")
    out = []
    for n, m in enumerate(minutes):
        if not float(m) > 0:
            raise InputError(f"freeze schedule phase {n + 1} must last > 0 min, got {m}", field="freeze_schedule")
        out.append(FreezeStep(phase="freeze" if n % 2 == 0 else "thaw", duration_s=60.0 * float(m)))
    return tuple(out)


class CryoOptions(BaseModel):
    """Numerics and probe physics of a cryo array simulation (defaults from data/arrays.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spacing_mm: float = Field(1.0, gt=0.2, le=4.0, description="voxel size when no grid is given")
    margin_mm: float = Field(30.0, gt=5, description="grid margin around the probes when no grid is given")
    probe_temperature_c: float | None = Field(None, lt=-20, description="probe surface temperature while freezing")
    probe_model: Literal["fixed", "power"] | None = Field(
        None, description="'fixed': probe surface held at probe_temperature_c; 'power': at most probe_power_w W "
                          "per probe, surface as cold as that allows down to the gas temperature (default: "
                          "arrays.yaml cryo.probe_model; 'fixed' whenever probe_temperature_c is given)")
    probe_power_w: float | None = Field(None, gt=0, description="cooling power per probe (power model)")
    probe_radius_mm: float | None = Field(None, gt=0)
    perfusion_scale: float = Field(1.0, ge=0, description="0 = unperfused (phantom, ex vivo)")
    initial_temperature_c: float | None = Field(None, description="baseline temperature (default: arterial)")
    snapshot_every_s: float = Field(120.0, gt=0)
    medium: Literal["tissue", "agar"] = Field(
        "tissue", description="'agar': the water gel of the validation phantoms (arrays.yaml cryo.phantom), "
                              "unperfused; 'tissue': ``tissue`` from tissues.yaml")


def _as_schedule(freeze_schedule: Sequence[FreezeStep] | Sequence[float] | None) -> tuple[FreezeStep, ...]:
    if freeze_schedule is None:
        return schedule_from_minutes(load_array_data().cryo.default_schedule_min.value)
    items = list(freeze_schedule)
    if items and all(isinstance(s, FreezeStep) for s in items):
        if items[0].phase != "freeze":  # type: ignore[union-attr]
            raise InputError("a freeze schedule must start with a freeze", field="freeze_schedule")
        return tuple(items)  # type: ignore[arg-type]
    return schedule_from_minutes([float(s) for s in items])  # type: ignore[arg-type]


def isotherm_source(isotherm_c: float) -> str:
    """The source of a lethal isotherm, or a warning that it is not one of the sourced ones."""
    data = load_array_data().cryo
    for s in [*data.planning_isotherms, *data.lethal_isotherms_c]:
        if abs(s.value - isotherm_c) < 1e-9:
            return s.source
    return f"{isotherm_c:g} C is not a sourced lethal isotherm (sourced: -40, -30, -20 C): user choice"


def cryo_array_zone(
    tips_lps: Sequence[Sequence[float]],
    directions_lps: Sequence[Sequence[float]],
    *,
    grid: Grid | None = None,
    active_length_mm: float | None = None,
    freeze_schedule: Sequence[FreezeStep] | Sequence[float] | None = None,
    isotherm_c: float | None = None,
    tissue: str = "liver",
    options: CryoOptions | None = None,
) -> ArrayZone:
    """Lethal zone of cryoprobes freezing together (ice-ball growth with phase change).

    ``freeze_schedule``: FreezeSteps or alternating freeze/thaw minutes (default 10-8-10);
    ``isotherm_c``: lethal isotherm (default: the planning isotherm of the schedule's number of
    freezes, arrays.yaml ``planning_isotherms``; -40 C when not listed). Returns the zone mask on ``grid`` (a box
    around the probes when None), its dimensions, the visible ice ball (0 C) and the growth curve.
    """
    t0 = time.perf_counter()
    data = load_array_data().cryo
    opt = options or CryoOptions()
    tips, dirs = probe_arrays(tips_lps, directions_lps)
    axis = mean_axis(dirs)
    length = float(active_length_mm if active_length_mm is not None else data.active_length_mm.value)
    if not length > 0:
        raise InputError(f"active length must be > 0 mm, got {length}", field="active_length_mm")
    sched = _as_schedule(freeze_schedule)
    n_freezes = sum(1 for s in sched if s.phase == "freeze")
    iso = float(isotherm_c if isotherm_c is not None else data.planning_isotherm([1.0] * (2 * n_freezes - 1)).value)
    if not -100.0 <= iso < 0.0:
        raise InputError(f"lethal isotherm must lie between -100 and 0 C, got {iso}", field="isotherm_c")
    model = opt.probe_model or ("fixed" if opt.probe_temperature_c is not None else
                                (data.probe_model.value if data.probe_model is not None else "fixed"))
    power: float | None = None
    if model == "power" and opt.probe_temperature_c is not None:
        raise InputError("probe_temperature_c is the fixed model's; the power model's probe runs as cold as its "
                         "power allows (give probe_power_w)", field="probe_temperature_c")
    if model == "power":
        if data.probe_gas_temperature_c is None or (opt.probe_power_w is None and data.probe_cooling_power_w is None):
            raise InputError("the power-limited probe needs cryo.probe_cooling_power_w and cryo.probe_gas_temperature_c "
                             "in arrays.yaml", field="probe_model")
        power = float(opt.probe_power_w if opt.probe_power_w is not None else data.probe_cooling_power_w.value)  # type: ignore[union-attr]
        probe_t = data.probe_gas_temperature_c.value
    else:
        probe_t = opt.probe_temperature_c if opt.probe_temperature_c is not None else data.probe_temperature_c.value
    radius = opt.probe_radius_mm if opt.probe_radius_mm is not None else data.probe_radius_mm.value
    if grid is None:
        ends = np.concatenate([tips, tips - length * dirs])
        grid = box_grid(ends, opt.margin_mm, opt.spacing_mm)
    table = load_tissue_table()
    if opt.medium == "agar":
        table = gel_table(table)
        tissue = "agar"
    medium = homogeneous_medium(grid, tissue, table)
    if opt.perfusion_scale != 1.0:
        medium.perfusion = medium.perfusion * opt.perfusion_scale
    if opt.initial_temperature_c is not None:
        medium.initial_temperature_c = float(opt.initial_temperature_c)
    spans, t = [], 0.0
    for step in sched:
        spans.append((t, t + step.duration_s, 1.0 if step.phase == "freeze" else 0.0))
        t += step.duration_s
    duration = t
    held = []
    for n, (tip, d) in enumerate(zip(tips, dirs, strict=True)):
        mask = cryoprobe_mask(grid, tip, d, freeze_length_mm=length, probe_radius_mm=radius)
        held.append(HeldSource(mask, float(probe_t), spans, name=f"cryoprobe {n + 1}", max_power_w=power))
    snaps = list(np.arange(opt.snapshot_every_s, duration, opt.snapshot_every_s)) + [duration]
    sol = solve_pennes(medium, duration, held_sources=held, snapshot_times_s=snaps, table=table)
    tmin = sol.min_temperature_c
    lethal = tmin <= iso
    ice_final = sol.temperature_c[-1] <= 0.0
    ice_max = tmin <= 0.0
    growth, running = [], None
    for ts, temp in zip(sol.times_s, sol.temperature_c, strict=True):
        running = temp if running is None else np.minimum(running, temp)
        growth.append(ZoneGrowthPoint(time_s=ts, volume_ml=float((running <= iso).sum()) * grid.voxel_volume_mm3 / 1000,
                                      outer_volume_ml=float((temp <= 0.0).sum()) * grid.voxel_volume_mm3 / 1000))
    dims = measure_dims(lethal, grid, tips, axis)
    ice_dims = measure_dims(ice_max, grid, tips, axis)
    if power is not None:
        log = sol.meta.get("probe_temperature_log", {})
        warmest = max((t for rows in log.values() for _, t, _ in rows[len(rows) // 2:]), default=float(probe_t))
        probe_note = (f"each probe extracts at most {power:g} W over {length:g} mm, surface down to {probe_t:g} C "
                      f"(warmest probe surface over the second half of its freezes: {warmest:.0f} C; "
                      f"{data.probe_cooling_power_w.source if opt.probe_power_w is None else 'user value'})")  # type: ignore[union-attr]
    else:
        probe_note = f"probe surface {probe_t:g} C held over {length:g} mm ({data.probe_temperature_c.source})"
    notes = [
        probe_note,
        f"thaw: {data.thaw.source}",
    ]
    if opt.perfusion_scale != 1.0:
        notes.append(f"perfusion scaled by {opt.perfusion_scale:g}")
    if _touches_border(ice_max):
        notes.append("the ice ball reaches the grid border: enlarge the grid (zone truncated)")
    if len(tips) > 1 and dims.volume_ml > 0:
        notes.append(f"ice at the end of the run: {float(ice_final.sum()) * grid.voxel_volume_mm3 / 1000:.1f} ml")
    return ArrayZone(
        modality="cryo", n_probes=len(tips), dims=dims, criterion=f"lowest temperature <= {iso:g} C",
        threshold=iso, threshold_source=isotherm_source(iso), outer_dims=ice_dims, growth=growth,
        min_temperature_c=float(tmin.min()), max_temperature_c=float(sol.max_temperature_c.max()),
        duration_s=duration, spacing_mm=float(grid.spacing.min()), runtime_s=time.perf_counter() - t0,
        notes=notes, mask=lethal, grid=grid, temperature_c=tmin,
    )


def gel_table(table: TissueTable) -> TissueTable:
    """The tissue table with the validation gel (arrays.yaml ``cryo.phantom``) as tissue 'agar' and
    its freezing properties (water: sharp front at 0 C, water's latent heat, ice conductivity)."""
    g = load_array_data().cryo.phantom
    if g is None:
        raise InputError("arrays.yaml has no cryo.phantom section (gel properties)", field="cryo.phantom")
    def pos(x: Sourced) -> Positive:
        return Positive(value=x.value, source=x.source)

    agar = TissueProps(
        density_kg_m3=Positive(value=1000.0, source="water gel, 1000 kg/m3"),
        heat_capacity_j_kg_k=Positive(value=g.heat_capacity_j_m3_k.value / 1000.0, source=g.heat_capacity_j_m3_k.source),
        conductivity_w_m_k=pos(g.conductivity_w_m_k),
        perfusion_1_s=NonNegative(value=0.0, source="gel phantom: no perfusion"),
    )
    freezing = table.freezing.model_copy(update={
        "solidus_c": g.solidus_c, "liquidus_c": g.liquidus_c,
        "latent_heat_j_m3": NonNegative(value=g.latent_heat_j_m3.value, source=g.latent_heat_j_m3.source),
        "frozen_conductivity_w_m_k": pos(g.frozen_conductivity_w_m_k),
        "frozen_heat_capacity_j_m3_k": pos(g.frozen_heat_capacity_j_m3_k),
    })
    return table.model_copy(update={"tissues": {**table.tissues, "agar": agar}, "freezing": freezing})


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
                or mask[:, :, 0].any() or mask[:, :, -1].any())


__all__ = ["ArrayDims", "CryoOptions", "FreezeStep", "cryo_array_zone", "gel_table", "isotherm_source",
           "schedule_from_minutes"]
