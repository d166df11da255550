"""Reading Radiation Dose Structured Reports (DICOM PS3.16 TID 10001 projection X-ray, TID 10011 CT).

Content items are found by their concept codes (DCM scheme), never by position or code meaning,
so vendor layouts (Siemens, Philips biplane, GE) read alike. Every concept code used here was
checked against pydicom's copy of the PS3.16 code dictionary (``pydicom.sr.codedict.codes.DCM``).
Units are converted to OpenIR's canonical units as they are read.
"""

from __future__ import annotations

import gc
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from openir.core.errors import InputError

from ._srtree import Document, Fallback, Item, from_bytes, from_dataset
from ._units import convert
from .models import (
    AccumulatedDose,
    CTAcquisition,
    CTDoseCheck,
    CTSource,
    DoseReport,
    IrradiationEvent,
    XRayFilter,
)

# ---- SOP classes and concept codes (DCM unless noted) -----------------------------------------
SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.76": "Enhanced X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
}
RADIOPHARMACEUTICAL_SR = "1.2.840.10008.5.1.4.1.1.88.68"  # Radiopharmaceutical Radiation Dose SR
RADIOPHARMACEUTICAL_REPORT = "113500"  # its document title (TID 10021)
XRAY_DOSE_REPORT = "113701"  # X-Ray Radiation Dose Report (root of TID 10001 and TID 10011)
PROCEDURE_REPORTED = "121058"
PROJECTION_XRAY = "113704"
CT_PROCEDURE_CODES = {"P5-08000", "77477000"}  # Computed Tomography X-Ray (SRT, SCT)
FLUORO_CODES = {"P5-06000", "44491008"}  # Fluoroscopy (SRT, SCT)
SCOPE_OF_ACCUMULATION = "113705"
DEVICE_OBSERVER_UID, DEVICE_OBSERVER_NAME = "121012", "121013"
ACCUMULATED_XRAY = "113702"  # Accumulated X-Ray Dose Data (TID 10002)
EVENT_XRAY = "113706"  # Irradiation Event X-Ray Data (TID 10003)
ACQUISITION_PLANE = "113764"
PLANES = {"113620": "A", "113621": "B", "113622": "single"}
XRAY_FILTERS, FILTER_MATERIAL, FILTER_MIN, FILTER_MAX = "113771", "113757", "113758", "113773"
CT_ACCUMULATED, CT_ACQUISITION = "113811", "113819"  # TID 10012, TID 10013
CT_DLP_TOTAL, TOTAL_EVENTS = "113813", "113812"
SUPPORTED_TEMPLATES = {"10001", "10011"}

# accumulated (TID 10004): code -> (field, quantity)
_ACC = {
    "113722": ("kap_total_gy_cm2", "Gy·cm²"),  # Dose Area Product Total
    "113725": ("dose_rp_total_gy", "Gy"),  # Dose (RP) Total
    "113726": ("fluoro_kap_gy_cm2", "Gy·cm²"),  # Fluoro Dose Area Product Total
    "113728": ("fluoro_dose_rp_gy", "Gy"),  # Fluoro Dose (RP) Total
    "113727": ("acquisition_kap_gy_cm2", "Gy·cm²"),  # Acquisition Dose Area Product Total
    "113729": ("acquisition_dose_rp_gy", "Gy"),  # Acquisition Dose (RP) Total
    "113730": ("fluoro_time_s", "s"),  # Total Fluoro Time
    "113855": ("acquisition_time_s", "s"),  # Total Acquisition Time
    "113731": ("radiographic_frames", "1"),  # Total Number of Radiographic Frames
    "113812": ("number_of_events", "1"),  # Total Number of Irradiation Events
}
# irradiation event (TID 10003 with 10003A/B/C): code -> (field, quantity)
_EVT_NUM = {
    "122130": ("kap_gy_cm2", "Gy·cm²"),  # Dose Area Product
    "113738": ("dose_rp_gy", "Gy"),  # Dose (RP)
    "113733": ("kvp_kv", "kV"),  # KVP
    "113734": ("tube_current_ma", "mA"),  # X-Ray Tube Current
    "113791": ("pulse_rate_per_s", "1/s"),  # Pulse Rate
    "113793": ("pulse_width_ms", "ms"),  # Pulse Width
    "113768": ("number_of_pulses", "1"),  # Number of Pulses
    "113742": ("irradiation_duration_s", "s"),  # Irradiation Duration
    "113790": ("field_area_cm2", "cm²"),  # Collimated Field Area
    "113788": ("field_height_mm", "mm"),  # Collimated Field Height
    "113789": ("field_width_mm", "mm"),  # Collimated Field Width
    "112011": ("primary_angle_deg", "deg"),  # Positioner Primary Angle
    "112012": ("secondary_angle_deg", "deg"),  # Positioner Secondary Angle
    "113748": ("source_isocenter_mm", "mm"),  # Distance Source to Isocenter
    "113750": ("source_detector_mm", "mm"),  # Distance Source to Detector
    "113751": ("table_longitudinal_mm", "mm"),  # Table Longitudinal Position
    "113752": ("table_lateral_mm", "mm"),  # Table Lateral Position
    "113753": ("table_height_mm", "mm"),  # Table Height Position
    "113754": ("table_head_tilt_deg", "deg"),  # Table Head Tilt Angle
    "113756": ("table_cradle_tilt_deg", "deg"),  # Table Cradle Tilt Angle
    "113767": ("average_tube_current_ma", "mA"),  # Average X-Ray Tube Current
    "113736": ("exposure_uas", "uAs"),  # Exposure
    "113766": ("focal_spot_mm", "mm"),  # Focal Spot Size
    "113845": ("exposure_index", "1"),  # Exposure Index
    "113846": ("target_exposure_index", "1"),  # Target Exposure Index
    "113847": ("deviation_index", "1"),  # Deviation Index
    "111631": ("average_glandular_dose_mgy", "mGy"),  # Average Glandular Dose
    "111636": ("entrance_exposure_at_rp_mgy", "mGy"),  # Entrance Exposure at RP
    "111633": ("compression_thickness_mm", "mm"),  # Compression Thickness
    "111634": ("half_value_layer_mm", "mm"),  # Half Value Layer
    "113735": ("exposure_time_ms", "ms"),  # Exposure Time
}
# vendor extras: Siemens writes the intensifier diameter (mm) into the event's Comment (121106) as
# <iiDiameter SRData="480"/>; Philips gives the detector field size under its private coding scheme
_COMMENT = "121106"
_SIEMENS_II = re.compile(r'<iiDiameter\s+SRData="\s*([0-9]+(?:\.[0-9]+)?)\s*"')
_PHILIPS_SCHEME, _PHILIPS_DETECTOR_FIELD = "99PHI-IXR-XPER", "023"
_PHILIPS_SIDES = {"024": "detector_field_x_mm", "025": "detector_field_y_mm"}
# irradiation event coded/text details: code -> field
_EVT_CODE = {
    "113743": "patient_orientation", "113745": "patient_table_relationship", "113732": "fluoro_mode",
    "111031": "image_view", "111632": "anode_target_material",
}
_ORIENTATION_MOD, _GRID = "113744", "111635"
_ACC_AGD = "111637"  # Accumulated Average Glandular Dose (mammography, one per breast)
_EVT_TYPE, _EVT_UID, _EVT_DT, _PROTOCOL, _REF_POINT, _TARGET = (
    "113721", "113769", "111526", "125203", "113780", "123014",
)
# CT acquisition (TID 10013): code -> (field, quantity); searched through nested containers
_CT_NUM = {
    "113830": ("ctdivol_mgy", "mGy"),  # Mean CTDIvol
    "113838": ("dlp_mgy_cm", "mGy·cm"),  # DLP
    "113825": ("scan_length_mm", "mm"),  # Scanning Length
    "113824": ("exposure_time_s", "s"),  # Exposure Time
    "113828": ("pitch", "1"),  # Pitch Factor
    "113733": ("kvp_kv", "kV"),  # KVP
    "113734": ("tube_current_ma", "mA"),  # X-Ray Tube Current
}
_CT_NUM.update({
    "113826": ("nominal_single_collimation_mm", "mm"),  # Nominal Single Collimation Width
    "113827": ("nominal_total_collimation_mm", "mm"),  # Nominal Total Collimation Width
    "113823": ("number_of_sources", "1"),  # Number of X-Ray Sources
})
_CT_PHANTOM, _CT_TYPE = "113835", "113820"  # CTDIw Phantom Type, CT Acquisition Type
_CT_SOURCE, _CT_SOURCE_ID = "113831", "113832"  # CT X-Ray Source Parameters, Identification of the X-Ray Source
_CT_SOURCE_NUM = {
    "113733": ("kvp_kv", "kV"), "113833": ("max_tube_current_ma", "mA"), "113734": ("tube_current_ma", "mA"),
    "113834": ("exposure_time_per_rotation_s", "s"),
}
_DOSE_CHECK_ALERT, _DOSE_CHECK_NOTIFICATION, _REASON_FOR_PROCEEDING = "113900", "113908", "113907"
_DOSE_CHECK_NUM = {
    "113901": ("alert_dlp_configured_mgy_cm", "mGy·cm"), "113902": ("alert_ctdivol_configured_mgy", "mGy"),
    "113903": ("alert_dlp_mgy_cm", "mGy·cm"), "113904": ("alert_ctdivol_mgy", "mGy"),
    "113905": ("accumulated_dlp_forward_estimate_mgy_cm", "mGy·cm"),
    "113906": ("accumulated_ctdivol_forward_estimate_mgy", "mGy"),
    "113909": ("notification_dlp_configured_mgy_cm", "mGy·cm"), "113910": ("notification_ctdivol_configured_mgy", "mGy"),
    "113911": ("notification_dlp_mgy_cm", "mGy·cm"), "113912": ("notification_ctdivol_mgy", "mGy"),
    "113913": ("dlp_forward_estimate_mgy_cm", "mGy·cm"), "113914": ("ctdivol_forward_estimate_mgy", "mGy"),
}

class RDSRError(InputError):
    """A file that cannot be read as a dose report; ``reason`` says why, for the quarantine."""

    def __init__(self, problem: str, reason: str, source: str | Path | None = None, field: str | None = None):
        self.reason = reason  # not_dicom | truncated | not_dose_report | unknown_template | invalid
        super().__init__(f"{problem} ({reason})", source=source, field=field)


# ---- content item access (items are _srtree.Item, read from bytes or from pydicom) ------------
# Technique factors that some systems report once per pulse (e.g. Eurocolumbus fluoroscopy: pulse
# width, kVp and tube current as multi-valued NUMs). Rule, as OpenREM applies it: the event's value
# is the mean of the non-zero values (0 if all are zero). Doses, times and counts are never averaged:
# a multi-valued one is refused, because no rule would give the event's dose safely.
MEAN_OF_NONZERO = {"113733", "113734", "113793", "113767"}  # KVP, X-Ray Tube Current, Pulse Width, Average X-Ray Tube Current


def _mean_of_nonzero(values: list[float]) -> float:
    nonzero = [v for v in values if v != 0.0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0


def _num(item: Item, quantity: str, src: str | None, field: str) -> float | None:
    if item.num is None:
        return None
    raw, unit = item.num
    try:
        if isinstance(raw, list | tuple):
            values = [float(v) for v in raw]
            if len(values) == 1:
                value = values[0]
            elif item.concept in MEAN_OF_NONZERO:
                value = _mean_of_nonzero(values)
            else:
                raise RDSRError(f"{len(values)} values where one is expected (only kVp, tube current and pulse "
                                "width are averaged)", "invalid", source=src, field=field)
        else:
            value = float(raw)
    except (TypeError, ValueError) as exc:
        raise RDSRError(f"numeric value {raw!r} is not a number", "invalid", source=src, field=field) from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise RDSRError(f"numeric value {raw!r} is not a finite number", "invalid", source=src, field=field)
    return convert(value, unit, quantity, source=src, field=field)


def _text(item: Item) -> str | None:
    vt = item.value_type
    if vt == "CODE":
        return item.code[2] if item.code else None
    if vt == "TEXT":
        v = item.text
        return str(v) if v not in (None, "") else None
    if vt == "UIDREF":
        v = item.uid
        return str(v) if v else None
    return None


def parse_dicom_datetime(value: Any, time: Any = None) -> datetime | None:
    """DICOM DT (or DA plus TM) to a naive datetime; None when absent or unreadable."""
    if value in (None, ""):
        return None
    s = str(value).strip()
    if time not in (None, ""):
        s = s[:8] + str(time).strip()
    s = s.split("+")[0].split("-")[0] if len(s) > 8 else s
    digits, _, frac = s.partition(".")
    fmt = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    if fmt is None:
        return None
    try:
        dt = datetime.strptime(digits, fmt)
    except ValueError:
        return None
    if frac.isdigit():
        dt = dt.replace(microsecond=int((frac + "000000")[:6]))
    return dt


# ---- public entry points ----------------------------------------------------------------------
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF


class _Truncated(Exception):
    pass


def _walk_elements(buf: bytes, pos: int, end: int, explicit: bool, stop_at_item_end: bool) -> int:
    """Skip over data elements from ``pos``; returns the position after them (or after an item end).

    Only element headers are read, so this costs little; it exists because pydicom silently
    returns a partial dataset when a file is cut short.
    """
    n = len(buf)
    while pos < end:
        if pos + 8 > n:
            raise _Truncated
        group = buf[pos] | buf[pos + 1] << 8
        elem = buf[pos + 2] | buf[pos + 3] << 8
        if group == 0xFFFE:  # item / delimiter: always 4-byte length, no VR
            length = int.from_bytes(buf[pos + 4:pos + 8], "little")
            pos += 8
            if elem == 0xE00D and stop_at_item_end:
                return pos
            if elem == 0xE0DD:
                return pos
            if elem == 0xE000:
                if length == _UNDEFINED:
                    pos = _walk_elements(buf, pos, n, explicit, True)
                else:
                    pos += length
                    if pos > n:
                        raise _Truncated
                continue
            raise _Truncated
        vr = buf[pos + 4:pos + 6]
        if explicit and group != 0xFFFE and vr.isalpha() and vr.isupper():
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _Truncated
                length = int.from_bytes(buf[pos + 8:pos + 12], "little")
                pos += 12
            else:
                length = buf[pos + 6] | buf[pos + 7] << 8
                pos += 8
        else:
            length = int.from_bytes(buf[pos + 4:pos + 8], "little")
            pos += 8
        if length == _UNDEFINED:  # sequence or encapsulated data: walk to its delimiter
            pos = _walk_elements(buf, pos, n, explicit, False)
        else:
            pos += length
            if pos > n:
                raise _Truncated
    if stop_at_item_end and pos >= n:
        raise _Truncated
    return pos


def _check_complete(buf: bytes, transfer_syntax: str) -> bool:
    """False when the file ends inside its meta group, an element or a sequence (little endian)."""
    if buf[128:132] != b"DICM":
        return True  # no Part 10 header: pydicom has already judged it
    meta_len = int.from_bytes(buf[140:144], "little") if buf[132:134] == b"\x02\x00" else 0
    meta_end = 144 + meta_len
    if meta_end > len(buf):
        return False
    if transfer_syntax not in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
        return True  # deflated / big endian: trust pydicom
    explicit = transfer_syntax != "1.2.840.10008.1.2"
    try:
        pos = _walk_elements(buf, 132, meta_end, True, False)
        return _ends_cleanly(buf, pos, explicit)
    except _Truncated:
        return False


def _ends_cleanly(buf: bytes, pos: int, explicit: bool) -> bool:
    """Every undefined-length sequence met at top level reached its delimiter before EOF."""
    n = len(buf)
    try:
        while pos < n:
            if pos + 8 > n:
                return False
            vr = buf[pos + 4:pos + 6]
            if explicit and vr in _LONG_VRS:
                length = int.from_bytes(buf[pos + 8:pos + 12], "little")
                pos += 12
            elif explicit and vr.isalpha() and vr.isupper():
                length = buf[pos + 6] | buf[pos + 7] << 8
                pos += 8
            else:
                length = int.from_bytes(buf[pos + 4:pos + 8], "little")
                pos += 8
            if length == _UNDEFINED:
                end = _walk_elements(buf, pos, n, explicit, False)
                if buf[end - 8:end] != b"\xfe\xff\xdd\xe0\x00\x00\x00\x00":
                    return False
                pos = end
            else:
                pos += length
        return pos == n
    except _Truncated:
        return False


def read_dataset(path: str | Path | bytes, source: str | None = None) -> Dataset:
    """Read a DICOM file (path or bytes), turning pydicom's failures into :class:`RDSRError`.

    A file cut short (an interrupted transfer or copy) is detected by walking its element
    headers, because pydicom would otherwise return the part that was there.
    """
    src = source or ("<bytes>" if isinstance(path, bytes) else str(path))
    try:
        buf = path if isinstance(path, bytes) else Path(path).read_bytes()
        ds = pydicom.dcmread(io.BytesIO(buf))
        ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
        if not _check_complete(buf, ts):
            raise RDSRError("file is truncated: it ends inside an element or sequence", "truncated", source=src)
    except InvalidDicomError as exc:
        raise RDSRError(f"not a DICOM file: {exc}", "not_dicom", source=src) from exc
    except RDSRError:
        raise
    except FileNotFoundError as exc:
        raise InputError("file not found", source=src) from exc
    except Exception as exc:  # pydicom fails in many ways on a damaged file (struct.error, EOFError...)
        raise RDSRError(f"file is broken or truncated: {exc}", "truncated", source=src) from exc
    return ds


def _read_bytes(obj: str | Path | bytes) -> bytes:
    if isinstance(obj, bytes):
        return obj
    try:
        return Path(obj).read_bytes()
    except FileNotFoundError as exc:
        raise InputError("file not found", source=str(obj)) from exc
    except OSError as exc:
        raise RDSRError(f"file is broken or truncated: {exc}", "truncated", source=str(obj)) from exc


def _document(buf: bytes, read_src: str, fast: bool) -> Document:
    """The SR tree of a file: straight from the bytes when the byte reader vouches for it, else via pydicom."""
    if fast:
        try:
            return from_bytes(buf)
        except Fallback:
            pass
    return from_dataset(read_dataset(buf, source=read_src))


_gc_lock = threading.Lock()
_gc_depth = 0  # parses in progress (threads) that have the collector paused


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Pause the cyclic garbage collector while one report is parsed.

    Why: a report is tens of thousands of small acyclic objects (content items, tuples, strings);
    each allocation burst triggers generation collections that re-scan every live object of the
    process, which doubled the parse time and made it vary run to run (issue 18). Nothing built
    here forms a reference cycle, so reference counting frees it all; the collector is resumed
    when the last concurrent parse ends (and only if it was running before).
    """
    global _gc_depth
    with _gc_lock:
        if _gc_depth == 0:
            _gc_no_gc_pauses_state[0] = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_no_gc_pauses_state[0]:
                gc.enable()


_gc_no_gc_pauses_state = [True]


def parse_rdsr(obj: str | Path | bytes | Dataset, source: str | None = None, *, fast: bool = True) -> DoseReport:
    """Parse a projection X-ray (TID 10001) or CT (TID 10011) RDSR into a :class:`DoseReport`.

    Raises :class:`RDSRError` (an InputError) with ``reason`` set for files that are not DICOM,
    broken or truncated, not dose reports, or use a template this reader does not know.
    ``fast=False`` reads every file through pydicom (the reference path: same result, slower).
    """
    if isinstance(obj, Dataset):
        src = str(source or getattr(obj, "filename", None) or "<dataset>")
    else:
        read_src = (str(source) if source else "<bytes>") if isinstance(obj, bytes) else str(obj)
        buf = _read_bytes(obj)
        src = str(source or read_src)
    try:
        with _no_gc_pauses():
            doc = from_dataset(obj) if isinstance(obj, Dataset) else _document(buf, read_src, fast)
            return _parse(doc, src)
    except RDSRError:
        raise
    except InputError as exc:  # unit errors: keep the message, add the quarantine reason
        raise RDSRError(exc.problem, "invalid", source=src, field=exc.field) from exc
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            NotImplementedError) as exc:  # pydicom on a damaged element (e.g. an unknown VR)
        raise RDSRError(f"file is broken or truncated: {exc.__class__.__name__}: {exc}", "truncated", source=src) from exc


def _template_of(doc: Document, src: str) -> str:
    tmpl = None
    for tid in doc.templates:
        if tid:
            tmpl = tid
    proc = None
    for it in doc.children:
        if it.concept == PROCEDURE_REPORTED:
            proc = it.code
    if tmpl is not None and tmpl not in SUPPORTED_TEMPLATES:
        raise RDSRError(f"dose report template TID {tmpl} is not supported (known: 10001, 10011)",
                        "unknown_template", source=src, field="ContentTemplateSequence")
    if proc is not None and proc[0] in CT_PROCEDURE_CODES:
        return "10011"
    if proc is not None and proc[0] == PROJECTION_XRAY:
        return "10001"
    if tmpl is not None:
        return tmpl
    names = {c.concept for c in doc.children}
    if EVENT_XRAY in names or ACCUMULATED_XRAY in names:
        return "10001"
    if CT_ACQUISITION in names or CT_ACCUMULATED in names:
        return "10011"
    shown = f"{proc[0]} {proc[2]}" if proc else "none"
    raise RDSRError(f"procedure reported ({shown}) is not projection X-ray or CT", "unknown_template",
                    source=src, field="Procedure reported")


def _parse(doc: Document, src: str) -> DoseReport:
    a = doc.attrs
    sop_class = "" if a["SOPClassUID"] is None else str(a["SOPClassUID"])
    if not doc.has_sop_class or not doc.has_title and sop_class not in SR_SOP_CLASSES:
        raise RDSRError("not a structured report (no SOP class or document title)", "not_dose_report", source=src)
    if sop_class == RADIOPHARMACEUTICAL_SR or (doc.title and doc.title[0] == RADIOPHARMACEUTICAL_REPORT):
        raise RDSRError("radiopharmaceutical radiation dose report (TID 10021, nuclear medicine) is not supported: "
                        "only X-ray dose reports (TID 10001, 10011) are read", "unknown_template", source=src,
                        field="ContentTemplateSequence")
    if sop_class not in SR_SOP_CLASSES:
        raise RDSRError(f"SOP class {sop_class} is not a dose structured report", "not_dose_report",
                        source=src, field="SOPClassUID")
    title = doc.title
    if title is None or title[0] != XRAY_DOSE_REPORT:
        shown = f"{title[0]} {title[2]}" if title else "none"
        tids = ", ".join(f"TID {t}" for t in doc.templates if t) or "no template identifier"
        raise RDSRError(f"document title {shown} ({tids}) is not 113701 X-Ray Radiation Dose Report "
                        "(TID 10001 projection X-ray, TID 10011 CT)", "not_dose_report", source=src,
                        field="ConceptNameCodeSequence")
    sop_uid = str(a["SOPInstanceUID"] or "")
    if not sop_uid:
        raise RDSRError("no SOPInstanceUID", "invalid", source=src, field="SOPInstanceUID")
    children = doc.children
    if not children:
        raise RDSRError("report has no content", "truncated", source=src, field="ContentSequence")
    template = _template_of(doc, src)

    def s(key: str) -> str | None:
        v = a[key]
        return str(v).strip() or None if v not in (None, "") else None

    procedure = s("StudyDescription") or s("RequestedProcedureDescription") or doc.procedure_code_meaning
    report: dict[str, Any] = {
        "kind": "ct" if template == "10011" else "projection",
        "template": template,
        "sop_instance_uid": sop_uid,
        "sop_class_uid": sop_class,
        "study_instance_uid": s("StudyInstanceUID"),
        "series_instance_uid": s("SeriesInstanceUID"),
        "patient_id": s("PatientID"),
        "patient_name": s("PatientName"),
        "patient_sex": s("PatientSex"),
        "patient_birth_date": s("PatientBirthDate"),
        "accession_number": s("AccessionNumber"),
        "institution": s("InstitutionName"),
        "station_name": s("StationName"),
        "manufacturer": s("Manufacturer"),
        "model": s("ManufacturerModelName"),
        "operator": s("PerformingPhysicianName"),
        "procedure": procedure,
        "content_datetime": parse_dicom_datetime(a["ContentDate"], a["ContentTime"]),
        "study_datetime": parse_dicom_datetime(a["StudyDate"], a["StudyTime"]),
        "completion_flag": s("CompletionFlag"),
        "source": src,
    }
    planes: list[AccumulatedDose] = []
    events: list[IrradiationEvent] = []
    ct_acqs: list[CTAcquisition] = []
    for it in children:
        code = it.concept
        if code == DEVICE_OBSERVER_UID:
            report["device_observer_uid"] = _text(it)
        elif code == DEVICE_OBSERVER_NAME:
            report["device_observer_name"] = _text(it)
        elif code == SCOPE_OF_ACCUMULATION:
            report["scope_of_accumulation"] = _text(it)
        elif code == ACCUMULATED_XRAY:
            planes.append(_accumulated(it, src))
        elif code == EVENT_XRAY:
            events.append(_event(it, src, len(events)))
        elif code == CT_ACCUMULATED:
            for sub in _descendants(it):
                c = sub.concept
                if c == CT_DLP_TOTAL:
                    report["dlp_total_mgy_cm"] = _num(sub, "mGy·cm", src, "CT Dose Length Product Total")
                elif c == TOTAL_EVENTS:
                    n = _num(sub, "1", src, "Total Number of Irradiation Events")
                    report["_ct_n"] = None if n is None else int(round(n))
        elif code == CT_ACQUISITION:
            ct_acqs.append(_ct_acquisition(it, src, len(ct_acqs)))
    report.pop("_ct_n", None)
    if template == "10001" and not planes and not events:
        raise RDSRError("projection X-ray report holds neither accumulated dose nor events", "truncated",
                        source=src, field="Accumulated X-Ray Dose Data")
    if template == "10011" and not ct_acqs and report.get("dlp_total_mgy_cm") is None:
        raise RDSRError("CT report holds neither accumulated dose nor acquisitions", "truncated",
                        source=src, field="CT Accumulated Dose Data")

    def total(attr: str) -> float | None:
        vals = [getattr(p, attr) for p in planes if getattr(p, attr) is not None]
        return float(sum(vals)) if vals else None

    report.update(
        planes=planes,
        events=events,
        ct_acquisitions=ct_acqs,
        kap_total_gy_cm2=total("kap_total_gy_cm2"),
        dose_rp_total_gy=total("dose_rp_total_gy"),
        fluoro_time_s=total("fluoro_time_s"),
        acquisition_time_s=total("acquisition_time_s"),
        number_of_events=len(events) if template == "10001" else len(ct_acqs),
    )
    return DoseReport(**report)


def _descendants(item: Item) -> Iterator[Item]:
    stack = list(reversed(item.children))
    while stack:
        it = stack.pop()
        yield it
        stack.extend(reversed(it.children))


def _plane_of(item: Item) -> str:
    for c in item.children:
        if c.concept == ACQUISITION_PLANE:
            code = c.code
            if code:
                return PLANES.get(code[0], "single")
    return "single"


def _accumulated(item: Item, src: str) -> AccumulatedDose:
    out: dict[str, Any] = {"plane": _plane_of(item)}
    for c in _descendants(item):
        code = c.concept
        if code in _ACC:
            field, q = _ACC[code]
            if field not in out:
                v = _num(c, q, src, f"Accumulated X-Ray Dose Data/{code}")
                out[field] = int(round(v)) if field == "number_of_events" and v is not None else v
        elif code == _REF_POINT:
            out["reference_point"] = _text(c)
        elif code == _ACC_AGD:
            v = _num(c, "mGy", src, "Accumulated Average Glandular Dose")
            if v is not None:
                out.setdefault("accumulated_agd_mgy", []).append(v)
    return AccumulatedDose(**out)


def _event(item: Item, src: str, index: int) -> IrradiationEvent:
    out: dict[str, Any] = {"plane": _plane_of(item)}
    filters: list[XRayFilter] = []
    where = f"Irradiation Event X-Ray Data[{index}]"
    for c in item.children:
        code = c.concept
        if code is None:
            name = c.name
            if name is not None and name[0] == _PHILIPS_DETECTOR_FIELD and name[1] == _PHILIPS_SCHEME:
                for side in c.children:
                    sname = side.name
                    if sname is not None and sname[1] == _PHILIPS_SCHEME and sname[0] in _PHILIPS_SIDES:
                        out.setdefault(_PHILIPS_SIDES[sname[0]], _num(side, "mm", src, f"{where}/Philips Detector Field Size"))
            continue
        if code == _COMMENT:
            m = _SIEMENS_II.search(_text(c) or "")
            if m:
                out.setdefault("intensifier_size_mm", float(m.group(1)))
            continue
        if code in _EVT_NUM:
            field, q = _EVT_NUM[code]
            if field not in out:
                out[field] = _num(c, q, src, f"{where}/{code}")
        elif code == _EVT_TYPE:
            ct = c.code
            if ct:
                out["event_type"] = ct[2]
                out["is_fluoroscopy"] = ct[0] in FLUORO_CODES or "fluoro" in ct[2].lower()
        elif code == _EVT_UID:
            out["uid"] = _text(c)
        elif code == _EVT_DT:
            out["datetime_started"] = parse_dicom_datetime(c.datetime)
        elif code == _PROTOCOL:
            out["protocol"] = _text(c)
        elif code == _REF_POINT:
            out["reference_point"] = _text(c)
        elif code == _TARGET:
            out["target_region"] = _text(c)
        elif code in _EVT_CODE:
            out.setdefault(_EVT_CODE[code], _text(c))
            if code == "113743":
                for m in c.children:
                    if m.concept == _ORIENTATION_MOD:
                        out["patient_orientation_modifier"] = _text(m)
        elif code == _ORIENTATION_MOD:  # some systems put the modifier beside the orientation
            out.setdefault("patient_orientation_modifier", _text(c))
        elif code == _GRID:
            g = _text(c)
            if g:
                out.setdefault("grid", []).append(g)
        elif code == XRAY_FILTERS:
            f: dict[str, Any] = {}
            for fc in c.children:
                fcode = fc.concept
                if fcode == FILTER_MATERIAL:
                    f["material"] = _text(fc)
                elif fcode == FILTER_MIN:
                    f["thickness_min_mm"] = _num(fc, "mm", src, f"{where}/X-Ray Filters")
                elif fcode == FILTER_MAX:
                    f["thickness_max_mm"] = _num(fc, "mm", src, f"{where}/X-Ray Filters")
            filters.append(XRayFilter(**f))
    out["filters"] = filters
    return IrradiationEvent(**out)


def _ct_source(item: Item, src: str, where: str) -> CTSource:
    out: dict[str, Any] = {}
    for c in item.children:
        code = c.concept
        if code in _CT_SOURCE_NUM:
            field, q = _CT_SOURCE_NUM[code]
            out.setdefault(field, _num(c, q, src, f"{where}/X-Ray Source/{code}"))
        elif code == _CT_SOURCE_ID:
            out["identification"] = _text(c)
    return CTSource(**out)


def _dose_check(items: list[Item], src: str, where: str) -> CTDoseCheck | None:
    out: dict[str, Any] = {}
    for box in items:
        for c in _descendants(box):
            code = c.concept
            if code in _DOSE_CHECK_NUM:
                field, q = _DOSE_CHECK_NUM[code]
                out.setdefault(field, _num(c, q, src, f"{where}/Dose Check/{code}"))
            elif code == _REASON_FOR_PROCEEDING:
                r = _text(c)
                if r:
                    out.setdefault("reasons_for_proceeding", []).append(r)
    return CTDoseCheck(**out) if out else None


def _ct_acquisition(item: Item, src: str, index: int) -> CTAcquisition:
    out: dict[str, Any] = {}
    where = f"CT Acquisition[{index}]"
    sources: list[CTSource] = []
    checks: list[Item] = []
    for c in _descendants(item):
        code = c.concept
        if code == _CT_SOURCE:
            sources.append(_ct_source(c, src, where))
        elif code in (_DOSE_CHECK_ALERT, _DOSE_CHECK_NOTIFICATION):
            checks.append(c)
        if code in _CT_NUM:
            field, q = _CT_NUM[code]
            if field not in out:
                out[field] = _num(c, q, src, f"{where}/{code}")
        elif code == _EVT_UID:
            out["uid"] = _text(c)
        elif code == _PROTOCOL:
            out["protocol"] = _text(c)
        elif code == _TARGET:
            out["target_region"] = _text(c)
        elif code == _CT_PHANTOM:
            out["phantom"] = _text(c)
        elif code == _CT_TYPE:
            out["acquisition_type"] = _text(c)
    if out.get("number_of_sources") is not None:
        out["number_of_sources"] = int(round(out["number_of_sources"]))
    out["sources"] = sources
    out["dose_check"] = _dose_check(checks, src, where)
    return CTAcquisition(**out)
