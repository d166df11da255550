"""Irreversible electroporation (IRE): electric field of an electrode array, lethal zone, Joule heating.

Quasi-static field of each pulsed pair: div(sigma grad phi) = 0 on a voxel grid (finite volumes,
7-point stencil, face conductance the harmonic mean of the voxel conductivities), the two active
electrodes as Dirichlet conductors (+V and 0), no current through the outer faces of the grid.
Tissue conductivity rises with the local field where cells are permeabilised (sequential model of
Sel et al. 2005: a smooth step from sigma0 at the reversible threshold to sigma1 at the
irreversible one, data/arrays.yaml), solved by re-computing the field until the conductivity stops
changing. Electrodes that are not pulsed are treated as tissue (open circuit, not a floating
conductor). Linear systems: conjugate gradients with a Jacobi preconditioner (scipy.sparse), warm-started
across the conductivity updates (measured faster here than algebraic multigrid, whose set-up costs
more than the ~200 CG iterations it saves on these grids).

The lethal zone is the union over pairs of |E| >= the tissue's lethal field for the pulse train
(`lethal_field_v_cm`: more or longer pulses kill at a lower field); the Joule heat
sigma |E|^2 of each pair's pulse train (pulses x length at the pulse rate) drives the Pennes solver
for the temperature rise and thermal dose, so a protocol that would also cook tissue is flagged.

>>> from openir.physics.ire import ire_array_zone, IREOptions
>>> z = ire_array_zone([(-7.5, 0, 0), (7.5, 0, 0)], [(0, 0, 1)], exposure_mm=15, voltage_v=2250,
...                    options=IREOptions(spacing_mm=1.5, heating=False))
>>> z.n_probes, round(z.dims.across1_mm) > 15
(2, True)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse
from scipy.sparse.linalg import cg

from openir.core.errors import InputError
from openir.core.volume import Grid

from .arrays import (
    ArrayZone,
    IRETissue,
    LethalFieldProtocol,
    box_grid,
    load_array_data,
    mean_axis,
    measure_dims,
    probe_arrays,
)
from .bioheat import HeatSource, solve_pennes
from .simulate import homogeneous_medium
from .sources import _segment_distance, probe_coordinates
from .tissues import load_tissue_table

RTOL = 1e-6  # relative residual of CG: the field is needed to ~0.1 %, far below the threshold's spread


class IREOptions(BaseModel):
    """Numerics and protocol of an IRE array simulation (defaults from data/arrays.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spacing_mm: float = Field(1.0, gt=0.2, le=3.0, description="voxel size when no grid is given")
    margin_mm: float = Field(20.0, ge=15, description="grid margin around the electrodes when no grid is given; "
                             ">= 15 mm: the grid's insulating faces closer than that distort the zone (at 10-12 mm "
                             "a 17 mm deep zone came out 21-25 mm deep)")
    electrode_radius_mm: float | None = Field(None, gt=0)
    pulses: int | None = Field(None, ge=1, le=1000, description="pulses per pair")
    pulse_length_us: float | None = Field(None, gt=0, le=10000)
    pulse_rate_hz: float | None = Field(None, gt=0, le=100)
    max_pair_distance_mm: float | None = Field(None, gt=0)
    max_voltage_v: float | None = Field(None, gt=0)
    nonlinear: bool = Field(True, description="conductivity rises with the field (Sel et al. 2005)")
    lethal_field_v_cm: float | None = Field(None, gt=0, description="override of the tissue's lethal field")
    heating: bool = Field(True, description="also compute the Joule heating (Pennes)")
    max_iterations: int = Field(8, ge=1, le=50)


def conductivity_of_field(e_v_cm: np.ndarray, props: IRETissue) -> np.ndarray:
    """Tissue conductivity (S/m) at field ``e_v_cm``: sigma0 below the reversible threshold, sigma1
    above the irreversible one, a smooth (C1) step between (Sel et al. 2005's sigmoid rise)."""
    s0, s1 = props.conductivity_s_m.value, props.permeabilised_conductivity_s_m.value
    a, b = props.reversible_field_v_cm.value, props.irreversible_field_v_cm.value
    x = np.clip((np.asarray(e_v_cm, float) - a) / (b - a), 0.0, 1.0)
    return s0 + (s1 - s0) * x * x * (3.0 - 2.0 * x)


def grid_lethal_field_v_cm(props: IRETissue, voxel_mm: float | None) -> float:
    """The tissue's reference lethal field on voxels of ``voxel_mm`` (None: the physical value).

    Voxels up to ``grid_lethal_field_v_cm.resolved_voxel_mm`` resolve the electrode: the physical
    (grid-converged) value. Coarser voxels take their own calibrated value, which gives the same fitted
    zone (data/arrays.yaml); a voxel size without one is refused rather than guessed, since a
    threshold taken from another grid errs by up to 50 % in zone depth.
    """
    cal = props.grid_lethal_field_v_cm
    if voxel_mm is None or cal is None or voxel_mm <= cal.resolved_voxel_mm * 1.02:
        return float(props.lethal_field_v_cm.value)
    for h, e in cal.values.items():
        if abs(voxel_mm - h) <= 0.02 * h:
            return float(e)
    sizes = ", ".join(f"{h:g}" for h in sorted(cal.values))
    raise InputError(f"the IRE lethal field is calibrated for voxels <= {cal.resolved_voxel_mm:g} mm and of {sizes} mm, "
                     f"not {voxel_mm:g} mm: choose one of these", field="spacing_mm")


def lethal_field_v_cm(props: IRETissue, pulses: float, pulse_length_us: float,
                      protocol: LethalFieldProtocol | None = None, voxel_mm: float | None = None) -> float:
    """Lethal field (V/cm) of a train of ``pulses`` pulses of ``pulse_length_us`` (on ``voxel_mm`` voxels).

    E = E_ref (n tau / (n_ref tau_ref))^-alpha: E_ref is the tissue's lethal field at the reference
    protocol (on this grid: `grid_lethal_field_v_cm`); alpha makes the short anchor protocol
    (Miklavcic 2000: 8 x 100 us) reach the measured irreversible threshold from the physical E_ref.
    Longer or more pulses kill at a lower field (data/arrays.yaml).
    """
    if not (pulses > 0 and pulse_length_us > 0):
        raise InputError(f"pulses and pulse length must be > 0, got {pulses} x {pulse_length_us} us", field="pulses")
    pr = protocol or load_array_data().ire.lethal_field_protocol
    ref = pr.reference_pulses.value * pr.reference_pulse_length_us.value
    anchor = pr.anchor_pulses.value * pr.anchor_pulse_length_us.value
    alpha = math.log(props.irreversible_field_v_cm.value / props.lethal_field_v_cm.value) / math.log(ref / anchor)
    return float(grid_lethal_field_v_cm(props, voxel_mm) * (pulses * pulse_length_us / ref) ** -alpha)


def electrode_mask(grid: Grid, tip: Sequence[float], direction: Sequence[float], exposure_mm: float, radius_mm: float) -> np.ndarray:
    """Voxels of an electrode's exposed segment (tip back ``exposure_mm``): the voxel nearest the axis
    at every step along it, plus, where the voxels are no larger than the needle's radius, every
    voxel centre within that radius.

    A needle thinner than a voxel is thus exactly one line of voxels wherever its axis runs, so its
    effective radius on the grid does not depend on where the axis crosses the voxels (centres within
    the radius would take 1, 2 or 4 voxels per slice there, and a 2 x 2 electrode made the zone up to
    50 % deeper). On coarse grids the line acts thinner than the needle (the lethal field is calibrated
    per voxel size, data/arrays.yaml); at 0.5 mm the field between two electrodes matches the analytic
    two-cylinder field (tests/physics/test_physics_arrays.py).
    """
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    h = float(grid.spacing.min())
    if radius_mm >= float(grid.spacing.max()):
        s, rho = probe_coordinates(grid, tip, direction)
        m = (_segment_distance(s, rho, exposure_mm) <= radius_mm) & (s >= -exposure_mm - 1e-9)
    else:
        m = np.zeros(grid.shape, bool)
    steps = np.arange(0.0, exposure_mm + 1e-9, 0.25 * h)
    ijk = np.rint(grid.world_to_index(np.asarray(tip, float) - steps[:, None] * d)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(grid.shape[::-1])), axis=1)
    ijk = ijk[inside]
    m[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = True
    if not m.any():
        raise InputError("electrode exposure lies outside the grid", field="tips_lps")
    return m


class _Laplace:
    """div(sigma grad phi) = 0 with Dirichlet voxels, assembled for the free voxels only."""

    def __init__(self, shape: tuple[int, int, int], fixed: np.ndarray, h_mm: tuple[float, float, float]):
        self.shape = shape
        self.fixed = fixed
        free = ~fixed
        self.free_flat = free.ravel()
        self.n = int(self.free_flat.sum())
        self.fidx = np.full(fixed.size, -1, dtype=np.int64)
        self.fidx[self.free_flat] = np.arange(self.n)
        idx = np.arange(fixed.size).reshape(shape)
        self.faces = []
        for axis in range(3):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis] = slice(0, shape[axis] - 1)
            b[axis] = slice(1, shape[axis])
            ia, ib = idx[tuple(a)].ravel(), idx[tuple(b)].ravel()
            fa, fb = self.free_flat[ia], self.free_flat[ib]
            keep = fa | fb
            # area / length of a face: h_other1 * h_other2 / h_axis
            hk, hj, hi = h_mm
            hh = (hk, hj, hi)
            geo = hh[(axis + 1) % 3] * hh[(axis + 2) % 3] / hh[axis]
            self.faces.append((ia[keep], ib[keep], geo))

    def system(self, sigma: np.ndarray, phi_fixed: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
        s = sigma.ravel()
        pf = phi_fixed.ravel()
        diag = np.zeros(self.n)
        rhs = np.zeros(self.n)
        rows, cols, vals = [], [], []
        for ia, ib, geo in self.faces:
            g = geo * 2.0 * s[ia] * s[ib] / (s[ia] + s[ib])
            fa, fb = self.free_flat[ia], self.free_flat[ib]
            ja, jb = self.fidx[ia], self.fidx[ib]
            np.add.at(diag, ja[fa], g[fa])
            np.add.at(diag, jb[fb], g[fb])
            both = fa & fb
            rows.append(ja[both])
            cols.append(jb[both])
            vals.append(-g[both])
            oa = fa & ~fb
            np.add.at(rhs, ja[oa], g[oa] * pf[ib[oa]])
            ob = fb & ~fa
            np.add.at(rhs, jb[ob], g[ob] * pf[ia[ob]])
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        v = np.concatenate(vals)
        off = sparse.coo_matrix((v, (r, c)), shape=(self.n, self.n))
        mat = (off + off.T + sparse.diags(diag)).tocsr()
        return mat, rhs

    def full(self, x: np.ndarray, phi_fixed: np.ndarray) -> np.ndarray:
        out = phi_fixed.ravel().copy()
        out[self.free_flat] = x
        return out.reshape(self.shape)


def _converged(info: int) -> None:
    if info != 0:  # never return a field that did not converge: the zone would be wrong either way
        raise RuntimeError(f"electric field solve did not converge (CG info {info})")


def _field_v_cm(phi: np.ndarray, spacing_kji: tuple[float, float, float]) -> np.ndarray:
    gk, gj, gi = np.gradient(phi, *spacing_kji)  # V/mm
    return 10.0 * np.sqrt(gk * gk + gj * gj + gi * gi)


def solve_pair_field(
    grid: Grid,
    plus: np.ndarray,
    minus: np.ndarray,
    voltage_v: float,
    props: IRETissue,
    *,
    nonlinear: bool = True,
    max_iterations: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Potential (V), |E| (V/cm) and conductivity (S/m) of one pulsed pair, and the CG iterations.

    ``plus`` / ``minus``: electrode voxel masks held at ``voltage_v`` and 0 V.
    """
    fixed = plus | minus
    phi_fixed = np.where(plus, float(voltage_v), 0.0)
    sp = tuple(float(s) for s in grid.spacing[::-1])  # (k, j, i) mm
    lap = _Laplace(grid.shape, fixed, sp)  # type: ignore[arg-type]
    sigma = np.full(grid.shape, props.conductivity_s_m.value)
    mat, rhs = lap.system(sigma, phi_fixed)
    x0 = np.full(lap.n, 0.5 * voltage_v)
    iters = [0]

    def count(_x: np.ndarray) -> None:
        iters[0] += 1

    x, info = cg(mat, rhs, x0=x0, rtol=RTOL, M=sparse.diags(1.0 / mat.diagonal()), maxiter=5000, callback=count)
    _converged(info)
    phi = lap.full(x, phi_fixed)
    e = _field_v_cm(phi, sp)
    if nonlinear:
        for _ in range(max_iterations):
            new_sigma = np.maximum(sigma, conductivity_of_field(e, props))
            change = float(np.abs(new_sigma - sigma).max()) / props.conductivity_s_m.value
            sigma = new_sigma
            if change < 0.02:
                break
            mat, rhs = lap.system(sigma, phi_fixed)
            x, info = cg(mat, rhs, x0=x, rtol=RTOL, M=sparse.diags(1.0 / mat.diagonal()), maxiter=5000, callback=count)
            _converged(info)
            phi = lap.full(x, phi_fixed)
            e = _field_v_cm(phi, sp)
    return phi, e, sigma, iters[0]


def electrode_pairs(tips: np.ndarray, max_distance_mm: float) -> list[tuple[int, int, float]]:
    """All electrode pairs no farther apart than ``max_distance_mm`` (distance between the tips)."""
    out = []
    for a, b in itertools.combinations(range(len(tips)), 2):
        d = float(np.linalg.norm(tips[a] - tips[b]))
        if d <= max_distance_mm + 1e-6:
            out.append((a, b, d))
    return out


def ire_array_zone(
    tips_lps: Sequence[Sequence[float]],
    directions_lps: Sequence[Sequence[float]],
    *,
    grid: Grid | None = None,
    exposure_mm: float | None = None,
    voltage_v: float | Sequence[float] | None = None,
    field_v_per_cm: float | None = None,
    tissue: str = "liver",
    options: IREOptions | None = None,
) -> ArrayZone:
    """Lethal zone of an IRE electrode array: the union over pulsed pairs of |E| >= lethal field.

    Pairs: every two electrodes no farther apart than the maximum pair distance (25 mm), pulsed in
    sequence. Voltage per pair: ``voltage_v`` (one value, or one per pair) or ``field_v_per_cm`` x
    the pair's widest spacing along the exposure (default 1500 V/cm), capped at the generator maximum (3000 V).
    """
    t0 = time.perf_counter()
    data = load_array_data().ire
    opt = options or IREOptions()
    props = data.tissue(tissue)
    tips, dirs = probe_arrays(tips_lps, directions_lps)
    if len(tips) < 2:
        raise InputError("IRE needs at least two electrodes", field="tips_lps")
    axis = mean_axis(dirs)
    expo = float(exposure_mm if exposure_mm is not None else data.exposure_mm.value)
    if not expo > 0:
        raise InputError(f"exposure must be > 0 mm, got {expo}", field="exposure_mm")
    radius = opt.electrode_radius_mm or data.electrode_radius_mm.value
    vmax = opt.max_voltage_v or data.max_voltage_v.value
    dmax = opt.max_pair_distance_mm or data.max_pair_distance_mm.value
    pairs = electrode_pairs(tips, dmax)
    if not pairs:
        raise InputError(f"no two electrodes lie within {dmax:g} mm of each other: nothing can be pulsed", field="tips_lps")
    notes = []
    if voltage_v is not None:
        vs = np.atleast_1d(np.asarray(voltage_v, float))
        if vs.size == 1:
            vs = np.repeat(vs, len(pairs))
        if vs.size != len(pairs):
            raise InputError(f"{vs.size} voltages for {len(pairs)} pulsed pairs", field="voltage_v")
    else:
        fv = float(field_v_per_cm if field_v_per_cm is not None else data.field_v_per_cm.value)
        # each pair's voltage from its widest spacing along the exposure (tips or back end: electrodes
        # that converge or diverge); parallel electrodes: the tip distance
        widest = [max(d, float(np.linalg.norm((tips[a] - expo * dirs[a]) - (tips[b] - expo * dirs[b]))))
                  for a, b, d in pairs]
        vs = np.array([fv * w / 10.0 for w in widest])
    if np.any(vs <= 0):
        raise InputError("pair voltages must be > 0 V", field="voltage_v")
    if np.any(vs > vmax + 1e-9):
        notes.append(f"pair voltage capped at the generator maximum {vmax:g} V ({data.max_voltage_v.source})")
        vs = np.minimum(vs, vmax)
    n_pulses = int(opt.pulses or data.pulses_per_pair.value)
    plen_us = float(opt.pulse_length_us or data.pulse_length_us.value)
    if grid is None:
        ends = np.concatenate([tips, tips - expo * dirs])
        grid = box_grid(ends, opt.margin_mm, opt.spacing_mm)
    voxel = float(np.max(grid.spacing))
    if voxel > 1.02 * float(np.min(grid.spacing)):
        raise InputError(f"the IRE field needs cubic voxels, got {np.round(grid.spacing, 3).tolist()} mm", field="grid")
    lethal_e = opt.lethal_field_v_cm or lethal_field_v_cm(props, n_pulses, plen_us, data.lethal_field_protocol, voxel)
    masks = [electrode_mask(grid, t, d, expo, radius) for t, d in zip(tips, dirs, strict=True)]
    emax = np.zeros(grid.shape)
    sig_e2 = []
    cg_iters = 0
    for (a, b, _), v in zip(pairs, vs, strict=True):
        _, e, sigma, it = solve_pair_field(grid, masks[a], masks[b], float(v), props,
                                           nonlinear=opt.nonlinear, max_iterations=opt.max_iterations)
        cg_iters += it
        e = np.where(masks[a] | masks[b], np.maximum(e, lethal_e), e)  # electrode voxels: inside the zone
        np.maximum(emax, e, out=emax)
        sig_e2.append(sigma * (e * 100.0) ** 2)  # W/m^3 during a pulse (E in V/m)
    lethal = emax >= lethal_e
    rev = emax >= props.reversible_field_v_cm.value
    dims = measure_dims(lethal, grid, tips, axis)
    plen = plen_us * 1e-6
    rate = float(opt.pulse_rate_hz or data.pulse_rate_hz.value)
    train_s = n_pulses / rate
    duration = train_s * len(pairs)
    tmax = None
    thermal_ml = None
    tfield = None
    if opt.heating:
        table = load_tissue_table()
        medium = homogeneous_medium(grid, tissue, table)
        sources = [HeatSource(q * plen * rate, [(k * train_s, (k + 1) * train_s, 1.0)], name=f"pair {k + 1}")
                   for k, q in enumerate(sig_e2)]
        sol = solve_pennes(medium, duration, sources=sources, table=table)
        tfield = sol.max_temperature_c
        tmax = float(tfield.max())
        thermal = sol.cem43_min[-1] >= table.thermal_dose.lethal_cem43_min.value
        thermal_ml = float(thermal.sum()) * grid.voxel_volume_mm3 / 1000.0
        if thermal_ml > 0:
            notes.append(f"Joule heating reaches a lethal thermal dose in {thermal_ml:.2f} ml (peak {tmax:.0f} C): "
                         "thermal injury beside the electrodes")
    adiabatic = max(float(q.max()) for q in sig_e2) * n_pulses * plen / load_tissue_table().tissue(tissue).volumetric_heat_capacity
    notes.append(f"adiabatic upper bound of the temperature rise in the hottest voxel of one pair: {adiabatic:.1f} K")
    notes.append(f"{len(pairs)} pairs pulsed, {n_pulses} pulses of {plen * 1e6:g} us at {rate:g} Hz each; "
                 f"non-pulsed electrodes treated as tissue; {cg_iters} CG iterations")
    if opt.nonlinear is False:
        notes.append("conductivity held at its baseline (no electroporation rise)")
    return ArrayZone(
        modality="ire", n_probes=len(tips), dims=dims, criterion=f"|E| >= {lethal_e:g} V/cm",
        threshold=float(lethal_e),
        threshold_source=(f"{n_pulses} x {plen_us:g} us train: {data.lethal_field_protocol.form.value} anchored on "
                          f"{props.lethal_field_v_cm.value:g} V/cm at {data.lethal_field_protocol.reference_pulses.value} x "
                          f"{data.lethal_field_protocol.reference_pulse_length_us.value:g} us ({props.lethal_field_v_cm.source}); "
                          f"{grid_lethal_field_v_cm(props, voxel):g} V/cm there on {voxel:g} mm voxels"
                          if opt.lethal_field_v_cm is None else "user override"),
        outer_dims=measure_dims(rev, grid, tips, axis),
        peak_field_v_cm=float(np.where(np.logical_or.reduce(masks), 0.0, emax).max()),
        max_temperature_c=tmax, thermal_damage_ml=thermal_ml,
        pairs=[(a, b, float(v)) for (a, b, _), v in zip(pairs, vs, strict=True)],
        duration_s=duration, spacing_mm=float(grid.spacing.min()), runtime_s=time.perf_counter() - t0,
        notes=notes, mask=lethal, grid=grid, temperature_c=tfield, field_v_cm=emax.astype(np.float32),
    )


__all__ = ["IREOptions", "conductivity_of_field", "electrode_mask", "electrode_pairs", "grid_lethal_field_v_cm", "ire_array_zone", "lethal_field_v_cm",
           "solve_pair_field"]
