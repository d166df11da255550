"""Radioactive seed implantation (I-125): TG-43U1 dose, needles and template, inverse planning.

`get_seed_model` reads the seed catalogue (TG-43U1 consensus tables with their sources);
`dose_rate_grid` / `total_dose_gy` compute the dose of any number of seeds on a patient grid with
precomputed kernels (numba). `plan_seeds` plans an implant (site protocol, template or free-hand
needles checked with `openir.plan` trajectories, inverse placement: fewest needles, then fewest
seeds) and returns a `SeedPlan` with D90, V100, ... (`dose_metrics`); `template_mesh` / `write_stl`
export the skin-fitted needle template.
"""

from .catalogue import get_seed_model, load_seed_models, seed_model_names
from .metrics import OrganMask, d_cc, d_percent, dose_metrics, dvh
from .models import (
    AnisotropyTable,
    DoseMetrics,
    DvhCurve,
    OrganDose,
    PlannedNeedle,
    RadialDoseTable,
    Seed,
    SeedCatalogue,
    SeedModel,
    SeedPlan,
    TemplateFrame,
    registry_dosimetry,
)
from .needles import NeedleOptions
from .planner import SeedPlanOptions, SeedPlanResult, plan_seeds, planning_target
from .sites import SiteProtocol, get_site, load_sites
from .template import TemplateOptions, needle_table_csv, needle_table_rows, template_mesh, write_stl
from .tg43 import (
    DoseKernel,
    DoseOptions,
    air_kerma_strength_from_apparent_activity,
    anisotropy_1d,
    anisotropy_2d,
    build_kernel,
    dose_rate_1d,
    dose_rate_2d,
    dose_rate_at_points,
    dose_rate_grid,
    geometry_line,
    kernel_for,
    radial_dose,
    total_dose_gy,
    total_dose_gy_from_rate,
)

__all__ = [
    "NeedleOptions",
    "OrganMask",
    "PlannedNeedle",
    "SeedPlan",
    "SeedPlanOptions",
    "SeedPlanResult",
    "SiteProtocol",
    "TemplateFrame",
    "TemplateOptions",
    "d_cc",
    "d_percent",
    "dose_metrics",
    "dvh",
    "get_site",
    "load_sites",
    "needle_table_csv",
    "needle_table_rows",
    "plan_seeds",
    "planning_target",
    "registry_dosimetry",
    "template_mesh",
    "write_stl",
    "AnisotropyTable",
    "DoseKernel",
    "DoseMetrics",
    "DoseOptions",
    "DvhCurve",
    "OrganDose",
    "RadialDoseTable",
    "Seed",
    "SeedCatalogue",
    "SeedModel",
    "air_kerma_strength_from_apparent_activity",
    "anisotropy_1d",
    "anisotropy_2d",
    "build_kernel",
    "dose_rate_1d",
    "dose_rate_2d",
    "dose_rate_at_points",
    "dose_rate_grid",
    "geometry_line",
    "get_seed_model",
    "kernel_for",
    "load_seed_models",
    "radial_dose",
    "seed_model_names",
    "total_dose_gy",
    "total_dose_gy_from_rate",
]
