"""Calibration reproduces target axes; the calibrated Emprint source shows a vessel heat sink."""

from __future__ import annotations

import pytest

from openir.physics.calibrate import CalibrationFit, calibrate_microwave, microwave_zone
from openir.physics.heatsink import VesselSetup, ZoneGrid, microwave_heat_sink
from openir.physics.presets import find_device, source_parameters
from openir.physics.vessels import wall_heat_transfer


def test_calibration_hits_targets_on_coarse_grid() -> None:
    res = calibrate_microwave(13.0, 10.0, device="test", power_w=60, time_s=300, feed_offset_mm=8, sigma_radial_mm=4,
                              target_source="test",
                              fit=CalibrationFit(spacing_mm=2.0, coarse_spacing_mm=2.0, initial=(0.2, 6.0)))
    along, across = res.achieved_semi_axes_mm
    assert along == pytest.approx(13.0, abs=0.3) and across == pytest.approx(10.0, abs=0.3)
    # the fitted values reproduce the zone when simulated again
    z = microwave_zone(res.fitted["absorbed_fraction"], res.fitted["sigma_axial_mm"], power_w=60, time_s=300,
                       feed_offset_mm=8, sigma_radial_mm=4, spacing_mm=2.0, box_mm=2 * 13 + 16 + 30)
    assert z == pytest.approx((along, across), abs=0.01)  # fitted values are stored rounded


def _emprint() -> dict[str, float]:
    _, dev = find_device("emprint")
    params, notes = source_parameters(dev, 100, 600)
    assert not notes  # an exact calibrated setting exists
    return params


def test_packaged_emprint_calibration_matches_table_within_2_mm() -> None:
    p = _emprint()
    along, across = microwave_zone(p["absorbed_fraction"], p["sigma_axial_mm"], power_w=100, time_s=600,
                                   feed_offset_mm=p["feed_offset_mm"], sigma_radial_mm=p["sigma_radial_mm"],
                                   spacing_mm=1.5, box_mm=90)
    assert abs(2 * along - 42.0) <= 2.0 and abs(2 * across - 36.0) <= 2.0


def test_vessel_clips_the_zone() -> None:
    p = _emprint()
    res = microwave_heat_sink(power_w=100, time_s=600, absorbed_fraction=p["absorbed_fraction"],
                              sigma_axial_mm=p["sigma_axial_mm"], feed_offset_mm=p["feed_offset_mm"],
                              sigma_radial_mm=p["sigma_radial_mm"],
                              vessel=VesselSetup(diameter_mm=6.0, axis_distance_mm=14.0),
                              grid=ZoneGrid(spacing_mm=2.0, box_mm=80))
    towards_h, towards_v = res.radius_towards_vessel_mm
    away_h, away_v = res.radius_away_mm
    assert towards_v < towards_h - 2.0  # clipped on the vessel side
    assert abs(away_v - away_h) < abs(towards_v - towards_h)
    assert res.volume_shrinkage_pct > 3.0


def test_wall_heat_transfer_grows_with_flow() -> None:
    slow = wall_heat_transfer(6.0, 0.01)
    fast = wall_heat_transfer(6.0, 0.3)
    turbulent = wall_heat_transfer(20.0, 1.0)
    assert 0 < slow < fast
    assert slow >= 3.66 * 0.52 / 0.006 * 0.999  # never below fully developed laminar flow
    assert turbulent > 0
