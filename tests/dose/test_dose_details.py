"""CT, projection and mammography details of the dose templates (TID 10013/10015, 10003/10003B)."""

from __future__ import annotations

import io

import pytest
from pydicom.sequence import Sequence

from openir.dose import RDSRError, parse_rdsr
from openir.phantom.dose_reports import (
    D,
    _codeitem,
    _container,
    _num,
    _text,
    synthetic_ct_rdsr,
    synthetic_xray_rdsr,
)


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _ct_with_details():
    ds = synthetic_ct_rdsr(2, seed=6)
    acq = [c for c in ds.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113819"][0]
    params = [c for c in acq.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113822"][0]
    kept = [c for c in params.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue != "113831"]
    sources = [
        _container("CONTAINS", D("113831", "CT X-Ray Source Parameters"), [
            _text(D("113832", "Identification of the X-Ray Source"), name),
            _num(D("113733", "KVP"), kv, "kV"),
            _num(D("113833", "Maximum X-Ray Tube Current"), ma_max, "mA"),
            _num(D("113734", "X-Ray Tube Current"), ma, "mA"),
            _num(D("113834", "Exposure Time per Rotation"), 0.28, "s"),
        ]) for name, kv, ma_max, ma in (("A", 100, 400, 310), ("B", 140, 300, 205))
    ]
    params.ContentSequence = Sequence([
        *kept,
        _num(D("113826", "Nominal Single Collimation Width"), 0.6, "mm"),
        _num(D("113827", "Nominal Total Collimation Width"), 38.4, "mm"),
        _num(D("113823", "Number of X-Ray Sources"), 2, "{X-Ray sources}"),
        *sources,
    ])
    dose = [c for c in acq.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113829"][0]
    dose.ContentSequence.append(_container("CONTAINS", D("113900", "Dose Check Alert Details"), [
        _num(D("113902", "CTDIvol Alert Value Configured"), 1000, "mGy"),
        _num(D("113906", "Accumulated CTDIvol Forward Estimate"), 1100, "mGy"),
        _text(D("113907", "Reason for Proceeding"), "Perfusion study, approved by physicist"),
    ]))
    dose.ContentSequence.append(_container("CONTAINS", D("113908", "Dose Check Notification Details"), [
        _num(D("113911", "DLP Notification Value"), 1.0, "Gy.cm"),
        _num(D("113913", "DLP Forward Estimate"), 1200, "mGy.cm"),
    ]))
    return ds


@pytest.mark.parametrize("fast", [True, False])
def test_dose_ct_sources_collimation_and_dose_check(fast):
    r = parse_rdsr(_bytes(_ct_with_details()), fast=fast)
    a, b = r.ct_acquisitions
    assert a.nominal_single_collimation_mm == 0.6 and a.nominal_total_collimation_mm == 38.4
    assert a.number_of_sources == 2 and [s.identification for s in a.sources] == ["A", "B"]
    assert [(s.kvp_kv, s.max_tube_current_ma, s.tube_current_ma) for s in a.sources] == [(100, 400, 310), (140, 300, 205)]
    assert a.sources[1].exposure_time_per_rotation_s == pytest.approx(0.28)
    dc = a.dose_check
    assert dc.alert_ctdivol_configured_mgy == 1000 and dc.accumulated_ctdivol_forward_estimate_mgy == 1100
    assert dc.notification_dlp_mgy_cm == pytest.approx(1000.0)  # Gy.cm -> mGy·cm
    assert dc.dlp_forward_estimate_mgy_cm == 1200 and dc.triggered
    assert dc.reasons_for_proceeding == ["Perfusion study, approved by physicist"]
    assert b.dose_check is None and len(b.sources) == 1 and b.sources[0].kvp_kv == 120


def _with_event_rows(ds, rows):
    for c in ds.ContentSequence:
        if c.ConceptNameCodeSequence[0].CodeValue == "113706":
            for row in rows:
                c.ContentSequence.append(row)
    return ds


@pytest.mark.parametrize("fast", [True, False])
def test_dose_projection_details(fast):
    orientation = _codeitem(D("113743", "Patient Orientation"), ("F-10450", "SRT", "recumbent"))
    orientation.ContentSequence = Sequence([
        _codeitem(D("113744", "Patient Orientation Modifier"), ("F-10340", "SRT", "supine"), rel="HAS CONCEPT MOD")])
    rows = [
        orientation,
        _codeitem(D("113745", "Patient Table Relationship"), ("F-10470", "SRT", "headfirst")),
        _codeitem(D("111635", "X-Ray Grid"), D("111641", "Fixed Grid")),
        _codeitem(D("111635", "X-Ray Grid"), D("111642", "Focused Grid")),
        _num(D("113767", "Average X-Ray Tube Current"), 12.5, "mA"),
        _num(D("113736", "Exposure"), 2.5, "mA.s"),
        _num(D("113766", "Focal Spot Size"), 0.6, "mm"),
        _num(D("113845", "Exposure Index"), 410, "1"),
        _num(D("113846", "Target Exposure Index"), 400, "1"),
        _num(D("113847", "Deviation Index"), 0.1, "1"),
    ]
    r = parse_rdsr(_bytes(_with_event_rows(synthetic_xray_rdsr(3, seed=2), rows)), fast=fast)
    e = r.events[0]
    assert (e.patient_orientation, e.patient_orientation_modifier, e.patient_table_relationship) == (
        "recumbent", "supine", "headfirst")
    assert e.grid == ["Fixed Grid", "Focused Grid"] and e.fluoro_mode == "Pulsed"
    assert e.average_tube_current_ma == 12.5 and e.exposure_uas == pytest.approx(2500.0)  # mA.s -> µAs
    assert (e.focal_spot_mm, e.exposure_index, e.target_exposure_index, e.deviation_index) == (0.6, 410, 400, 0.1)


def test_dose_mammography_report():
    ds = synthetic_xray_rdsr(2, seed=3)
    ds.ContentSequence[0].ConceptCodeSequence[0].CodeValue = "P5-40010"  # Procedure reported: Mammography
    ds.ContentSequence[0].ConceptCodeSequence[0].CodeMeaning = "Mammography"
    rows = [
        _codeitem(D("111031", "Image View"), ("R-10242", "SRT", "cranio-caudal")),
        _codeitem(D("111632", "Anode Target Material"), ("C-150F9", "SRT", "Molybdenum or Molybdenum compound")),
        _num(D("111633", "Compression Thickness"), 52, "mm"),
        _num(D("111634", "Half Value Layer"), 0.38, "mm"),
        _num(D("111631", "Average Glandular Dose"), 1.42, "mGy"),
        _num(D("111636", "Entrance Exposure at RP"), 6.1, "mGy"),
    ]
    _with_event_rows(ds, rows)
    acc = [c for c in ds.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113702"][0]
    acc.ContentSequence.append(_num(D("111637", "Accumulated Average Glandular Dose"), 2.84, "mGy"))
    acc.ContentSequence.append(_num(D("111637", "Accumulated Average Glandular Dose"), 2.5, "mGy"))
    r = parse_rdsr(_bytes(ds))
    e = r.events[0]
    assert r.kind == "projection" and e.image_view == "cranio-caudal" and e.compression_thickness_mm == 52
    assert e.average_glandular_dose_mgy == 1.42 and e.entrance_exposure_at_rp_mgy == 6.1
    assert e.half_value_layer_mm == 0.38 and e.anode_target_material.startswith("Molybdenum")
    assert r.planes[0].accumulated_agd_mgy == [2.84, 2.5]


def test_dose_nuclear_medicine_report_is_refused_by_template():
    ds = synthetic_xray_rdsr(2)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.68"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.ConceptNameCodeSequence[0].CodeValue = "113500"
    with pytest.raises(RDSRError) as e:
        parse_rdsr(_bytes(ds))
    assert e.value.reason == "unknown_template" and "TID 10021" in str(e.value)


@pytest.mark.parametrize(("unit", "quantity", "factor"), [
    ("uGy.cm2", "Gy·cm²", 1e-6), ("mGy.m2", "Gy·cm²", 10.0), ("Gy.dm2", "Gy·cm²", 100.0),
    ("cGy.cm", "mGy·cm", 10.0), ("uA", "mA", 1e-3), ("A", "mA", 1e3), ("mA.s", "uAs", 1e3),
])
def test_dose_vendor_unit_spellings(unit, quantity, factor):
    from openir.core.errors import InputError
    from openir.dose._units import convert

    assert convert(2.0, unit, quantity) == pytest.approx(2.0 * factor, rel=1e-12)
    with pytest.raises(InputError, match="unknown unit"):
        convert(1.0, unit.replace("Gy", "Sv").replace("A", "V"), quantity)


def test_dose_real_vendor_details(shared_data):
    """Values read off the files with pydicom by hand (see the dumps in the issue-18 notes)."""
    d = shared_data / "pyskindose-rdsr"
    p = parse_rdsr(d / "philips_allura_clarity_u104.dcm")
    assert all((e.detector_field_x_mm, e.detector_field_y_mm) == (380.0, 300.0) for e in p.events[:2])
    e = p.events[0]
    assert (e.patient_orientation, e.patient_orientation_modifier, e.patient_table_relationship) == (
        "recumbent", "supine", "headfirst")
    assert parse_rdsr(d / "philips_allura_clarity_u601.dcm").events[0].detector_field_x_mm == 176.0
    s = parse_rdsr(d / "siemens_axiom_artis.dcm")
    e = s.events[0]
    assert e.intensifier_size_mm == 480.0 and e.exposure_time_ms == 31.0
    assert e.exposure_uas == 1488.0 and e.focal_spot_mm == 0.6 and e.fluoro_mode == "Pulsed"
    assert all(x.intensifier_size_mm for x in s.events)  # every event's comment gives it


def test_dose_vendor_summary_report_refused_naming_its_template():
    ds = synthetic_xray_rdsr(2)
    ds.ConceptNameCodeSequence[0].CodeValue = "99SMS_SUM"  # a vendor's own summary document
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "99SMS"
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Radiation Dose Summary"
    ds.ContentTemplateSequence[0].TemplateIdentifier = "9999"
    with pytest.raises(RDSRError) as e:
        parse_rdsr(_bytes(ds))
    assert e.value.reason == "not_dose_report"
    assert "Radiation Dose Summary" in str(e.value) and "TID 9999" in str(e.value)
