"""The byte reader of RDSRs (openir.dose._srtree) against the pydicom path: same reports, same errors."""

from __future__ import annotations

import io

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openir.dose import RDSRError, parse_rdsr
from openir.dose._srtree import Fallback, from_bytes
from openir.phantom.dose_reports import KAP_UNITS, synthetic_ct_rdsr, synthetic_xray_rdsr

REAL = ["philips_allura_clarity_u104.dcm", "philips_allura_clarity_u601.dcm", "siemens_axiom_artis.dcm",
        "siemens_axiom_example_procedure.dcm"]
IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"


def _encode(ds, *, implicit: bool = False, undefined: bool = False) -> bytes:
    """Save with the given VR encoding and sequence/item length style (both occur in vendor files)."""
    if undefined:
        def walk(d):
            for el in d:
                if el.VR == "SQ":
                    el.is_undefined_length = True
                    for it in el.value:
                        it.is_undefined_length_sequence_item = True
                        walk(it)
        walk(ds)
    ds.file_meta.TransferSyntaxUID = IMPLICIT if implicit else EXPLICIT
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _outcome(data: bytes, fast: bool):
    try:
        return "ok", parse_rdsr(data, fast=fast).model_dump()
    except RDSRError as exc:
        return "error", exc.reason


@pytest.mark.parametrize("name", REAL)
def test_dose_fast_path_real_files_identical(shared_data, name):
    path = shared_data / "pyskindose-rdsr" / name
    data = path.read_bytes()
    from_bytes(data)  # the byte reader takes the file itself (no silent fallback to pydicom)
    fast, ref = parse_rdsr(path), parse_rdsr(path, fast=False)
    assert fast == ref
    assert fast.model_dump() == ref.model_dump()
    assert parse_rdsr(pydicom.dcmread(path)) == ref  # a Dataset argument goes the pydicom way


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 12), biplane=st.booleans(), unit=st.sampled_from(sorted(KAP_UNITS)), seed=st.integers(0, 99),
       implicit=st.booleans(), undefined=st.booleans())
def test_dose_fast_path_synthetic_identical(n, biplane, unit, seed, implicit, undefined):
    data = _encode(synthetic_xray_rdsr(n, seed=seed, biplane=biplane, kap_unit=unit), implicit=implicit,
                   undefined=undefined)
    doc = from_bytes(data)
    assert len(doc.children) > n
    fast, ref = parse_rdsr(data), parse_rdsr(data, fast=False)
    assert fast == ref and fast.number_of_events == n


@pytest.mark.parametrize("implicit,undefined", [(False, False), (True, True)])
def test_dose_fast_path_ct_identical(implicit, undefined):
    data = _encode(synthetic_ct_rdsr(3, seed=2, dlp_unit="Gy.cm"), implicit=implicit, undefined=undefined)
    from_bytes(data)
    assert parse_rdsr(data) == parse_rdsr(data, fast=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), implicit=st.booleans(), undefined=st.booleans())
def test_dose_fast_path_damaged_files_same_outcome(data, implicit, undefined):
    """Cut short or with one byte changed: the same report or the same error reason either way."""
    good = _encode(synthetic_xray_rdsr(2, seed=4, biplane=True), implicit=implicit, undefined=undefined)
    if data.draw(st.booleans(), label="cut"):
        bad = good[: data.draw(st.integers(0, len(good) - 1), label="length")]
    else:
        i = data.draw(st.integers(132, len(good) - 1), label="position")
        bad = good[:i] + bytes([data.draw(st.integers(0, 255), label="byte")]) + good[i + 1:]
    assert _outcome(bad, True) == _outcome(bad, False)


def test_dose_fast_path_cut_files_are_truncated():
    good = _encode(synthetic_xray_rdsr(2, seed=5), implicit=True, undefined=True)
    for cut in range(400, len(good), max(1, len(good) // 15)):
        with pytest.raises(Fallback):
            from_bytes(good[:cut])
        with pytest.raises(RDSRError) as e:
            parse_rdsr(good[:cut])
        assert e.value.reason == "truncated"


def test_dose_fast_path_falls_back_where_it_should():
    """Other transfer syntaxes, character sets and multi-valued strings go to pydicom, with the same result."""
    ds = synthetic_xray_rdsr(3, seed=6)
    ds.PerformingPhysicianName = ["Doe^Jane", "Roe^Rick"]
    multi = _encode(ds)
    ds = synthetic_xray_rdsr(3, seed=6)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstitutionName = "Universitätsklinik Zürich"
    utf8 = _encode(ds)
    ds = synthetic_xray_rdsr(3, seed=6)
    ds.SpecificCharacterSet = "ISO_IR 101"
    latin2 = _encode(ds)
    ds = synthetic_xray_rdsr(3, seed=6)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.2"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    big = buf.getvalue()
    for data in (multi, latin2, big):
        with pytest.raises(Fallback):
            from_bytes(data)
        assert parse_rdsr(data) == parse_rdsr(data, fast=False)
    assert from_bytes(utf8).attrs["InstitutionName"] == "Universitätsklinik Zürich"
    assert parse_rdsr(utf8) == parse_rdsr(utf8, fast=False)
    assert parse_rdsr(big).number_of_events == 3


def test_dose_parse_pauses_gc_only_while_parsing():
    import gc
    import threading

    data = _encode(synthetic_xray_rdsr(30, seed=1))
    seen: list[bool] = []
    orig = parse_rdsr.__globals__["_parse"]

    def spy(doc, src):
        seen.append(gc.isenabled())
        return orig(doc, src)

    parse_rdsr.__globals__["_parse"] = spy
    try:
        assert gc.isenabled()
        parse_rdsr(data)
        assert seen == [False] and gc.isenabled()  # paused during the parse, resumed after
        gc.disable()  # a caller that runs without the collector keeps it off
        parse_rdsr(data)
        assert not gc.isenabled()
        gc.enable()
        threads = [threading.Thread(target=parse_rdsr, args=(data,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gc.isenabled()  # overlapping parses in threads resume it once, at the end
        with pytest.raises(RDSRError):
            parse_rdsr(data[: len(data) // 2])
        assert gc.isenabled()  # also after a failed parse
    finally:
        parse_rdsr.__globals__["_parse"] = orig
        gc.enable()
