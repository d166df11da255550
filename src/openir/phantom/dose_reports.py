"""Synthetic Radiation Dose Structured Reports and dose surveys, for tests, demos and benchmarks.

``synthetic_xray_rdsr`` writes a TID 10001 projection X-ray RDSR content tree item by item as a
modality would (accumulated data per plane, one TID 10003 container per event); its accumulated
values are the sums of the included events, so a partial report (first ``n`` events) and the
cumulative one of the same study can be told apart by their event UIDs. ``synthetic_ct_rdsr``
does the same for TID 10011. ``synthetic_dose_survey`` gives procedure totals of several
facilities for reference-level work. All numbers are synthetic, not clinical reference values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

XRAY_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
# multiply a value in the canonical unit by this to write it in the vendor's spelling
KAP_UNITS = {"Gy.m2": 1e-4, "Gym2": 1e-4, "dGy.cm2": 10.0, "mGy.cm2": 1e3, "Gy.cm2": 1.0, "uGy.m2": 1e2}


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _item(rel: str, vt: str, concept: tuple[str, str, str]) -> Dataset:
    it = Dataset()
    it.RelationshipType = rel
    it.ValueType = vt
    it.ConceptNameCodeSequence = Sequence([_code(*concept)])
    return it


def _container(rel: str, concept: tuple[str, str, str], children: list[Dataset]) -> Dataset:
    it = _item(rel, "CONTAINER", concept)
    it.ContinuityOfContent = "SEPARATE"
    it.ContentSequence = Sequence(children)
    return it


def _num(concept: tuple[str, str, str], value: float, unit: str, rel: str = "CONTAINS") -> Dataset:
    it = _item(rel, "NUM", concept)
    mv = Dataset()
    mv.NumericValue = f"{value:.10g}"[:16]
    mv.MeasurementUnitsCodeSequence = Sequence([_code(unit, "UCUM", unit)])
    it.MeasuredValueSequence = Sequence([mv])
    return it


def _codeitem(concept: tuple[str, str, str], value: tuple[str, str, str], rel: str = "CONTAINS") -> Dataset:
    it = _item(rel, "CODE", concept)
    it.ConceptCodeSequence = Sequence([_code(*value)])
    return it


def _text(concept: tuple[str, str, str], value: str, rel: str = "CONTAINS", vt: str = "TEXT") -> Dataset:
    it = _item(rel, vt, concept)
    if vt == "TEXT":
        it.TextValue = value
    elif vt == "UIDREF":
        it.UID = value
    elif vt == "DATETIME":
        it.DateTime = value
    return it


def D(code: str, meaning: str) -> tuple[str, str, str]:  # noqa: N802 - reads like the standard's tables
    return (code, "DCM", meaning)


PLANE_CODES = {"A": D("113620", "Plane A"), "B": D("113621", "Plane B"), "single": D("113622", "Single Plane")}


@dataclass(frozen=True)
class _Header:
    """The identifying fields of an RDSR (one value each, shared by the X-ray and CT reports)."""

    sop_uid: str
    study_uid: str
    patient_id: str
    when: datetime
    manufacturer: str
    model: str
    station: str
    institution: str
    operator: str | None
    procedure: str
    template: str
    complete: bool


def _header(ds: Dataset, h: _Header) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XRAY_DOSE_SR
    meta.MediaStorageSOPInstanceUID = h.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = XRAY_DOSE_SR, h.sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = h.study_uid, _uid("series", h.sop_uid)
    ds.Modality = "SR"
    ds.PatientID, ds.PatientName, ds.PatientSex = h.patient_id, f"SYNTHETIC^{h.patient_id}", "O"
    ds.StudyDate = ds.ContentDate = h.when.strftime("%Y%m%d")
    ds.StudyTime = h.when.strftime("%H%M%S")
    ds.ContentTime = (h.when + timedelta(hours=1)).strftime("%H%M%S")
    ds.Manufacturer, ds.ManufacturerModelName = h.manufacturer, h.model
    ds.StationName, ds.InstitutionName = h.station, h.institution
    if h.operator:
        ds.PerformingPhysicianName = h.operator
    ds.StudyDescription = h.procedure
    ds.SeriesNumber, ds.InstanceNumber = 999, 1
    ds.CompletionFlag = "COMPLETE" if h.complete else "PARTIAL"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("113701", "DCM", "X-Ray Radiation Dose Report")])
    tmpl = Dataset()
    tmpl.MappingResource, tmpl.TemplateIdentifier = "DCMR", h.template
    ds.ContentTemplateSequence = Sequence([tmpl])


@dataclass(frozen=True)
class XrayRdsrSpec:
    """Who and where a synthetic X-ray RDSR says it comes from; none of it changes a dose.

    >>> XrayRdsrSpec(procedure="TIPS creation", station="IR-ROOM-2").institution
    'Synthetic Hospital'
    """

    procedure: str = "Hepatic chemoembolisation"
    station: str = "IR-ROOM-1"
    institution: str = "Synthetic Hospital"
    operator: str | None = "Operator^A"
    manufacturer: str = "OpenIR Synthetic"
    sop_uid: str | None = None  # default: derived from the study and the number of events included


def synthetic_xray_rdsr(
    n_events: int = 20,
    *,
    seed: int = 0,
    include_events: int | None = None,
    biplane: bool = False,
    kap_unit: str = "Gy.m2",
    dose_scale: float = 1.0,
    patient_id: str = "SYN-0001",
    start: datetime = datetime(2024, 3, 4, 9, 0, 0),
    study_uid: str | None = None,
    spec: XrayRdsrSpec | None = None,
) -> Dataset:
    """A projection X-ray RDSR with ``n_events`` events (or its first ``include_events``, a partial report).

    Events and their UIDs depend only on ``seed`` and the study, so a partial and a cumulative
    report of the same study share event UIDs. ``dose_scale`` multiplies every dose; ``spec``
    holds the descriptive fields (procedure, room, institution, operator, vendor).

    >>> full = synthetic_xray_rdsr(6, seed=1, patient_id="P1")
    >>> part = synthetic_xray_rdsr(6, seed=1, patient_id="P1", include_events=2,
    ...                            spec=XrayRdsrSpec(station="IR-ROOM-2"))
    >>> full.CompletionFlag, part.CompletionFlag, part.StationName
    ('COMPLETE', 'PARTIAL', 'IR-ROOM-2')
    >>> full.StudyInstanceUID == part.StudyInstanceUID
    True
    """
    if kap_unit not in KAP_UNITS:
        raise ValueError(f"kap_unit must be one of {sorted(KAP_UNITS)}")
    spec = spec or XrayRdsrSpec()
    rng = np.random.default_rng(seed)
    study_uid = study_uid or _uid("study", seed, patient_id)
    k = n_events if include_events is None else int(include_events)
    sop_uid = spec.sop_uid or _uid("sop", study_uid, k)
    ds = Dataset()
    _header(ds, _Header(sop_uid=sop_uid, study_uid=study_uid, patient_id=patient_id, when=start,
                        manufacturer=spec.manufacturer, model="SynthAngio", station=spec.station,
                        institution=spec.institution, operator=spec.operator, procedure=spec.procedure,
                        template="10001", complete=k >= n_events))
    # draw every event, then keep the first k (so partial reports are prefixes)
    fluoro = rng.random(n_events) < 0.6
    kar = np.where(fluoro, rng.lognormal(np.log(3e-3), 0.8, n_events), rng.lognormal(np.log(2e-2), 0.6, n_events))
    kar = np.round(kar * dose_scale, 6)
    side_cm = rng.uniform(8, 20, n_events)
    kap = np.round(kar * side_cm**2, 6)  # Gy·cm², area at the reference point
    angles1 = np.round(rng.choice([0, 0, 0, -30, 30, 90, -90], n_events) + rng.normal(0, 3, n_events), 1)
    angles2 = np.round(rng.normal(0, 8, n_events), 1)
    table_long = np.round(np.cumsum(rng.normal(0, 20, n_events)), 1)
    kvp = np.round(rng.uniform(65, 95, n_events), 1)
    ma = np.round(np.where(fluoro, rng.uniform(10, 80, n_events), rng.uniform(200, 600, n_events)), 1)
    rate = np.where(fluoro, 7.5, 3.0)
    pulses = np.where(fluoro, rng.integers(10, 400, n_events), rng.integers(5, 40, n_events))
    dur = np.round(pulses / rate, 2)
    planes = np.array(["A", "B"])[rng.integers(0, 2, n_events)] if biplane else np.array(["single"] * n_events)
    f = KAP_UNITS[kap_unit]

    events = []
    for i in range(k):
        when = start + timedelta(seconds=60 * i)
        ch = [
            _codeitem(D("113764", "Acquisition Plane"), PLANE_CODES[planes[i]], rel="HAS CONCEPT MOD"),
            _text(D("111526", "DateTime Started"), when.strftime("%Y%m%d%H%M%S"), vt="DATETIME"),
            _codeitem(D("113721", "Irradiation Event Type"),
                      ("P5-06000", "SRT", "Fluoroscopy") if fluoro[i] else D("113611", "Stationary Acquisition")),
            _text(D("125203", "Acquisition Protocol"), "Fluoro 7.5 p/s" if fluoro[i] else "DSA 3 f/s"),
            _codeitem(D("113780", "Reference Point Definition"), D("113860", "15cm from Isocenter toward Source")),
            _text(D("113769", "Irradiation Event UID"), _uid("event", study_uid, i), vt="UIDREF"),
            _num(D("122130", "Dose Area Product"), kap[i] * f, kap_unit),
            _num(D("113738", "Dose (RP)"), kar[i], "Gy"),
            _num(D("112011", "Positioner Primary Angle"), angles1[i], "deg"),
            _num(D("112012", "Positioner Secondary Angle"), angles2[i], "deg"),
            _container("CONTAINS", D("113771", "X-Ray Filters"), [
                _codeitem(D("113772", "X-Ray Filter Type"), D("113650", "Strip filter")),
                _codeitem(D("113757", "X-Ray Filter Material"), ("C-127F9", "SRT", "Copper or Copper compound")),
                _num(D("113758", "X-Ray Filter Thickness Minimum"), 0.3, "mm"),
                _num(D("113773", "X-Ray Filter Thickness Maximum"), 0.3, "mm"),
            ]),
            _codeitem(D("113732", "Fluoro Mode"), D("113631", "Pulsed")),
            _num(D("113791", "Pulse Rate"), rate[i], "{pulse}/s"),
            _num(D("113768", "Number of Pulses"), int(pulses[i]), "1"),
            _num(D("113733", "KVP"), kvp[i], "kV"),
            _num(D("113734", "X-Ray Tube Current"), ma[i], "mA"),
            _num(D("113793", "Pulse Width"), 6.0, "ms"),
            _num(D("113742", "Irradiation Duration"), dur[i], "s"),
            _num(D("113790", "Collimated Field Area"), round(side_cm[i] ** 2 * 1e-4 * 1.9, 6), "m2"),
            _num(D("113750", "Distance Source to Detector"), 1100.0, "mm"),
            _num(D("113748", "Distance Source to Isocenter"), 800.0, "mm"),
            _num(D("113751", "Table Longitudinal Position"), table_long[i], "mm"),
            _num(D("113752", "Table Lateral Position"), 0.0, "mm"),
            _num(D("113753", "Table Height Position"), 0.0, "mm"),
            _codeitem(D("123014", "Target Region"), ("T-D4000", "SRT", "Abdomen")),
        ]
        events.append(_container("CONTAINS", D("113706", "Irradiation Event X-Ray Data"), ch))

    accumulated = []
    for plane in (["A", "B"] if biplane else ["single"]):
        sel = [i for i in range(k) if planes[i] == plane]
        fl = [i for i in sel if fluoro[i]]
        ac = [i for i in sel if not fluoro[i]]
        accumulated.append(_container("CONTAINS", D("113702", "Accumulated X-Ray Dose Data"), [
            _codeitem(D("113764", "Acquisition Plane"), PLANE_CODES[plane], rel="HAS CONCEPT MOD"),
            _num(D("113722", "Dose Area Product Total"), kap[sel].sum() * f, kap_unit),
            _num(D("113725", "Dose (RP) Total"), kar[sel].sum(), "Gy"),
            _num(D("113726", "Fluoro Dose Area Product Total"), kap[fl].sum() * f, kap_unit),
            _num(D("113728", "Fluoro Dose (RP) Total"), kar[fl].sum(), "Gy"),
            _num(D("113730", "Total Fluoro Time"), dur[fl].sum(), "s"),
            _num(D("113727", "Acquisition Dose Area Product Total"), kap[ac].sum() * f, kap_unit),
            _num(D("113729", "Acquisition Dose (RP) Total"), kar[ac].sum(), "Gy"),
            _num(D("113855", "Total Acquisition Time"), dur[ac].sum(), "s"),
            _num(D("113731", "Total Number of Radiographic Frames"), int(pulses[ac].sum()), "1"),
            _codeitem(D("113780", "Reference Point Definition"), D("113860", "15cm from Isocenter toward Source")),
        ]))
    ds.ContentSequence = Sequence([
        _codeitem(D("121058", "Procedure reported"), D("113704", "Projection X-Ray"), rel="HAS CONCEPT MOD"),
        _codeitem(D("121005", "Observer Type"), D("121007", "Device"), rel="HAS OBS CONTEXT"),
        _text(D("121012", "Device Observer UID"), _uid("device", spec.station), rel="HAS OBS CONTEXT", vt="UIDREF"),
        _text(D("121013", "Device Observer Name"), spec.station, rel="HAS OBS CONTEXT"),
        _codeitem(D("113705", "Scope of Accumulation"), D("113014", "Study"), rel="HAS OBS CONTEXT"),
        *accumulated,
        *events,
        _codeitem(D("113854", "Source of Dose Information"), D("113856", "Automated Data Collection")),
    ])
    return ds


def synthetic_ct_rdsr(n_acquisitions: int = 3, *, seed: int = 0, patient_id: str = "SYN-CT-0001",
                       start: datetime = datetime(2024, 3, 4, 8, 0, 0), dlp_unit: str = "mGy.cm") -> Dataset:
    """A CT RDSR (TID 10011) with ``n_acquisitions`` helical acquisitions on the IEC body phantom."""
    rng = np.random.default_rng(seed)
    study_uid = _uid("ct-study", seed, patient_id)
    ds = Dataset()
    _header(ds, _Header(sop_uid=_uid("ct-sop", study_uid), study_uid=study_uid, patient_id=patient_id, when=start,
                        manufacturer="OpenIR Synthetic", model="SynthCT", station="CT-1",
                        institution="Synthetic Hospital", operator=None, procedure="CT-guided ablation",
                        template="10011", complete=True))
    ctdi = np.round(rng.uniform(5, 15, n_acquisitions), 2)
    length = np.round(rng.uniform(100, 400, n_acquisitions), 1)
    dlp = np.round(ctdi * length / 10, 2)
    dlp_factor = {"mGy.cm": 1.0, "mGycm": 1.0, "Gy.cm": 1e-3}[dlp_unit]
    acqs = []
    for i in range(n_acquisitions):
        acqs.append(_container("CONTAINS", D("113819", "CT Acquisition"), [
            _text(D("125203", "Acquisition Protocol"), f"Abdomen {i + 1}"),
            _codeitem(D("123014", "Target Region"), ("T-D4000", "SRT", "Abdomen")),
            _codeitem(D("113820", "CT Acquisition Type"), ("P5-08001", "SRT", "Spiral Acquisition")),
            _text(D("113769", "Irradiation Event UID"), _uid("ct-event", study_uid, i), vt="UIDREF"),
            _container("CONTAINS", D("113822", "CT Acquisition Parameters"), [
                _num(D("113824", "Exposure Time"), round(float(length[i]) / 40, 2), "s"),
                _num(D("113825", "Scanning Length"), length[i], "mm"),
                _num(D("113828", "Pitch Factor"), 1.0, "{ratio}"),
                _container("CONTAINS", D("113831", "CT X-Ray Source Parameters"), [
                    _num(D("113733", "KVP"), 120, "kV"),
                    _num(D("113734", "X-Ray Tube Current"), 200, "mA"),
                ]),
            ]),
            _container("CONTAINS", D("113829", "CT Dose"), [
                _num(D("113830", "Mean CTDIvol"), ctdi[i], "mGy"),
                _codeitem(D("113835", "CTDIw Phantom Type"), D("113691", "IEC Body Dosimetry Phantom")),
                _num(D("113838", "DLP"), dlp[i] * dlp_factor, dlp_unit),
            ]),
        ]))
    ds.ContentSequence = Sequence([
        _codeitem(D("121058", "Procedure reported"), ("P5-08000", "SRT", "Computed Tomography X-Ray"), rel="HAS CONCEPT MOD"),
        _codeitem(D("121005", "Observer Type"), D("121007", "Device"), rel="HAS OBS CONTEXT"),
        _text(D("121012", "Device Observer UID"), _uid("device", "CT-1"), rel="HAS OBS CONTEXT", vt="UIDREF"),
        _container("CONTAINS", D("113811", "CT Accumulated Dose Data"), [
            _num(D("113812", "Total Number of Irradiation Events"), n_acquisitions, "{events}"),
            _num(D("113813", "CT Dose Length Product Total"), dlp.sum() * dlp_factor, dlp_unit),
        ]),
        *acqs,
    ])
    return ds


def synthetic_dose_survey(n_facilities: int = 8, rooms_per_facility: int = 2, operators_per_room: int = 2,
                          per_operator: int = 12, *, seed: int = 0,
                          procedures: tuple[str, ...] = ("Hepatic chemoembolisation", "Biliary drainage",
                                                         "Uterine artery embolisation")):
    """Per-procedure dose totals of several facilities (pandas DataFrame), with facility-level spread.

    Log-normal KAP around an arbitrary synthetic median per procedure; each facility and operator
    gets its own multiplicative factor, so facility medians differ as in real surveys.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    base = {p: 20.0 * (i + 1) for i, p in enumerate(procedures)}  # synthetic medians, Gy·cm²
    rows = []
    t0 = datetime(2023, 1, 2)
    for f in range(n_facilities):
        ff = rng.lognormal(0, 0.35)
        for r in range(rooms_per_facility):
            fr = rng.lognormal(0, 0.1)
            for o in range(operators_per_room):
                fo = rng.lognormal(0, 0.2)
                for p in procedures:
                    kap = base[p] * ff * fr * fo * rng.lognormal(0, 0.6, per_operator)
                    for j, v in enumerate(kap):
                        rows.append({
                            "facility": f"Facility {chr(65 + f)}", "room": f"{chr(65 + f)}-room{r + 1}",
                            "operator": f"{chr(65 + f)}-op{r + 1}{o + 1}", "procedure": p,
                            "performed_at": t0 + timedelta(days=int(rng.integers(0, 365))),
                            "kap_total_gy_cm2": float(v), "dose_rp_total_gy": float(v / 150.0),
                            "fluoro_time_s": float(v * 6.0), "patient_id": f"S{f}{r}{o}{j:03d}",
                        })
    return pd.DataFrame(rows)
