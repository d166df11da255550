"""From a simulation request (probes + optional label map) to temperature, dose and zone over time.

Builds the region (a cube around the probes, cut from the case's label map or homogeneous liver),
the per-voxel materials and vessel heat sinks, each probe's source from its device preset, runs the
solver and measures the lethal zone of the first probe at each snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from openir.core.crop import crop, world_box
from openir.core.enums import SIMULATED_MODALITIES
from openir.core.errors import InputError
from openir.core.labels import LabelMap, normalise_label_name
from openir.core.resample import isotropic_grid, resample
from openir.core.volume import Grid, make_affine

from .arrays import load_array_data, mean_axis, measure_dims
from .bioheat import BioheatSolution, HeatSource, HeldSource, ThermalMedium, solve_pennes
from .models import (
    Activation,
    ArrayZoneSummary,
    Criterion,
    ProbeModel,
    ProbeSource,
    SimulationRequest,
    SimulationResult,
    ZoneSnapshot,
)
from .presets import PresetTable, find_device, load_presets, source_parameters
from .sources import cryoprobe_mask, laser_pattern, microwave_pattern, rf_pattern
from .tissues import TissueTable, load_tissue_table, tissue_index_map, vessel_for_label
from .vessels import vessel_diameter_mm, wall_heat_transfer
from .zone import ZoneAxes, zone_axes


@dataclass
class SimulationFields:
    """The simulated fields on ``grid`` (arrays ``[k, j, i]``), for writing maps."""

    grid: Grid
    solution: BioheatSolution | None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def cube_grid(centre_lps: np.ndarray, box_mm: float, spacing_mm: float) -> Grid:
    """Axis-aligned cube of ``box_mm`` centred on ``centre_lps`` with ``spacing_mm`` voxels."""
    n = int(round(box_mm / spacing_mm)) | 1  # odd: a voxel centre on the centre point
    origin = np.asarray(centre_lps, float) - spacing_mm * (n // 2)
    return Grid((n, n, n), make_affine([spacing_mm] * 3, origin))


def homogeneous_medium(grid: Grid, tissue: str = "liver", table: TissueTable | None = None) -> ThermalMedium:
    """Uniform tissue on ``grid`` (used for calibration and when no label map is given)."""
    t = table or load_tissue_table()
    props = t.tissue(tissue)
    shape = grid.shape
    return ThermalMedium(
        heat_capacity_vol=np.full(shape, props.volumetric_heat_capacity),
        conductivity=np.full(shape, props.conductivity_w_m_k.value),
        perfusion=np.full(shape, t.perfusion_w_m3_k(tissue)),
        spacing_mm=tuple(float(s) for s in grid.spacing),  # type: ignore[arg-type]
        initial_temperature_c=t.blood.arterial_temperature_c.value,
    )


def labelled_medium(labels: LabelMap, table: TissueTable | None = None, heated_length_mm: float = 40.0) -> tuple[ThermalMedium, list[str]]:
    """Materials from a label map; large-vessel labels become convective heat sinks."""
    t = table or load_tissue_table()
    idx, names, vessels = tissue_index_map(labels, t)
    cvol = np.array([t.tissue(n).volumetric_heat_capacity for n in names])[idx]
    k = np.array([t.tissue(n).conductivity_w_m_k.value for n in names])[idx]
    w = np.array([t.perfusion_w_m3_k(n) for n in names])[idx]
    held = np.zeros(labels.shape, bool)
    rwall = np.zeros(labels.shape)
    notes = []
    spacing = tuple(float(s) for s in labels.spacing)
    for lname, mask in vessels.items():
        if not mask.any():
            continue
        flow = t.vessels[vessel_for_label(lname, t)]  # type: ignore[index]
        dia = max(vessel_diameter_mm(mask, spacing), 2 * min(spacing))  # type: ignore[arg-type]
        h = wall_heat_transfer(dia, flow.velocity_m_s, heated_length_mm=heated_length_mm, table=t)
        held |= mask
        rwall[mask] = 1.0 / h
        notes.append(f"vessel {lname}: diameter {dia:.1f} mm, {flow.velocity_m_s:g} m/s, h = {h:.0f} W/m2/K")
    medium = ThermalMedium(cvol, k, w, spacing, held=held if held.any() else None,  # type: ignore[arg-type]
                           held_temperature_c=t.blood.arterial_temperature_c.value, wall_resistance=rwall,
                           initial_temperature_c=t.blood.arterial_temperature_c.value)
    return medium, notes


def probe_schedule(p: ProbeSource, default_power: float | None, default_time: float | None) -> list[tuple[float, float, float]]:
    if p.schedule:
        out, t0 = [], 0.0
        for step in p.schedule:
            out.append((t0, t0 + step.duration_s, step.power_w))
            t0 += step.duration_s
        return out
    power = p.power_w if p.power_w is not None else default_power
    dur = p.time_s if p.time_s is not None else default_time
    if power is None or dur is None:
        raise InputError(f"probe {p.device!r} needs power_w and time_s (or a schedule)", field="probes")
    return [(0.0, float(dur), float(power))]


_MODALITY_ALIASES = {"rf": "radiofrequency", "rfa": "radiofrequency", "mwa": "microwave", "cryoablation": "cryo",
                     "irreversible_electroporation": "ire", "lita": "laser"}


def probe_modality(p: ProbeSource) -> str | None:
    """The probe's modality: ``kind`` if set, else the plan's ``modality`` (normalised)."""
    if p.kind is not None:
        return p.kind
    if p.modality is None:
        return None
    m = p.modality.strip().lower().replace("-", "_").replace(" ", "_")
    return _MODALITY_ALIASES.get(m, m)


def cryo_schedule(p: ProbeSource) -> tuple[list[tuple[float, float, float]], str | None]:
    """Freeze (1) / thaw (0) spans of a cryoprobe, and a note when the default protocol was used.

    A ``schedule`` is used as given (power_w > 0 = freeze). A plan's probe (it has a ``group``)
    without one, or any probe without ``time_s``, gets the sourced default freeze-thaw-freeze
    protocol of data/arrays.yaml, which the planner's array zones assume; a request with only
    ``time_s`` is one freeze of that length.
    """
    if p.schedule:
        out, t0 = [], 0.0
        for step in p.schedule:
            out.append((t0, t0 + step.duration_s, 1.0 if step.power_w > 0 else 0.0))
            t0 += step.duration_s
        return out, None
    if p.group is None and p.time_s is not None:
        return [(0.0, float(p.time_s), 1.0)], None
    from .cryo_array import schedule_from_minutes

    default = load_array_data().cryo.default_schedule_min
    out, t0 = [], 0.0
    for step in schedule_from_minutes(default.value):
        out.append((t0, t0 + step.duration_s, 1.0 if step.phase == "freeze" else 0.0))
        t0 += step.duration_s
    minutes = "-".join(f"{m:g}" for m in default.value)
    note = (f"no freeze-thaw schedule in the plan: the default {minutes} min freeze-thaw-freeze protocol simulated "
            f"({default.source})")
    if p.time_s is not None:
        note += f"; the device row's {p.time_s:g} s is not used as a single freeze"
    return out, note


def activations(probes: list[ProbeSource]) -> list[Activation]:
    """Probes switched on together: one plan group at one array position (pull-backs come after the
    positions before them); a request without groups or positions is one activation of all probes."""
    if all(p.group is None and p.array_position is None for p in probes):
        return [Activation(probes=list(range(1, len(probes) + 1)))]
    first_seen: dict[int | None, int] = {}
    keyed: dict[tuple[int | None, int], list[int]] = {}
    for n, p in enumerate(probes):
        first_seen.setdefault(p.group, n)
        keyed.setdefault((p.group, p.array_position or 1), []).append(n + 1)
    order = sorted(keyed, key=lambda k: (first_seen[k[0]], k[1]))
    return [Activation(group=g, array_position=pos, probes=keyed[(g, pos)]) for g, pos in order]


def build_sources(
    probes: list[ProbeSource], grid: Grid, presets: PresetTable | None = None
) -> tuple[list[HeatSource], list[HeldSource], list[str], float]:
    """Heat sources and cryoprobe held regions for all probes; notes; the last schedule end (s)."""
    heat, held, notes, end, _ = _build_sources(probes, grid, presets)
    return heat, held, notes, end


def _probe_schedule(p: ProbeSource, dev, notes: list[str] | None = None) -> list[tuple[float, float, float]]:
    if dev.kind != "cryo":
        return probe_schedule(p, dev.default_power_w, dev.default_time_s)
    sched, note = cryo_schedule(p)
    if note and notes is not None and note not in notes:
        notes.append(note)
    return sched


def _build_sources(
    probes: list[ProbeSource], grid: Grid, presets: PresetTable | None = None, offsets_s: list[float] | None = None,
) -> tuple[list[HeatSource], list[HeldSource], list[str], float, list[ProbeModel]]:
    """Sources of every probe; ``offsets_s`` delays each probe's schedule (sequential activations)."""
    heat: list[HeatSource] = []
    held: list[HeldSource] = []
    notes: list[str] = []
    models: list[ProbeModel] = []
    said: dict[tuple[str, str], list[int]] = {}
    end = 0.0
    for n, p in enumerate(probes):
        kind = probe_modality(p)
        key, dev = find_device(p.device, presets, kind)
        if kind is not None and dev.kind != kind:
            raise InputError(f"probe {n + 1}: device {p.device!r} is a {dev.kind} device, not {kind}", field="probes")
        params, pnotes = source_parameters(dev, p.power_w, p.time_s)
        calibrated = bool(dev.settings)
        if key.startswith("generic_") and normalise_label_name(p.device) != key:
            pnotes.insert(0, f"no source model for device {p.device!r}: simulated with the generic {dev.kind} model")
        for x in pnotes:  # one line per note and model, naming every probe it applies to
            said.setdefault((key, x), []).append(n + 1)
        models.append(ProbeModel(probe=n + 1, device=p.device, modality=dev.kind, model=key, calibrated=calibrated,
                                 note="; ".join(pnotes)))
        if p.source_scale is not None:
            params["absorbed_fraction"] = p.source_scale
        if dev.kind == "radiofrequency" and p.exposure_mm is not None:
            params["exposed_length_mm"] = p.exposure_mm
        off = offsets_s[n] if offsets_s is not None else 0.0
        sched = [(a + off, b + off, lev) for a, b, lev in _probe_schedule(p, dev, notes)]
        end = max(end, max(b for _, b, _ in sched))
        tip, d = p.tip_lps, p.direction_lps
        if dev.kind == "microwave":
            pat = microwave_pattern(grid, tip, d, feed_offset_mm=params["feed_offset_mm"], sigma_radial_mm=params["sigma_radial_mm"],
                                    sigma_axial_mm=params["sigma_axial_mm"], absorbed_fraction=params["absorbed_fraction"])
        elif dev.kind == "radiofrequency":
            pat = rf_pattern(grid, tip, d, exposed_length_mm=params["exposed_length_mm"],
                             electrode_radius_mm=params["electrode_radius_mm"], absorbed_fraction=params["absorbed_fraction"])
        elif dev.kind == "laser":
            pat = laser_pattern(grid, tip, d, diffuser_length_mm=params["diffuser_length_mm"], mu_eff_per_mm=params["mu_eff_per_mm"],
                                fibre_radius_mm=params["fibre_radius_mm"], absorbed_fraction=params["absorbed_fraction"])
        else:
            mask = cryoprobe_mask(grid, tip, d, freeze_length_mm=params["freeze_length_mm"], probe_radius_mm=params["probe_radius_mm"])
            held.append(HeldSource(mask, params["temperature_c"], [(a, b, 1.0 if lev > 0 else 0.0) for a, b, lev in sched], name=key))
            continue
        heat.append(HeatSource(pat, sched, name=key))
    notes[:0] = [f"probe{'s' if len(ns) > 1 else ''} {', '.join(map(str, ns))} ({key}): {x}"
                 for (key, x), ns in said.items()]
    return heat, held, notes, end, models


def _zone(field: np.ndarray, grid: Grid, crit: Criterion, thr: float, p: ProbeSource) -> ZoneAxes:
    return zone_axes(field, grid, thr, p.tip_lps, p.direction_lps, below=crit == "isotherm")


def criterion_threshold(crit: Criterion, table: TissueTable | None = None) -> tuple[float, str]:
    t = table or load_tissue_table()
    if crit == "cem43":
        return t.thermal_dose.lethal_cem43_min.value, t.thermal_dose.lethal_cem43_min.source
    if crit == "arrhenius":
        return t.arrhenius.lethal_damage.value, t.arrhenius.lethal_damage.source
    return t.freezing.lethal_isotherm_c.value, t.freezing.lethal_isotherm_c.source


def simulate(
    request: SimulationRequest,
    labels: LabelMap | None = None,
    *,
    progress: Callable[[float, float], None] | None = None,
    table: TissueTable | None = None,
) -> tuple[SimulationResult, SimulationFields]:
    """Run the request, all probes together; ``labels`` is the case's label map (None = homogeneous liver).

    Microwave, RF, laser and cryo probes share one bioheat run (cryoprobes freeze as one array);
    IRE electrodes are simulated as an electrode array (ire.py: field, lethal zone, Joule heating).
    A device without a source model of its own runs its modality's generic model (said in
    ``probe_models`` and ``notes``).
    """
    mods = [probe_modality(p) for p in request.probes]
    if "chemical" in mods:
        n = mods.index("chemical") + 1
        raise InputError(f"probe {n} ({request.probes[n - 1].device}): chemical ablation has no physics model; "
                         "nothing simulated", field="probes")
    unknown = sorted({m for m in mods if m is not None and m not in SIMULATED_MODALITIES})
    if unknown:
        raise InputError(f"unknown modality {unknown[0]!r} (known: {', '.join(sorted(SIMULATED_MODALITIES))})", field="probes")
    if "ire" in mods:
        if any(m != "ire" for m in mods):
            raise InputError("IRE electrodes and thermal probes in one simulation: simulate them separately "
                             "(e.g. one plan per tumour)", field="probes")
        return _simulate_ire(request, labels)
    t = table or load_tissue_table()
    presets = load_presets(request.calibration) if request.calibration else load_presets()
    acts, offsets, seq_notes = _sequence(request.probes, presets)
    tips = np.array([p.tip_lps for p in request.probes], float)
    centre = tips.mean(axis=0) - 10.0 * np.mean([p.direction_lps for p in request.probes], axis=0)
    notes: list[str] = list(seq_notes)
    span = float(np.max(np.abs(tips - centre))) * 2.0 + 10.0
    if span > request.box_mm:  # probes of several tumours far apart: one region holding every tip
        notes.append(f"region enlarged from {request.box_mm:g} to {span:.0f} mm to hold every probe")
        request = request.model_copy(update={"box_mm": span})
    if labels is None:
        grid = cube_grid(centre, request.box_mm, request.spacing_mm)
        medium = homogeneous_medium(grid, "liver", t)
        notes.append("no label map: homogeneous liver")
    else:
        box = world_box(labels.grid, centre, request.box_mm)
        part = crop(labels, box)
        target = isotropic_grid(part.grid, request.spacing_mm)
        lab = resample(part, target)  # nearest neighbour for labels
        assert isinstance(lab, LabelMap)
        grid = lab.grid
        medium, vnotes = labelled_medium(lab, t)
        notes += vnotes
    heat, held, snotes, end, models = _build_sources(request.probes, grid, presets, offsets)
    notes += snotes
    kinds = {"cryo" if held else "heat"}
    crit: Criterion = request.criterion or ("isotherm" if held and not heat else "cem43")
    if held and heat and crit == "isotherm":
        notes.append("mixed heating and freezing probes: isotherm zone measures the ice only")
    duration = end + request.cooldown_s
    times = request.output_times_s or [duration * (i + 1) / 6 for i in range(6)]
    sol = solve_pennes(medium, duration, sources=heat, held_sources=held, snapshot_times_s=times, table=t, progress=progress)
    thr, thr_src = criterion_threshold(crit, t)
    isos = [p.isotherm_c for p in request.probes if p.isotherm_c is not None]
    if crit == "isotherm" and isos:
        from .cryo_array import isotherm_source

        thr = max(isos)  # the warmest isotherm asked for: the plan's own zone
        thr_src = isotherm_source(thr)
    p0 = request.probes[0]
    zones: list[ZoneSnapshot] = []
    coldest = None  # frozen tissue stays dead through a thaw: the isotherm zone is of the lowest temperature so far
    for i, ts in enumerate(sol.times_s):
        coldest = sol.temperature_c[i] if coldest is None else np.minimum(coldest, sol.temperature_c[i])
        field = {"cem43": sol.cem43_min[i], "arrhenius": sol.damage[i], "isotherm": coldest}[crit]
        z = _zone(field, grid, crit, thr, p0)
        zones.append(ZoneSnapshot(time_s=ts, length_mm=z.length_mm, width_mm=z.width_mm, volume_ml=z.volume_ml,
                                  max_temperature_c=float(sol.temperature_c[i].max()),
                                  min_temperature_c=float(sol.temperature_c[i].min())))
    final_field = {"cem43": sol.cem43_min[-1], "arrhenius": sol.damage[-1], "isotherm": sol.min_temperature_c}[crit]
    zf = _zone(final_field, grid, crit, thr, p0)
    if "heat" in kinds and heat:
        other = "arrhenius" if crit == "cem43" else "cem43"
        othr, _ = criterion_threshold(other, t)  # type: ignore[arg-type]
        zo = _zone(sol.damage[-1] if other == "arrhenius" else sol.cem43_min[-1], grid, other, othr, p0)  # type: ignore[arg-type]
        notes.append(f"{other} zone for comparison: {zo.length_mm:.1f} x {zo.width_mm:.1f} mm, {zo.volume_ml:.1f} ml")
    if float(sol.max_temperature_c.max()) > 100.0:
        notes.append("peak temperature exceeds 100 C: vaporisation and charring are not modelled; "
                     "only the calibrated zone boundary is meaningful near the antenna")
    lethal = final_field <= thr if crit == "isotherm" else final_field >= thr
    dirs = np.array([p.direction_lps for p in request.probes], float)
    ad = measure_dims(lethal, grid, tips, mean_axis(dirs))
    modality = ("cryo" if held and not heat else (models[0].modality if models else "microwave"))
    result = SimulationResult(
        modality=modality, probe_models=models,
        array_zone=ArrayZoneSummary(**ad.model_dump(exclude={"source"})),
        max_temperature_c=float(sol.max_temperature_c.max()),
        criterion=crit, threshold=thr, threshold_source=thr_src, zones=zones,
        final_length_mm=zf.length_mm, final_width_mm=zf.width_mm, final_volume_ml=zf.volume_ml,
        final_radii_mm=zf.radii_mm, spacing_mm=request.spacing_mm, grid_shape_kji=grid.shape,
        method=sol.method, dt_s=sol.dt_s, dt_limit_s=sol.dt_limit_s, n_steps=sol.n_steps,
        runtime_s=sol.runtime_s, notes=notes, activations=acts,
        sequence="sequential" if len(acts) > 1 else "simultaneous",
    )
    return result, SimulationFields(grid, sol)


def _sequence(probes: list[ProbeSource], presets: PresetTable) -> tuple[list[Activation], list[float], list[str]]:
    """Activations one after another: each probe's schedule offset; the activations with their spans."""
    acts = activations(probes)
    offsets = [0.0] * len(probes)
    t0 = 0.0
    for a in acts:
        ends = []
        for n in a.probes:
            p = probes[n - 1]
            _, dev = find_device(p.device, presets, probe_modality(p))
            ends.append(max(b for _, b, _ in _probe_schedule(p, dev)))
            offsets[n - 1] = t0
        a.start_s, a.end_s = t0, t0 + max(ends)
        t0 = a.end_s
    if len(acts) < 2:
        return acts, offsets, []
    spans = "; ".join(f"{_act_name(a)}: probes {', '.join(map(str, a.probes))} at {a.start_s:g}-{a.end_s:g} s"
                      for a in acts)
    return acts, offsets, [f"{len(acts)} activations simulated one after another on one grid (sequential "
                           f"ablations, not switched on together): {spans}"]


def _act_name(a: Activation) -> str:
    name = f"group {a.group}" if a.group is not None else "probes"
    return name + (f" position {a.array_position}" if a.array_position and a.array_position > 1 else "")


def _ire_electrodes(probes: list[ProbeSource], notes: list[str], first: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Electrode tips and directions; a lone electrode with ``spacing_mm`` gets its partner beside it."""
    from .arrays import perp_basis

    tips, dirs = [], []
    for n, p in enumerate(probes):
        tips.append(np.asarray(p.tip_lps, float))
        dirs.append(np.asarray(p.direction_lps, float))
        if len(probes) == 1:
            if p.spacing_mm is None:
                raise InputError("a single IRE electrode needs spacing_mm (the distance to its partner)", field="probes")
            u, _ = perp_basis(dirs[-1])
            tips[-1] = tips[-1] - 0.5 * p.spacing_mm * u
            tips.append(tips[-1] + p.spacing_mm * u)
            dirs.append(dirs[-1])
            notes.append(f"probe {first + n}: one IRE entry read as a pair {p.spacing_mm:g} mm apart, its tip the pair's "
                         "midpoint, the pair's plane chosen arbitrarily across the shaft")
    return np.array(tips), np.array(dirs)


def _simulate_ire(request: SimulationRequest, labels: LabelMap | None) -> tuple[SimulationResult, SimulationFields]:
    """Each activation (group / pull-back position) alone on one grid; lethal zones united, fields maxed."""
    from .arrays import box_grid
    from .ire import IREOptions, ire_array_zone

    notes: list[str] = []
    models = []
    data = load_array_data().ire
    for n, p in enumerate(request.probes):
        models.append(ProbeModel(probe=n + 1, device=p.device, modality="ire", model="ire field (generic electrode)",
                                 calibrated=False, note="electrode geometry from data/arrays.yaml; no device-specific data"))
    notes.append("IRE electrodes: generic 19 G electrode model (no device-specific calibration data)")
    if labels is not None:
        notes.append("IRE field computed in homogeneous liver (tissue conductivities of other labels not modelled)")
    acts = activations(request.probes)
    sets = []
    for a in acts:
        members = [request.probes[n - 1] for n in a.probes]
        tips, dirs = _ire_electrodes(members, notes, a.probes[0])
        expos = {p.exposure_mm for p in members if p.exposure_mm is not None}
        expo = max(expos) if expos else data.exposure_mm.value
        if len(expos) > 1:
            notes.append(f"electrodes with different exposures: {expo:g} mm used for all")
        volts = [p.voltage_v for p in members if p.voltage_v is not None]
        pulses = [int(st.power_w) for p in members for st in (p.schedule or [])]
        sets.append((a, tips, dirs, expo, max(volts) if volts else None, max(pulses) if pulses else None))
    all_tips = np.concatenate([s_[1] for s_ in sets])
    all_dirs = np.concatenate([s_[2] for s_ in sets])
    ends = np.concatenate([np.concatenate([s_[1], s_[1] - s_[3] * s_[2]]) for s_ in sets])
    grid = box_grid(ends, IREOptions().margin_mm, request.spacing_mm)
    zones = []
    for a, tips, dirs, expo, volt, pulses in sets:
        opts = IREOptions(spacing_mm=request.spacing_mm, pulses=pulses)
        z = ire_array_zone(tips, dirs, grid=grid, exposure_mm=expo, voltage_v=volt, options=opts)
        a.end_s = z.duration_s
        zones.append(z)
        notes += [n for n in z.notes if n not in notes]
    z0 = zones[0]
    mask = np.logical_or.reduce([z.mask for z in zones])
    efield = np.maximum.reduce([z.field_v_cm for z in zones])
    heat = [z.temperature_c for z in zones if z.temperature_c is not None]
    if len(zones) > 1:
        spans = "; ".join(f"{_act_name(a)}: probes {', '.join(map(str, a.probes))}" for a in acts)
        notes.append(f"{len(zones)} IRE activations simulated each alone and their lethal zones united (sequential "
                     f"pulsing; the heating of one is not carried into the next): {spans}")
    d = measure_dims(mask, grid, all_tips, mean_axis(all_dirs))
    tmax = max(float(z.max_temperature_c or 37.0) for z in zones)
    snap = ZoneSnapshot(time_s=z0.duration_s, length_mm=d.along_mm, width_mm=d.across1_mm, volume_ml=d.volume_ml,
                        max_temperature_c=tmax, min_temperature_c=37.0)
    result = SimulationResult(
        modality="ire", probe_models=models, array_zone=ArrayZoneSummary(**d.model_dump(exclude={"source"})),
        peak_field_v_cm=max(float(z.peak_field_v_cm or 0.0) for z in zones), max_temperature_c=tmax,
        criterion="efield", threshold=z0.threshold, threshold_source=z0.threshold_source, zones=[snap],
        final_length_mm=d.along_mm, final_width_mm=d.across1_mm, final_volume_ml=d.volume_ml,
        final_radii_mm=[d.across1_mm / 2, d.across2_mm / 2], spacing_mm=request.spacing_mm, grid_shape_kji=grid.shape,
        method="electric field (CG) + explicit Pennes", dt_s=0.0, dt_limit_s=0.0, n_steps=0,
        runtime_s=sum(z.runtime_s for z in zones), notes=notes, activations=acts,
        sequence="separate" if len(zones) > 1 else "simultaneous",
    )
    extra = {"field_v_cm": efield, "lethal_zone": mask.astype(np.uint8)}
    if heat:
        extra["max_temperature_c"] = np.maximum.reduce(heat)
    return result, SimulationFields(grid, None, extra)  # type: ignore[arg-type]
