"""RDSR parsing: real vendor files against an independent walk, synthetic round trips, bad files."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.dose import RDSRError, parse_rdsr
from openir.phantom.dose_reports import KAP_UNITS, synthetic_ct_rdsr, synthetic_xray_rdsr

REAL = ["philips_allura_clarity_u104.dcm", "philips_allura_clarity_u601.dcm", "siemens_axiom_artis.dcm",
        "siemens_axiom_example_procedure.dcm"]
# the test's own unit table (not the parser's): factor to Gy·cm², Gy, s
UNIT = {"Gym2": 1e4, "Gy.m2": 1e4, "Gy": 1.0, "s": 1.0}


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _walk(path: Path) -> dict:
    """Independent reading by pydicom keywords: totals summed over planes, events, rounding."""
    ds = pydicom.dcmread(path)
    out = {"kap": 0.0, "rp": 0.0, "fluoro_s": 0.0, "events": 0, "event_kap": 0.0, "event_rp": 0.0,
           "kap_ulp": 0.0, "rp_ulp": 0.0}

    def num(item):
        mv = item.MeasuredValueSequence[0]
        unit = mv.MeasurementUnitsCodeSequence[0].CodeValue
        raw = str(mv.NumericValue).strip()
        exp = Decimal(raw).as_tuple().exponent
        value = float(raw) * UNIT[unit]
        return value, (0.5 * 10.0 ** exp * UNIT[unit] if value else 0.0)  # an exact 0 has no rounding

    for item in ds.ContentSequence:
        code = item.ConceptNameCodeSequence[0].CodeValue
        if code == "113702":
            for c in item.ContentSequence:
                cc = c.ConceptNameCodeSequence[0]
                if cc.CodingSchemeDesignator != "DCM":
                    continue
                if cc.CodeValue == "113722":
                    v, u = num(c)
                    out["kap"] += v
                    out["kap_ulp"] += u
                elif cc.CodeValue == "113725":
                    v, u = num(c)
                    out["rp"] += v
                    out["rp_ulp"] += u
                elif cc.CodeValue == "113730":
                    out["fluoro_s"] += num(c)[0]
        elif code == "113706":
            out["events"] += 1
            for c in item.ContentSequence:
                cc = c.ConceptNameCodeSequence[0]
                if cc.CodingSchemeDesignator == "DCM" and cc.CodeValue == "122130":
                    v, u = num(c)
                    out["event_kap"] += v
                    out["kap_ulp"] += u
                elif cc.CodingSchemeDesignator == "DCM" and cc.CodeValue == "113738":
                    v, u = num(c)
                    out["event_rp"] += v
                    out["rp_ulp"] += u
    return out


@pytest.mark.parametrize("name", REAL)
def test_dose_real_rdsr_matches_independent_walk(shared_data, name):
    path = shared_data / "pyskindose-rdsr" / name
    walk = _walk(path)
    r = parse_rdsr(path)
    assert r.kind == "projection" and r.template == "10001"
    assert r.kap_total_gy_cm2 == pytest.approx(walk["kap"], rel=1e-12)
    assert r.dose_rp_total_gy == pytest.approx(walk["rp"], rel=1e-12)
    assert r.fluoro_time_s == pytest.approx(walk["fluoro_s"], rel=1e-12)
    assert r.number_of_events == walk["events"] == len(r.events)
    assert 21 <= r.number_of_events <= 29
    # every event's Dose (RP) adds up to the accumulated value within the rounding of the printed digits
    assert sum(e.dose_rp_gy for e in r.events) == pytest.approx(walk["rp"], abs=walk["rp_ulp"] + 1e-12)
    event_kap = sum(e.kap_gy_cm2 for e in r.events)
    assert event_kap == pytest.approx(walk["event_kap"], rel=1e-9)
    if name.startswith("siemens"):
        assert event_kap == pytest.approx(walk["kap"], abs=walk["kap_ulp"])
    else:
        # Philips: the fluoroscopy events' KAPs add up to less than the accumulated fluoro KAP in
        # these files (the data, not the parser: the independent walk sees the same); acquisition
        # KAPs do add up. Pin the shortfall so a parser change cannot hide or create it.
        assert event_kap < walk["kap"] - walk["kap_ulp"]
        acq = sum(e.kap_gy_cm2 for e in r.events if not e.is_fluoroscopy)
        assert acq == pytest.approx(r.planes[0].acquisition_kap_gy_cm2, rel=0.05)


def test_dose_real_rdsr_details(shared_data):
    r = parse_rdsr(shared_data / "pyskindose-rdsr" / "philips_allura_clarity_u104.dcm")
    assert [p.plane for p in r.planes] == ["A", "B"]  # biplane: one accumulated container per plane
    e = r.events[0]
    assert e.plane == "A" and e.is_fluoroscopy and e.kvp_kv == pytest.approx(57.5)
    assert e.pulse_rate_per_s == pytest.approx(6.25) and e.tube_current_ma == pytest.approx(10.0)
    assert e.kap_gy_cm2 == pytest.approx(1.424178184e-07 * 1e4)  # Gy.m2 -> Gy·cm²
    assert {f.material for f in e.filters} == {"Copper or Copper compound", "Aluminum or Aluminum compound"}
    s = parse_rdsr(shared_data / "pyskindose-rdsr" / "siemens_axiom_example_procedure.dcm")
    ev = s.events[0]
    assert ev.protocol and ev.field_area_cm2 == pytest.approx(0.11053067 * 1e4, rel=1e-6)  # m2 -> cm²
    assert ev.primary_angle_deg is not None and ev.table_height_mm is not None
    assert s.kap_total_gy_cm2 == pytest.approx(2.7902)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 25), biplane=st.booleans(), unit=st.sampled_from(sorted(KAP_UNITS)), seed=st.integers(0, 99))
def test_dose_synthetic_round_trip(n, biplane, unit, seed):
    ds = synthetic_xray_rdsr(n, seed=seed, biplane=biplane, kap_unit=unit)
    r = parse_rdsr(_bytes(ds))
    ref = synthetic_xray_rdsr(n, seed=seed, biplane=biplane, kap_unit="Gy.cm2")
    rr = parse_rdsr(_bytes(ref))
    assert r.number_of_events == n
    assert r.kap_total_gy_cm2 == pytest.approx(rr.kap_total_gy_cm2, rel=1e-6)
    assert sum(e.kap_gy_cm2 for e in r.events) == pytest.approx(r.kap_total_gy_cm2, rel=1e-6)
    assert sum(e.dose_rp_gy for e in r.events) == pytest.approx(r.dose_rp_total_gy, rel=1e-6)
    assert {e.plane for e in r.events} <= ({"A", "B"} if biplane else {"single"})


def test_dose_ct_rdsr():
    r = parse_rdsr(_bytes(synthetic_ct_rdsr(4, seed=3, dlp_unit="Gy.cm")))
    assert r.kind == "ct" and r.template == "10011" and len(r.ct_acquisitions) == 4
    a = r.ct_acquisitions[0]
    assert a.ctdivol_mgy and a.dlp_mgy_cm and a.scan_length_mm and a.phantom == "IEC Body Dosimetry Phantom"
    assert r.dlp_total_mgy_cm == pytest.approx(sum(x.dlp_mgy_cm for x in r.ct_acquisitions), rel=1e-6)


def test_dose_bad_files(tmp_path):
    from pydicom.data import get_testdata_file

    with pytest.raises(RDSRError) as e:
        parse_rdsr(get_testdata_file("CT_small.dcm"))
    assert e.value.reason == "not_dose_report"
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(RDSRError) as e:
        parse_rdsr(tmp_path / "x.txt")
    assert e.value.reason == "not_dicom"
    good = _bytes(synthetic_xray_rdsr(5))
    with pytest.raises(RDSRError) as e:
        parse_rdsr(good[: len(good) * 2 // 3])
    assert e.value.reason == "truncated"
    ds = synthetic_xray_rdsr(5)
    ds.ContentTemplateSequence[0].TemplateIdentifier = "10021"
    with pytest.raises(RDSRError) as e:
        parse_rdsr(_bytes(ds))
    assert e.value.reason == "unknown_template"
    ds = synthetic_xray_rdsr(5)
    ds.ConceptNameCodeSequence[0].CodeValue = "126000"  # another SR document title
    with pytest.raises(RDSRError) as e:
        parse_rdsr(_bytes(ds))
    assert e.value.reason == "not_dose_report"
    ds = synthetic_xray_rdsr(3)
    ds.ContentSequence[5].ContentSequence[1].MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = "furlong"
    with pytest.raises(RDSRError, match="furlong"):
        parse_rdsr(_bytes(ds))
