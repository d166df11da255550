"""Bioheat physics: Pennes solver, ablation sources, vessel heat sinks, thermal dose and damage.

Plain functions over voxel arrays (SI inside, mm at the borders); tissue data and device source
calibrations in ``data/*.yaml`` with their sources.
"""

from .analytic import gaussian_source_rise
from .array_table import ArraySetting, array_zone_dimensions
from .arrays import (
    ArrayDims,
    ArrayZone,
    ZoneGrowthPoint,
    canonical_layout,
    layout_tips,
    load_array_data,
)
from .bioheat import (
    BioheatSolution,
    HeatSource,
    HeldSource,
    SolverOptions,
    ThermalMedium,
    solve_pennes,
    stable_time_step,
)
from .calibrate import CalibrationFit, calibrate_microwave, microwave_zone
from .cryo_array import CryoOptions, FreezeStep, cryo_array_zone, schedule_from_minutes
from .dose import arrhenius_damage, cem43
from .heatsink import VesselSetup, ZoneGrid, microwave_heat_sink
from .ire import (
    IREOptions,
    conductivity_of_field,
    electrode_pairs,
    grid_lethal_field_v_cm,
    ire_array_zone,
    lethal_field_v_cm,
)
from .models import (
    CalibrationResult,
    HeatSinkResult,
    ProbeSource,
    ScheduleStep,
    SimulationRequest,
    SimulationResult,
    ZoneSnapshot,
)
from .presets import find_device, load_presets, source_parameters
from .simulate import SimulationFields, cube_grid, homogeneous_medium, labelled_medium, simulate
from .sources import cryoprobe_mask, laser_pattern, microwave_pattern, rf_pattern
from .tissues import load_tissue_table, tissue_for_label
from .vessels import wall_heat_transfer
from .zone import ZoneAxes, zone_axes

__all__ = [
    "ArrayDims",
    "ArraySetting",
    "ArrayZone",
    "CryoOptions",
    "FreezeStep",
    "IREOptions",
    "grid_lethal_field_v_cm",
    "lethal_field_v_cm",
    "ZoneGrowthPoint",
    "array_zone_dimensions",
    "canonical_layout",
    "conductivity_of_field",
    "cryo_array_zone",
    "electrode_pairs",
    "ire_array_zone",
    "layout_tips",
    "load_array_data",
    "schedule_from_minutes",
    "BioheatSolution",
    "CalibrationResult",
    "HeatSinkResult",
    "HeatSource",
    "HeldSource",
    "ProbeSource",
    "ScheduleStep",
    "SimulationFields",
    "SimulationRequest",
    "SimulationResult",
    "SolverOptions",
    "CalibrationFit",
    "VesselSetup",
    "ZoneGrid",
    "ThermalMedium",
    "ZoneAxes",
    "ZoneSnapshot",
    "arrhenius_damage",
    "calibrate_microwave",
    "cem43",
    "cryoprobe_mask",
    "cube_grid",
    "find_device",
    "gaussian_source_rise",
    "homogeneous_medium",
    "labelled_medium",
    "laser_pattern",
    "load_presets",
    "load_tissue_table",
    "microwave_heat_sink",
    "microwave_pattern",
    "microwave_zone",
    "rf_pattern",
    "simulate",
    "solve_pennes",
    "source_parameters",
    "stable_time_step",
    "tissue_for_label",
    "wall_heat_transfer",
    "zone_axes",
]
