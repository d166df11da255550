"""Pydantic results of the dose package: what an RDSR says, alerts, reference levels, skin dose.

Units are canonical and carried in field names (Gy, Gy·cm², mGy, mGy·cm, s, mm, kV, mA), whatever
spelling the vendor used in the report.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .enums import AlertScope, Grouping, Plane, ReferenceLevelKind, ReportKind


class XRayFilter(BaseModel):
    """One beam filter of an irradiation event (TID 10003, X-Ray Filters container)."""

    material: str | None = None
    thickness_min_mm: float | None = None
    thickness_max_mm: float | None = None


class IrradiationEvent(BaseModel):
    """One irradiation event of a projection X-ray RDSR (TID 10003)."""

    uid: str | None = None
    datetime_started: datetime | None = None
    event_type: str | None = Field(None, description="e.g. Fluoroscopy, Stationary Acquisition")
    is_fluoroscopy: bool = False
    protocol: str | None = None
    plane: Plane = "single"
    kap_gy_cm2: float | None = None
    dose_rp_gy: float | None = None
    kvp_kv: float | None = None
    tube_current_ma: float | None = None
    pulse_rate_per_s: float | None = None
    pulse_width_ms: float | None = None
    number_of_pulses: float | None = None
    irradiation_duration_s: float | None = None
    filters: list[XRayFilter] = Field(default_factory=list)
    field_area_cm2: float | None = Field(None, description="collimated field area as reported")
    field_height_mm: float | None = None
    field_width_mm: float | None = None
    primary_angle_deg: float | None = Field(None, description="positioner primary angle (LAO +)")
    secondary_angle_deg: float | None = Field(None, description="positioner secondary angle (CRA +)")
    source_isocenter_mm: float | None = None
    source_detector_mm: float | None = None
    table_longitudinal_mm: float | None = None
    table_lateral_mm: float | None = None
    table_height_mm: float | None = None
    table_head_tilt_deg: float | None = None
    table_cradle_tilt_deg: float | None = None
    reference_point: str | None = None
    target_region: str | None = None
    # TID 10003 / 10003B details (None when the report does not give them)
    patient_orientation: str | None = Field(None, description="e.g. Recumbent (113743)")
    patient_orientation_modifier: str | None = Field(None, description="e.g. supine (113744)")
    patient_table_relationship: str | None = Field(None, description="e.g. headfirst (113745)")
    fluoro_mode: str | None = Field(None, description="Pulsed or Continuous (113732)")
    average_tube_current_ma: float | None = None
    exposure_uas: float | None = Field(None, description="exposure (tube current-time product, 113736) in µAs")
    focal_spot_mm: float | None = None
    grid: list[str] = Field(default_factory=list, description="X-Ray Grid codes (111635), e.g. Fixed Grid")
    exposure_index: float | None = None
    target_exposure_index: float | None = None
    deviation_index: float | None = None
    image_view: str | None = Field(None, description="e.g. cranio-caudal (mammography)")
    exposure_time_ms: float | None = Field(None, description="Exposure Time (113735)")
    intensifier_size_mm: float | None = Field(
        None, description="image intensifier / detector field diameter (Siemens: iiDiameter in the event comment)")
    detector_field_x_mm: float | None = Field(None, description="Philips private Detector Field Size, X side")
    detector_field_y_mm: float | None = Field(None, description="Philips private Detector Field Size, Y side")
    # mammography (TID 10003 with the mammography rows)
    average_glandular_dose_mgy: float | None = None
    entrance_exposure_at_rp_mgy: float | None = None
    compression_thickness_mm: float | None = None
    half_value_layer_mm: float | None = None
    anode_target_material: str | None = None


class AccumulatedDose(BaseModel):
    """Accumulated X-ray dose of one plane (TID 10002 + 10004)."""

    plane: Plane = "single"
    kap_total_gy_cm2: float | None = None
    dose_rp_total_gy: float | None = None
    fluoro_kap_gy_cm2: float | None = None
    fluoro_dose_rp_gy: float | None = None
    acquisition_kap_gy_cm2: float | None = None
    acquisition_dose_rp_gy: float | None = None
    fluoro_time_s: float | None = None
    acquisition_time_s: float | None = None
    radiographic_frames: float | None = None
    number_of_events: int | None = Field(None, description="113812 when the report states it")
    reference_point: str | None = None
    accumulated_agd_mgy: list[float] = Field(default_factory=list,
                                             description="Accumulated Average Glandular Dose per breast (mammography, 111637)")


class CTSource(BaseModel):
    """One X-ray source of a CT acquisition (TID 10013, CT X-Ray Source Parameters)."""

    identification: str | None = None
    kvp_kv: float | None = None
    max_tube_current_ma: float | None = None
    tube_current_ma: float | None = None
    exposure_time_per_rotation_s: float | None = None


class CTDoseCheck(BaseModel):
    """The scanner's dose check of an acquisition (TID 10015, NEMA XR 25): configured values,
    forward estimates that crossed them, and the reason given for proceeding."""

    alert_dlp_configured_mgy_cm: float | None = None
    alert_ctdivol_configured_mgy: float | None = None
    alert_dlp_mgy_cm: float | None = None
    alert_ctdivol_mgy: float | None = None
    accumulated_dlp_forward_estimate_mgy_cm: float | None = None
    accumulated_ctdivol_forward_estimate_mgy: float | None = None
    notification_dlp_configured_mgy_cm: float | None = None
    notification_ctdivol_configured_mgy: float | None = None
    notification_dlp_mgy_cm: float | None = None
    notification_ctdivol_mgy: float | None = None
    dlp_forward_estimate_mgy_cm: float | None = None
    ctdivol_forward_estimate_mgy: float | None = None
    reasons_for_proceeding: list[str] = Field(default_factory=list)

    @property
    def triggered(self) -> bool:
        """Whether an alert or a notification was reached (a forward estimate is given)."""
        return any(v is not None for v in (self.accumulated_dlp_forward_estimate_mgy_cm,
                                           self.accumulated_ctdivol_forward_estimate_mgy,
                                           self.dlp_forward_estimate_mgy_cm, self.ctdivol_forward_estimate_mgy))


class CTAcquisition(BaseModel):
    """One CT acquisition of a CT RDSR (TID 10013)."""

    uid: str | None = None
    protocol: str | None = None
    acquisition_type: str | None = None
    target_region: str | None = None
    ctdivol_mgy: float | None = None
    dlp_mgy_cm: float | None = None
    phantom: str | None = Field(None, description="CTDIw phantom type, e.g. IEC Body Dosimetry Phantom")
    scan_length_mm: float | None = None
    exposure_time_s: float | None = None
    pitch: float | None = None
    kvp_kv: float | None = None
    tube_current_ma: float | None = None
    nominal_single_collimation_mm: float | None = None
    nominal_total_collimation_mm: float | None = None
    number_of_sources: int | None = None
    sources: list[CTSource] = Field(default_factory=list)
    dose_check: CTDoseCheck | None = None


class DoseReport(BaseModel):
    """One parsed Radiation Dose Structured Report (projection X-ray TID 10001 or CT TID 10011).

    ``kap_total_gy_cm2`` etc. are the report's own accumulated values summed over planes; the
    event list is kept whole so that they can be re-derived and checked.
    """

    kind: ReportKind
    template: str = Field(description="root template id, 10001 or 10011")
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    patient_id: str | None = None
    patient_name: str | None = Field(None, description="as the report gives it; used to recognise QA/phantom studies")
    patient_sex: str | None = None
    patient_birth_date: str | None = None
    accession_number: str | None = None
    institution: str | None = None
    station_name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    device_observer_uid: str | None = None
    device_observer_name: str | None = None
    operator: str | None = Field(None, description="performing physician, when the report names one")
    procedure: str | None = Field(None, description="study / requested procedure description")
    content_datetime: datetime | None = None
    study_datetime: datetime | None = None
    completion_flag: str | None = None
    scope_of_accumulation: str | None = None
    planes: list[AccumulatedDose] = Field(default_factory=list)
    events: list[IrradiationEvent] = Field(default_factory=list)
    kap_total_gy_cm2: float | None = None
    dose_rp_total_gy: float | None = None
    fluoro_time_s: float | None = None
    acquisition_time_s: float | None = None
    number_of_events: int = 0
    ct_acquisitions: list[CTAcquisition] = Field(default_factory=list)
    dlp_total_mgy_cm: float | None = None
    source: str | None = None

    @property
    def room(self) -> str | None:
        """The X-ray room: station name, else the device observer name."""
        return self.station_name or self.device_observer_name

    @property
    def event_uids(self) -> set[str]:
        uids = {e.uid for e in self.events if e.uid} | {a.uid for a in self.ct_acquisitions if a.uid}
        return uids


class DoseAlert(BaseModel):
    """A substantial-dose alert for one procedure or for a patient over a time window."""

    scope: AlertScope
    metric: str = Field(description="kap_gy_cm2 | dose_rp_gy | fluoro_time_s | peak_skin_dose_gy")
    value: float
    threshold: float
    unit: str
    patient_id: str | None = None
    sop_instance_uid: str | None = None
    window_days: float | None = None
    reports: list[str] = Field(default_factory=list, description="SOP instance UIDs summed")
    message: str
    follow_up: str
    source: str


class ReferenceLevel(BaseModel):
    """A diagnostic reference level for one procedure type and metric (ICRP Publication 135)."""

    procedure: str
    metric: str
    unit: str
    level: ReferenceLevelKind
    drl: float = Field(description="75th percentile of the group medians")
    typical_value: float = Field(description="median of the group medians")
    n_groups: int
    n_procedures: int
    min_per_group: int = Field(1, description="minimum procedures per group (ICRP 135 sample)")
    groups_left_out: int = Field(0, description="groups below the minimum, not in the distribution")
    provisional: bool = Field(False, description="no group reached the minimum: computed from all, with a warning")
    warning: str | None = None


class ReferenceComparison(BaseModel):
    """One room's or operator's median against the reference level of its procedure type."""

    procedure: str
    metric: str
    by: Grouping
    name: str
    median: float
    n_procedures: int
    drl: float
    typical_value: float
    ratio_to_drl: float
    above_drl: bool
    provisional: bool = False


class SkinDoseResult(BaseModel):
    """Peak skin dose estimate of one procedure from its event geometry (see skin_dose.py)."""

    peak_skin_dose_gy: float
    dose_rp_total_gy: float
    events_used: int
    events_skipped: int
    face_of_peak: str
    grid_mm: float
    assumptions: list[str]


class DoseSummary(BaseModel):
    """What a batch of dose work produced (the demo's dose result, the CLI report's JSON core)."""

    reports: int
    superseded: int
    events_counted: int
    quarantined: int
    kap_total_gy_cm2: float
    alerts: list[DoseAlert] = Field(default_factory=list)
    reference_levels: list[ReferenceLevel] = Field(default_factory=list)
    rooms_above_drl: list[ReferenceComparison] = Field(default_factory=list)
    skin_dose: list[SkinDoseResult] = Field(default_factory=list)
