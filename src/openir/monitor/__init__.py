"""MR thermometry (PRF shift) and live ablation monitoring: temperature, thermal dose, alerts.

Phase images (DICOM, vendor scaling handled) -> baseline library -> complex phase difference ->
temporal unwrapping -> drift correction over reference tissue -> temperature with per-voxel
uncertainty -> CEM43 / Arrhenius dose (physics.dose) -> lethal zone, target coverage and
per-structure temperature limits (data/thermometry.yaml) -> events and a live view.
"""

from .config import ThermometryTable, load_thermometry
from .drift import DriftModel, fit_drift
from .models import (
    Event,
    FrameResult,
    FrameSummary,
    MonitorPlan,
    MonitorStructure,
    MRFrame,
    PointCurve,
    SkippedFrame,
)
from .phase import group_mr_files, image_kind, phase_to_radians, read_header, read_mr_volume
from .pipeline import run_monitoring
from .prf import (
    BaselineLibrary,
    phase_difference,
    phase_for_temperature,
    prf_rad_per_c,
    temperature_change,
    temporal_unwrap,
    wrap,
)
from .session import MonitorSession, SessionOptions
from .structures import (
    MonitorStructures,
    OrganLimit,
    add_margin,
    load_plan,
    structures_from_labels,
    structures_from_plan,
)
from .uncertainty import background_mask, noise_sigma, snr_map, temperature_sigma
from .watch import FolderWatcher, frame_from_files, read_series_frames

__all__ = [
    "BaselineLibrary",
    "DriftModel",
    "Event",
    "FolderWatcher",
    "FrameResult",
    "FrameSummary",
    "MRFrame",
    "MonitorPlan",
    "MonitorSession",
    "MonitorStructure",
    "MonitorStructures",
    "OrganLimit",
    "PointCurve",
    "SessionOptions",
    "SkippedFrame",
    "ThermometryTable",
    "add_margin",
    "background_mask",
    "fit_drift",
    "frame_from_files",
    "group_mr_files",
    "image_kind",
    "load_plan",
    "load_thermometry",
    "noise_sigma",
    "phase_difference",
    "phase_for_temperature",
    "phase_to_radians",
    "prf_rad_per_c",
    "read_header",
    "read_mr_volume",
    "read_series_frames",
    "run_monitoring",
    "snr_map",
    "structures_from_labels",
    "structures_from_plan",
    "temperature_change",
    "temperature_sigma",
    "temporal_unwrap",
    "wrap",
]
