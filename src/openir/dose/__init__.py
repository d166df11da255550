"""Radiation dose monitoring: RDSR parsing, storage and DICOM reception, alerts, reference levels, skin dose."""

from .alerts import AlertThresholds, jsonl_hook, load_thresholds, patient_alerts, procedure_alerts
from .models import (
    AccumulatedDose,
    CTAcquisition,
    DoseAlert,
    DoseReport,
    DoseSummary,
    IrradiationEvent,
    ReferenceComparison,
    ReferenceLevel,
    SkinDoseResult,
    XRayFilter,
)
from .rdsr import RDSRError, parse_rdsr
from .reference_levels import METRIC_UNITS, compare, reference_levels
from .skin_dose import peak_skin_dose, skin_dose_maps
from .store import DoseStore, ImportResult, ReportEntry, StoredAlert

__all__ = [
    "METRIC_UNITS",
    "AccumulatedDose",
    "AlertThresholds",
    "CTAcquisition",
    "DoseAlert",
    "DoseReport",
    "DoseStore",
    "DoseSummary",
    "ImportResult",
    "IrradiationEvent",
    "RDSRError",
    "ReportEntry",
    "ReferenceComparison",
    "ReferenceLevel",
    "SkinDoseResult",
    "StoredAlert",
    "XRayFilter",
    "compare",
    "jsonl_hook",
    "load_thresholds",
    "parse_rdsr",
    "patient_alerts",
    "peak_skin_dose",
    "procedure_alerts",
    "reference_levels",
    "skin_dose_maps",
]
