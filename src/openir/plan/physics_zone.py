"""A planned probe's lethal zone from physics (bioheat simulation) instead of the catalogue table.

The catalogue gives one ellipsoid per setting, measured in (mostly ex vivo) liver without large
vessels. The physics package simulates the same antenna (its source calibrated so that, in
homogeneous liver, the zone matches that table row) in the case's own tissues, with large vessels
as flow-dependent heat sinks; a vessel beside the antenna clips the zone (heat-sink effect), which
the table cannot show. Only devices with a *calibrated* physics preset are accepted.

Placement: the physics source's axial position (its feed point behind the tip) is a model
parameter, not calibrated, so by default (``align="zone_centre"``) the antenna is shifted along its
shaft so that its homogeneous-liver zone centre falls on the planned zone centre; the comparison
then isolates what the tissue and vessels change. ``align="tip"`` simulates at the planned tip.
Probes are simulated one at a time and combined as a union (no thermal synergy), like the table.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np
from scipy import ndimage

from openir.core import Grid, LabelMap, Volume
from openir.core.errors import InputError
from openir.core.resample import resample
from openir.physics import (
    ProbeSource,
    SimulationRequest,
    find_device,
    load_presets,
    simulate,
    zone_axes,
)

from .models import Ellipsoid, PhysicsZoneRecord

Criterion = Literal["cem43", "arrhenius"]
_FACES = [(0,), (-1,), (slice(None), 0), (slice(None), -1), (Ellipsis, 0), (Ellipsis, -1)]
Align = Literal["zone_centre", "tip"]


class ProbeLike(Protocol):
    device: str
    power_w: float | None
    time_s: float | None
    tip_lps: tuple[float, float, float]
    direction_lps: tuple[float, float, float]


@dataclass
class PhysicsZone:
    """A probe's simulated lethal zone: the mask on its simulation grid and its summary."""

    grid: Grid
    mask: np.ndarray  # bool [k, j, i]
    record: PhysicsZoneRecord

    @property
    def volume_ml(self) -> float:
        return self.record.volume_ml

    def on_grid(self, grid: Grid) -> np.ndarray:
        """The mask resampled (nearest neighbour) onto another grid."""
        return mask_on_grid(self.mask, self.grid, grid)


def calibrated_devices() -> list[str]:
    """Device ids whose physics source is calibrated against the catalogue (usable here)."""
    return sorted(k for k, d in load_presets().devices.items() if d.settings)


def _preset(device: str):
    ok = calibrated_devices()
    try:
        key, dev = find_device(device)
    except InputError:
        key, dev = None, None
    if dev is None or not dev.settings:
        raise InputError(f"device {device!r} has no calibrated physics source, so its zone cannot be "
                         f"simulated; calibrated devices: {', '.join(ok) or 'none'} "
                         "(openir simulate --calibrate adds one)", field="device")
    return key, dev


@lru_cache(maxsize=32)
def _homogeneous(device: str, power_w: float, time_s: float, spacing_mm: float, box_mm: float,
                 criterion: str) -> tuple[float, float, float, float]:
    """(length, width, volume, tip-to-centre) of the antenna alone in homogeneous liver."""
    probe = ProbeSource(device=device, power_w=power_w, time_s=time_s, tip_lps=(0.0, 0.0, 0.0),
                        direction_lps=(0.0, 0.0, 1.0))
    req = SimulationRequest(probes=[probe], spacing_mm=spacing_mm, box_mm=box_mm, output_times_s=[time_s],
                            criterion=criterion)  # type: ignore[arg-type]
    res, fields = simulate(req)
    field = _final_field(fields, res.criterion)
    z = zone_axes(field, fields.grid, res.threshold, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), reach_mm=box_mm / 2)
    return z.length_mm, z.width_mm, z.volume_ml, -(z.proximal_mm + z.distal_mm) / 2


def _final_field(fields, criterion: str) -> np.ndarray:
    sol = fields.solution
    return sol.cem43_min[-1] if criterion == "cem43" else sol.damage[-1]


def _lethal_mask(field: np.ndarray, grid: Grid, thr: float, centre_lps: np.ndarray) -> np.ndarray:
    """Voxels over threshold connected to the zone centre (the largest region if it is not inside)."""
    over = field >= thr
    lab, n = ndimage.label(over)
    if n == 0:
        return over
    c = np.rint(grid.world_to_index(centre_lps)).astype(int)
    if grid.contains_index(c) and lab[c[2], c[1], c[0]]:
        keep = lab[c[2], c[1], c[0]]
    else:
        keep = int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
    return lab == keep


def encode_mask(mask: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.packbits(mask.ravel()).tobytes(), 6)).decode("ascii")


def decode_mask(text: str, shape: Sequence[int]) -> np.ndarray:
    n = int(np.prod(shape))
    bits = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    return np.unpackbits(bits, count=n).astype(bool).reshape(tuple(shape))


def mask_on_grid(mask: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Nearest-neighbour resampling of ``mask`` onto ``target``, evaluated only where they overlap."""
    corners = np.array([[i, j, k] for i in (-0.5, mask.shape[2] - 0.5) for j in (-0.5, mask.shape[1] - 0.5)
                        for k in (-0.5, mask.shape[0] - 0.5)], float)
    idx = target.world_to_index(source.index_to_world(corners))
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.array(target.shape_ijk))
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, np.array(target.shape_ijk))
    out = np.zeros(target.shape, bool)
    if np.any(hi <= lo) or not mask.any():
        return out
    sub = target.subgrid([lo[2], lo[1], lo[0]], [hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]])
    part = resample(Volume(mask.astype(np.uint8), source.affine), sub, interpolation="nearest", fill_value=0)
    out[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] = part.array > 0
    return out


def record_mask(record: PhysicsZoneRecord) -> tuple[np.ndarray, Grid]:
    """A record's lethal-zone mask and its simulation grid."""
    grid = Grid(record.grid_shape_kji, np.asarray(record.grid_affine, float))
    return decode_mask(record.mask_zlib_b64, record.grid_shape_kji), grid


def records_mask(records: Sequence[PhysicsZoneRecord], grid: Grid) -> np.ndarray:
    """Union of the records' lethal zones on ``grid``."""
    out = np.zeros(grid.shape, bool)
    for r in records:
        m, g = record_mask(r)
        out |= mask_on_grid(m, g, grid)
    return out


def physics_zone(
    probe: ProbeLike,
    labels: LabelMap | None = None,
    *,
    spacing_mm: float = 2.0,
    box_mm: float = 80.0,
    criterion: Criterion = "cem43",
    align: Align = "zone_centre",
    zone_centre_lps: Sequence[float] | None = None,
    table_zone: Ellipsoid | None = None,
    probe_order: int = 0,
    tumour: str = "",
) -> PhysicsZone:
    """Simulate one planned probe and return its lethal zone (CEM43 >= 240 min by default).

    ``labels``: the case's label map (tissues; large vessels become heat sinks); None = homogeneous
    liver. ``zone_centre_lps``: the planned zone centre used by ``align="zone_centre"`` (default:
    the probe's ``zone_centre_lps`` attribute if it has one, else the tip is used as planned).
    ``spacing_mm``/``box_mm``: simulation voxel and cube edge (mm); the device was calibrated at 1 mm,
    2 mm reproduces its table axes within about 1 mm and is ~30x faster.
    """
    key, dev = _preset(probe.device)
    power = float(probe.power_w if probe.power_w is not None else dev.default_power_w or dev.settings[0].power_w)
    time_s = float(probe.time_s if probe.time_s is not None else dev.default_time_s or dev.settings[0].time_s)
    if dev.kind == "cryo":
        raise InputError(f"device {probe.device!r}: physics zones are implemented for heating devices only",
                         field="device")
    d = np.asarray(probe.direction_lps, float)
    d = d / np.linalg.norm(d)
    tip = np.asarray(probe.tip_lps, float)
    hl, hw, hv, model_off = _homogeneous(key, power, time_s, float(spacing_mm), float(box_mm), criterion)
    notes: list[str] = []
    centre = zone_centre_lps if zone_centre_lps is not None else getattr(probe, "zone_centre_lps", None)
    sim_tip = tip
    if align == "zone_centre" and centre is not None:
        plan_off = float((tip - np.asarray(centre, float)) @ d)
        sim_tip = tip + (model_off - plan_off) * d
        if abs(model_off - plan_off) > 0.5:
            notes.append(f"antenna shifted {model_off - plan_off:+.1f} mm along the shaft so that its zone centre "
                         f"(model: {model_off:.1f} mm behind the tip, an uncalibrated model parameter) falls on "
                         f"the planned zone centre ({plan_off:.1f} mm behind the planned tip)")
    elif align not in ("zone_centre", "tip"):
        raise InputError(f"align must be 'zone_centre' or 'tip', got {align!r}", field="align")
    src = ProbeSource(device=key, power_w=power, time_s=time_s, tip_lps=tuple(sim_tip), direction_lps=tuple(d))
    req = SimulationRequest(probes=[src], spacing_mm=spacing_mm, box_mm=box_mm, output_times_s=[time_s],
                            criterion=criterion)
    res, fields = simulate(req, labels)
    field = _final_field(fields, res.criterion)
    z = zone_axes(field, fields.grid, res.threshold, sim_tip, d, reach_mm=box_mm / 2)
    zc = sim_tip + d * (z.proximal_mm + z.distal_mm) / 2
    mask = _lethal_mask(field, fields.grid, res.threshold, zc)
    vessels = [n.split(":")[0].removeprefix("vessel ").strip() for n in res.notes if n.startswith("vessel ")]
    notes += [n for n in res.notes if not n.startswith("arrhenius zone") and not n.startswith("cem43 zone")]
    shrink = 100.0 * (1.0 - z.volume_ml / hv) if hv > 0 else 0.0
    if labels is not None and vessels and shrink > 5.0:
        notes.append(f"heat sink: zone {shrink:.0f}% smaller than in homogeneous liver "
                     f"({z.length_mm:.0f} x {z.width_mm:.0f} mm vs {hl:.0f} x {hw:.0f} mm; narrowest radius "
                     f"{min(z.radii_mm):.1f} mm, widest {max(z.radii_mm):.1f} mm) near {', '.join(vessels)}")
    if any(mask[sl].any() for sl in _FACES):
        notes.append("the lethal zone reaches the edge of the simulated region (box_mm or the image edge): "
                     "its size is underestimated")
    rec = PhysicsZoneRecord(
        probe_order=probe_order, tumour=tumour, device=key, power_w=power, time_s=time_s,
        criterion=res.criterion, threshold=res.threshold, threshold_source=res.threshold_source,
        spacing_mm=float(spacing_mm), tissue_model="labels" if labels is not None else "homogeneous liver",
        alignment=align if centre is not None else "tip", simulated_tip_lps=tuple(map(float, sim_tip)),
        direction_lps=tuple(map(float, d)), centre_lps=tuple(map(float, zc)), model_tip_to_centre_mm=round(model_off, 2),
        length_mm=round(z.length_mm, 2), width_mm=round(z.width_mm, 2),
        volume_ml=round(float(mask.sum()) * fields.grid.voxel_volume_mm3 / 1000.0, 3),
        radii_mm=[round(r, 2) for r in z.radii_mm], homogeneous_length_mm=round(hl, 2),
        homogeneous_width_mm=round(hw, 2), homogeneous_volume_ml=round(hv, 3), volume_shrinkage_pct=round(shrink, 1),
        table_length_mm=2 * table_zone.semi_axes_mm[0] if table_zone else None,
        table_width_mm=(table_zone.semi_axes_mm[1] + table_zone.semi_axes_mm[2]) if table_zone else None,
        table_volume_ml=round(table_zone.volume_ml, 3) if table_zone else None,
        vessels=vessels, notes=notes, grid_shape_kji=fields.grid.shape,
        grid_affine=fields.grid.affine.tolist(), mask_zlib_b64=encode_mask(mask))
    return PhysicsZone(fields.grid, mask, rec)
