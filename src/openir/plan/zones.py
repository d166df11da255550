"""Ablation-zone model: the catalogue's table turned into an oriented ellipsoid for a probe pose.

The zone for a setting between table rows is interpolated linearly (time within a power, then
across powers; time within an isotherm for cryo); nothing is extrapolated beyond the table, and
rows marked unsourced are never used. Several probes combine as a union: synergy between probes
(larger confluent zones for clustered microwave antennas or cryoprobes) is NOT modelled, so the
union is the conservative (smaller) estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from openir.core import Grid, LabelMap
from openir.core.crop import world_box
from openir.core.errors import InputError

from .devices import SETTING_AXES, Device, DeviceCatalogue, ZoneRow, load_catalogue
from .models import Ellipsoid, HeatSinkReport, HeatSinkVessel, Probe

_FIELDS = ("length_mm", "diameter_mm", "diameter2_mm", "tip_to_centre_mm")


def _vals(r: ZoneRow) -> dict[str, float | None]:
    d2 = r.diameter2_mm if r.diameter2_mm is not None else r.diameter_mm
    return {"length_mm": r.length_mm, "diameter_mm": r.diameter_mm, "diameter2_mm": d2,
            "tip_to_centre_mm": r.centre_offset_mm}


def _lerp(a: dict, b: dict, w: float) -> dict:
    """Linear blend of two rows' extents; an offset known on only one side stays unknown."""
    out = {}
    for f in _FIELDS:
        if a[f] is None or b[f] is None:
            out[f] = None
        else:
            out[f] = (1 - w) * a[f] + w * b[f]
    return out


_UNITS = {"power_w": " W", "time_s": " s", "isotherm_c": " C", "spacing_mm": " mm", "exposure_mm": " mm",
          "injected_ml": " mL"}


def _fmt(name: str, x: float | None) -> str:
    return "none" if x is None else f"{x:g}{_UNITS.get(name, '')}"


def _interp(rows: list[ZoneRow], axes: Sequence[tuple[str, bool]], req: dict, dev: Device) -> tuple[dict, list[ZoneRow]]:
    """Select rows axis by axis: discrete keys must match, continuous ones interpolate linearly."""
    if not axes:
        return _vals(rows[0]), [rows[0]]
    (name, continuous), rest = axes[0], axes[1:]
    x = req.get(name)
    values = sorted({getattr(r, name) for r in rows}, key=lambda v: (v is None, v))
    if values == [None]:
        if x is not None:
            why = (f"its rows are {rows[0].control}-controlled" if name == "power_w" and rows[0].control
                   else "its table has no such setting")
            raise InputError(f"{dev.id}: {name} {x:g} cannot be set ({why}); leave it out", field=name)
        return _interp(rows, rest, req, dev)
    if x is None:
        if len(values) == 1:
            return _interp([r for r in rows if getattr(r, name) == values[0]], rest, req, dev)
        raise InputError(f"{dev.id}: {name} is needed; the sourced table has "
                         f"{', '.join(_fmt(name, v) for v in values)}", field=name)
    nums = [v for v in values if v is not None]
    exact = [v for v in nums if abs(v - x) < 1e-9]
    if exact:
        return _interp([r for r in rows if getattr(r, name) == exact[0]], rest, req, dev)
    if not continuous:
        raise InputError(f"{dev.id}: no sourced rows for {name} {_fmt(name, x)}; the table has "
                         f"{', '.join(_fmt(name, v) for v in values)}", field=name)
    if not nums or x < nums[0] or x > nums[-1]:
        span = f"{_fmt(name, nums[0])}..{_fmt(name, nums[-1])}" if nums else "none"
        raise InputError(f"{name} {_fmt(name, x)} is outside the sourced table of {dev.id!r} ({span}); "
                         "the zone model does not extrapolate", field=name)
    k = int(np.searchsorted(nums, x))
    lo, used_lo = _interp([r for r in rows if getattr(r, name) == nums[k - 1]], rest, req, dev)
    hi, used_hi = _interp([r for r in rows if getattr(r, name) == nums[k]], rest, req, dev)
    w = (x - nums[k - 1]) / (nums[k] - nums[k - 1])
    return _lerp(lo, hi, w), used_lo + used_hi


def zone_dimensions(device: Device, *, power_w: float | None = None, time_s: float | None = None,
                    isotherm_c: float | None = None, exposure_mm: float | None = None,
                    spacing_mm: float | None = None, injected_ml: float | None = None,
                    evidence: str | None = None, tissue: str | None = None) -> tuple[dict, list[ZoneRow]]:
    """Interpolated full extents (and tip-to-centre offset) for a setting, plus the rows used.

    The rows come from one evidence table of the device (``evidence``, else the preferred one, see
    ``devices.EVIDENCE_PREFERENCE``). Settings per modality are ``devices.SETTING_AXES``: e.g.
    microwave power x time, RF exposure x (power) x time, cryo isotherm x freeze time, IRE exposure
    x spacing, ethanol injected volume. A setting the table has only one value for may be left out.
    ``tissue`` (a substring, e.g. "liver") picks rows measured in that tissue; it is needed when
    the table holds rows of several tissues.
    """
    rows = device.table(evidence)
    if not rows:
        raise InputError(f"device {device.id!r} has no sourced zone rows in the catalogue "
                         "(all marked unsourced); it cannot be used for zone prediction", field="device")
    tissues = sorted({r.tissue or "unstated" for r in rows})
    if tissue is not None:
        rows = [r for r in rows if tissue.lower() in (r.tissue or "").lower()]
        if not rows:
            raise InputError(f"{device.id}: no sourced rows measured in {tissue!r}; the table has "
                             f"{'; '.join(tissues)}", field="tissue")
    elif len(tissues) > 1:
        raise InputError(f"{device.id}: the table holds rows of several tissues ({'; '.join(tissues)}); "
                         "name one (tissue=...)", field="tissue")
    req = {"power_w": power_w, "time_s": time_s, "isotherm_c": isotherm_c, "exposure_mm": exposure_mm,
           "spacing_mm": spacing_mm, "injected_ml": injected_ml}
    axes = SETTING_AXES[device.modality]
    if device.modality == "cryo":
        # the isotherm is a discrete key where None (a histological zone) is a value of its own
        have = {r.isotherm_c for r in rows}
        if isotherm_c not in have:
            shown = ", ".join("histological" if v is None else f"{v:g} C" for v in
                              sorted(have, key=lambda v: (v is None, v or 0)))
            raise InputError(f"{device.id}: no sourced rows for isotherm "
                             f"{'histological' if isotherm_c is None else f'{isotherm_c:g} C'}; have {shown}",
                             field="isotherm_c")
        rows = [r for r in rows if r.isotherm_c == isotherm_c]
        axes = axes[1:]
    return _interp(rows, axes, req, device)


def _frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return d, u, v


def ellipsoid_from(centre, direction, semi_axes, **meta) -> Ellipsoid:
    """An ellipsoid with its first axis along ``direction`` (helper for tests and callers)."""
    d, u, v = _frame(np.asarray(direction, dtype=float))
    return Ellipsoid(centre_lps=tuple(map(float, centre)), axes_lps=(tuple(d), tuple(u), tuple(v)),
                     semi_axes_mm=tuple(map(float, semi_axes)), **meta)


def predict_zone(probe: Probe, catalogue: DeviceCatalogue | None = None) -> Ellipsoid:
    """The predicted zone of one probe (or IRE pair), as an oriented ellipsoid in LPS mm.

    The zone's long axis lies along the shaft with its centre ``tip_to_centre`` back from the tip.
    For an IRE pair, ``tip_lps`` is the midpoint of the two tips and the second axis (the width in
    the electrode plane) follows ``plane_lps``.
    """
    cat = catalogue or load_catalogue()
    dev = cat.get(probe.device)
    dims, used = zone_dimensions(dev, power_w=probe.power_w, time_s=probe.time_s, isotherm_c=probe.isotherm_c,
                                 exposure_mm=probe.exposure_mm, spacing_mm=probe.spacing_mm,
                                 injected_ml=probe.injected_ml, evidence=probe.evidence, tissue=probe.tissue)
    offset = probe.centre_offset_mm if probe.centre_offset_mm is not None else dims["tip_to_centre_mm"]
    if offset is None:
        raise InputError(f"{dev.id}: the catalogue has no sourced tip-to-zone-centre offset for this "
                         "setting; pass centre_offset_mm explicitly", field="centre_offset_mm")
    d = np.asarray(probe.direction_lps, dtype=float)
    centre = np.asarray(probe.tip_lps, dtype=float) - d * float(offset)  # back toward the handle
    semi = (dims["length_mm"] / 2, dims["diameter_mm"] / 2, dims["diameter2_mm"] / 2)
    setting = used[0].label() if len(used) == 1 else "interpolated (" + ", ".join(
        f"{k} {v:g}" for k, v in (("power_w", probe.power_w), ("time_s", probe.time_s),
                                 ("spacing_mm", probe.spacing_mm), ("injected_ml", probe.injected_ml))
        if v is not None) + ")"
    meta = dict(device=dev.id, setting=setting, thermal=dev.thermal, modality=dev.modality,
                sources=sorted({r.source.strip() for r in used}))
    if probe.plane_lps is not None:
        u = np.asarray(probe.plane_lps, dtype=float)
        u = u - d * float(u @ d)
        if np.linalg.norm(u) < 1e-6:
            raise InputError("plane_lps must not be parallel to the shaft", field="plane_lps")
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        return Ellipsoid(centre_lps=tuple(map(float, centre)), axes_lps=(tuple(d), tuple(u), tuple(v)),
                         semi_axes_mm=semi, **meta)
    return ellipsoid_from(centre, d, semi, **meta)


# ---- rasterisation and meshes -------------------------------------------------------------------

def _half_extent(e: Ellipsoid) -> np.ndarray:
    r = e.rotation() * np.asarray(e.semi_axes_mm)[None, :]
    return np.sqrt((r**2).sum(axis=1))


def _inside(e: Ellipsoid, pts: np.ndarray) -> np.ndarray:
    local = (pts - np.asarray(e.centre_lps)) @ e.rotation()
    return ((local / np.asarray(e.semi_axes_mm)) ** 2).sum(axis=-1) <= 1.0


def rasterise_zones(zones: Sequence[Ellipsoid], grid: Grid) -> np.ndarray:
    """Boolean mask (array order k, j, i) of the union of ``zones`` on ``grid``.

    Only each zone's bounding box is evaluated; a voxel is inside when its centre is.
    """
    mask = np.zeros(grid.shape, dtype=bool)
    for e in zones:
        try:
            box = world_box(grid, e.centre_lps, 2 * _half_extent(e) + 2 * grid.spacing.max())
        except Exception:  # zone entirely outside the grid
            continue
        sub = grid.subgrid([s.start for s in box], [s.stop - s.start for s in box])
        mask[box] |= _inside(e, sub.voxel_centres())
    return mask


def zone_mesh(zone: Ellipsoid, n_theta: int = 24, n_phi: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A closed triangle mesh of the ellipsoid surface: (vertices (N, 3) LPS mm, faces (M, 3))."""
    th = np.linspace(0, math.pi, n_theta + 1)[1:-1]
    ph = np.linspace(0, 2 * math.pi, n_phi, endpoint=False)
    t, p = np.meshgrid(th, ph, indexing="ij")
    unit = np.stack([np.cos(t), np.sin(t) * np.cos(p), np.sin(t) * np.sin(p)], axis=-1).reshape(-1, 3)
    unit = np.vstack([[1.0, 0, 0], unit, [-1.0, 0, 0]])
    verts = (unit * np.asarray(zone.semi_axes_mm)) @ zone.rotation().T + np.asarray(zone.centre_lps)
    faces = []
    ring = lambda r, c: 1 + r * n_phi + (c % n_phi)  # noqa: E731
    for c in range(n_phi):
        faces.append((0, ring(0, c + 1), ring(0, c)))
    for r in range(n_theta - 2):
        for c in range(n_phi):
            a, b = ring(r, c), ring(r, c + 1)
            cc, d = ring(r + 1, c), ring(r + 1, c + 1)
            faces += [(a, b, d), (a, d, cc)]
    last = len(verts) - 1
    for c in range(n_phi):
        faces.append((last, ring(n_theta - 2, c), ring(n_theta - 2, c + 1)))
    return verts, np.asarray(faces, dtype=np.int64)


# ---- heat sink ----------------------------------------------------------------------------------

def local_diameter_mm(vessel: np.ndarray, spacing_kji: Sequence[float]) -> np.ndarray:
    """Per-voxel local vessel diameter: 2 x the medial radius, spread from the medial axis outward.

    The inside distance transform (medial voxel centre to the nearest outside voxel centre) is
    taken as the radius: on voxelised cylinders it falls within about half a voxel of the true
    radius (the discrete wall lies between the last inside and first outside centres). Its local
    maximum over a window of that radius carries the medial value out to the wall voxels.
    """
    sp = np.asarray(spacing_kji, dtype=float)
    d_in = ndimage.distance_transform_edt(vessel, sampling=sp)
    radius = np.where(vessel, d_in, 0.0)
    rmax = float(radius.max()) if vessel.any() else 0.0
    size = tuple(int(2 * math.ceil(rmax / s) + 1) for s in sp)
    spread = ndimage.maximum_filter(radius, size=size) if rmax > 0 else radius
    return np.where(vessel, 2 * spread, 0.0)


def heat_sink_check(zone: Ellipsoid, labels: LabelMap, vessel_labels: Sequence[str],
                    min_diameter_mm: float = 3.0, clip: bool | None = None,
                    ) -> tuple[HeatSinkReport, np.ndarray | None]:
    """Vessels of ``min_diameter_mm`` or more inside or touching a thermal zone.

    Returns the report and, for radiofrequency zones (or ``clip=True``), the zone mask on the label
    grid clipped where such vessels run: the lumen and the shadow behind it as seen from the shaft
    (heat carried away by flow protects tissue beyond the vessel). Non-thermal zones get an empty
    report (flow does not protect tissue from cryo/IRE in this model) and no mask.
    """
    rep = HeatSinkReport(zone_device=zone.device, thermal=zone.thermal, min_diameter_mm=min_diameter_mm)
    if not zone.thermal:
        rep.note = "heat sink applies to thermal (RF/MW) zones only"
        return rep, None
    grid = labels.grid
    pad = 2 * _half_extent(zone) + 2 * (max(min_diameter_mm, 10.0) + grid.spacing.max())
    box = world_box(grid, zone.centre_lps, pad)
    sub = grid.subgrid([s.start for s in box], [s.stop - s.start for s in box])
    centres = sub.voxel_centres()
    inside = _inside(zone, centres)
    touch = ndimage.binary_dilation(inside, structure=ndimage.generate_binary_structure(3, 3))
    arr = labels.array[box]
    sp = sub.spacing[::-1]
    clip_mask = np.zeros_like(inside)
    for name in vessel_labels:
        if not labels.has(name):
            continue
        ves = arr == labels.value_of(name)
        if not (ves & touch).any():
            continue
        diam = local_diameter_mm(ves, sp)
        big = ves & (diam >= min_diameter_mm)
        hit_in, hit_touch = big & inside, big & touch
        if hit_touch.any():
            rep.vessels.append(HeatSinkVessel(label=labels.labels[labels.value_of(name)],
                                              diameter_mm=float(diam[hit_touch].max()),
                                              voxels_in_zone=int(hit_in.sum()),
                                              touching_only=not hit_in.any()))
            clip_mask |= big
    do_clip = (zone.modality == "radiofrequency") if clip is None else clip
    if not do_clip:
        return rep, None
    out_sub = inside.copy()
    if clip_mask.any():
        out_sub &= ~_shadow(zone, centres, inside, clip_mask, sub)
    rep.clipped_voxels = int(inside.sum() - out_sub.sum())
    full = np.zeros(grid.shape, dtype=bool)
    full[box] = out_sub
    return rep, full


def _shadow(zone: Ellipsoid, centres: np.ndarray, inside: np.ndarray, vessel: np.ndarray, sub: Grid) -> np.ndarray:
    """Zone voxels whose straight line to the shaft axis passes through ``vessel``."""
    c = np.asarray(zone.centre_lps)
    d = np.asarray(zone.axes_lps[0])
    a_len = zone.semi_axes_mm[0]
    pts = centres[inside]
    t = np.clip((pts - c) @ d, -a_len, a_len)
    foot = c + t[:, None] * d
    step = sub.spacing.min() / 2
    dist = np.linalg.norm(pts - foot, axis=1)
    n = max(2, int(math.ceil(dist.max() / step)) + 1) if len(pts) else 2
    hit = np.zeros(len(pts), dtype=bool)
    for s in np.linspace(0.0, 1.0, n):
        q = foot + s * (pts - foot)
        idx = np.rint(sub.world_to_index(q)).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(sub.shape_ijk)), axis=1)
        h = np.zeros(len(pts), dtype=bool)
        h[ok] = vessel[idx[ok, 2], idx[ok, 1], idx[ok, 0]]
        hit |= h
    out = np.zeros_like(inside)
    out[inside] = hit
    return out
