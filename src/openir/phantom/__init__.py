"""Deterministic synthetic patients (CT + named label map) for demos, tests and benchmarks.

`make_abdomen` builds a portal-venous abdominal CT with liver vessel trees and liver tumours,
`make_chest` a chest CT with ground-glass nodules, and `implant_tumour` paints a synthetic
tumour into a real CT and label map. `synthetic_xray_rdsr`, `synthetic_ct_rdsr` and
`synthetic_dose_survey` give seeded radiation dose reports and surveys. `make_post_implant_ct` builds
a post-implant CT with I-125 seeds at known (planned and true) positions.
"""

from .abdomen import make_abdomen
from .chest import make_chest
from .dose_reports import (
    XrayRdsrSpec,
    synthetic_ct_rdsr,
    synthetic_dose_survey,
    synthetic_xray_rdsr,
)
from .implant import implant_tumour
from .models import BONE_LABELS, VESSEL_LABELS, Phantom, TumourInfo, TumourSpec
from .post_implant import (
    NeedleTruth,
    PostImplantPhantom,
    PostImplantSpec,
    SeedTruth,
    implant_seeds,
    make_post_implant_ct,
    seeds_from_plan,
)

__all__ = [
    "BONE_LABELS",
    "NeedleTruth",
    "VESSEL_LABELS",
    "Phantom",
    "PostImplantPhantom",
    "PostImplantSpec",
    "SeedTruth",
    "TumourInfo",
    "TumourSpec",
    "XrayRdsrSpec",
    "implant_seeds",
    "implant_tumour",
    "make_abdomen",
    "make_chest",
    "make_post_implant_ct",
    "seeds_from_plan",
    "synthetic_ct_rdsr",
    "synthetic_dose_survey",
    "synthetic_xray_rdsr",
]
