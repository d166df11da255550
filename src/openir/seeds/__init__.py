"""Radioactive seed implantation (I-125): TG-43U1 dose, needles and template, inverse planning.

`get_seed_model` reads the seed catalogue (TG-43U1 consensus tables with their sources);
`dose_rate_grid` / `total_dose_gy` compute the dose of any number of seeds on a patient grid with
precomputed kernels (numba). Planning, template export and post-implant dosimetry build on them.
"""

from .catalogue import get_seed_model, load_seed_models, seed_model_names
from .models import (
    AnisotropyTable,
    DoseMetrics,
    DvhCurve,
    OrganDose,
    RadialDoseTable,
    Seed,
    SeedCatalogue,
    SeedModel,
)
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
