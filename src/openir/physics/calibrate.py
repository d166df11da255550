"""Calibrating a device's source strength against its zone table.

The source models are phenomenological, so their strength (absorbed fraction of the set power) and
axial extent are fitted so that the simulated lethal zone in homogeneous liver matches the table's
semi-axes (along and across the shaft) for a given power and time. Fit by least squares on a coarse
grid (cheap), then a few Newton steps with the coarse Jacobian on the target grid, so the fitted
values are right for the spacing the planner simulates at.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from openir.core.errors import InputError

from .bioheat import HeatSource, solve_pennes
from .models import CalibrationResult, Criterion
from .simulate import criterion_threshold, cube_grid, homogeneous_medium
from .sources import microwave_pattern
from .tissues import TissueTable, load_tissue_table
from .zone import zone_axes

AXIS = (0.0, 0.0, 1.0)  # probe along +S in the calibration cube


def microwave_zone(
    absorbed_fraction: float,
    sigma_axial_mm: float,
    *,
    power_w: float,
    time_s: float,
    feed_offset_mm: float,
    sigma_radial_mm: float,
    spacing_mm: float,
    box_mm: float,
    criterion: Criterion = "cem43",
    table: TissueTable | None = None,
) -> tuple[float, float]:
    """Semi-axes (along, across; mm) of the lethal zone of one antenna in homogeneous liver."""
    t = table or load_tissue_table()
    feed = np.array([0.0, 0.0, 0.0])
    tip = feed + feed_offset_mm * np.asarray(AXIS)
    grid = cube_grid(feed, box_mm, spacing_mm)
    pat = microwave_pattern(grid, tip, AXIS, feed_offset_mm=feed_offset_mm, sigma_radial_mm=sigma_radial_mm,
                            sigma_axial_mm=sigma_axial_mm, absorbed_fraction=absorbed_fraction)
    sol = solve_pennes(homogeneous_medium(grid, "liver", t), time_s, sources=[HeatSource(pat, [(0.0, time_s, power_w)])], table=t)
    thr, _ = criterion_threshold(criterion, t)
    field = sol.cem43_min[-1] if criterion == "cem43" else sol.damage[-1]
    z = zone_axes(field, grid, thr, tip, AXIS, reach_mm=box_mm / 2)
    return z.semi_axes_mm


@dataclass(frozen=True)
class CalibrationFit:
    """How the fit runs: final ``spacing_mm`` (the planner's grid), the cheap ``coarse_spacing_mm``
    for least squares, the lethal ``criterion``, the accepted error ``tol_mm`` on each semi-axis and
    the ``initial`` (absorbed_fraction, sigma_axial_mm).

    >>> CalibrationFit(spacing_mm=2.0).coarse_spacing_mm
    2.0
    """

    spacing_mm: float = 1.0
    coarse_spacing_mm: float = 2.0
    criterion: Criterion = "cem43"
    tol_mm: float = 0.2
    initial: tuple[float, float] = (0.3, 8.0)


def calibrate_microwave(
    target_along_mm: float,
    target_across_mm: float,
    *,
    device: str,
    power_w: float,
    time_s: float,
    feed_offset_mm: float,
    sigma_radial_mm: float,
    target_source: str,
    fit: CalibrationFit | None = None,
    table: TissueTable | None = None,
) -> CalibrationResult:
    """Fit (absorbed_fraction, sigma_axial_mm) so the zone semi-axes match the targets (mm);
    ``fit`` (CalibrationFit) sets grids, criterion, tolerance and start values."""
    f = fit or CalibrationFit()
    spacing_mm, coarse_spacing_mm, criterion, tol_mm, initial = (f.spacing_mm, f.coarse_spacing_mm, f.criterion,
                                                                  f.tol_mm, f.initial)
    if target_along_mm <= 0 or target_across_mm <= 0:
        raise InputError("target semi-axes must be > 0 mm")
    t0 = time.perf_counter()
    box = 2 * max(target_along_mm, target_across_mm) + 2 * feed_offset_mm + 30.0
    target = np.array([target_along_mm, target_across_mm])
    count = 0

    def resid(x: np.ndarray, h: float) -> np.ndarray:
        nonlocal count
        count += 1
        a, s = math.exp(x[0]), math.exp(x[1])
        z = microwave_zone(a, s, power_w=power_w, time_s=time_s, feed_offset_mm=feed_offset_mm, sigma_radial_mm=sigma_radial_mm,
                           spacing_mm=h, box_mm=box, criterion=criterion, table=table)
        return np.array(z) - target

    x0 = np.log(np.asarray(initial, float))
    bounds = (np.log([1e-3, 1.0]), np.log([1.0, 40.0]))
    lsq = least_squares(resid, x0, args=(coarse_spacing_mm,), bounds=bounds, diff_step=0.03, xtol=1e-4, ftol=1e-4, max_nfev=40)
    x = lsq.x
    jac = lsq.jac
    r = resid(x, spacing_mm)
    for _ in range(6):  # Newton steps on the target grid with the coarse Jacobian
        if np.abs(r).max() <= tol_mm:
            break
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        x = np.clip(x + step, bounds[0], bounds[1])
        r = resid(x, spacing_mm)
    achieved = tuple(float(v) for v in r + target)
    return CalibrationResult(
        device=device, kind="microwave", power_w=power_w, time_s=time_s,
        target_semi_axes_mm=(target_along_mm, target_across_mm), target_source=target_source,
        fitted={"absorbed_fraction": round(math.exp(x[0]), 5), "sigma_axial_mm": round(math.exp(x[1]), 4)},
        achieved_semi_axes_mm=achieved,  # type: ignore[arg-type]
        spacing_mm=spacing_mm, criterion=criterion, evaluations=count, runtime_s=time.perf_counter() - t0,
    )
