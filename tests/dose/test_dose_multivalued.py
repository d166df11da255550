"""Multi-valued technique fields (Eurocolumbus-type fluoroscopy reports): one value per pulse.

The real file is not in ../shared/data, so a faithful one is built: a projection RDSR whose
fluoroscopy events carry KVP, X-Ray Tube Current and Pulse Width as one NumericValue per pulse,
either as a multi-valued DS or as one MeasuredValueSequence item per pulse (both are seen in the
field). Rule (OpenREM's): the event value is the mean of the non-zero pulses.
"""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from openir.dose import RDSRError, parse_rdsr
from openir.phantom.dose_reports import synthetic_xray_rdsr

KVP, MA, PW, KAP = "113733", "113734", "113793", "122130"
PULSES = {KVP: [0.0, 70.0, 72.0, 74.0, 0.0], MA: [12.5, 0.0, 13.5, 14.0], PW: [6.0, 8.0, 0.0, 7.0]}


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _events(ds):
    return [c for c in ds.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113706"]


def _per_pulse(ds, style: str, codes=(KVP, MA, PW)) -> Dataset:
    for ev in _events(ds):
        for c in ev.ContentSequence:
            code = c.ConceptNameCodeSequence[0].CodeValue
            if code not in codes:
                continue
            values = PULSES.get(code, [1.0, 2.0])
            mv = c.MeasuredValueSequence[0]
            if style == "multivalued":
                mv.NumericValue = [f"{v:g}" for v in values]
            else:  # one MeasuredValueSequence item per pulse
                items = []
                for v in values:
                    it = Dataset()
                    it.MeasurementUnitsCodeSequence = mv.MeasurementUnitsCodeSequence
                    it.NumericValue = f"{v:g}"
                    items.append(it)
                c.MeasuredValueSequence = Sequence(items)
    return ds


def _mean_nonzero(values):
    nz = [v for v in values if v]
    return sum(nz) / len(nz)


@pytest.mark.parametrize("style", ["multivalued", "items"])
@pytest.mark.parametrize("fast", [True, False])
def test_dose_per_pulse_technique_is_mean_of_nonzero(style, fast):
    ds = _per_pulse(synthetic_xray_rdsr(6, seed=4), style)
    plain = parse_rdsr(_bytes(synthetic_xray_rdsr(6, seed=4)))
    r = parse_rdsr(_bytes(ds), fast=fast)
    assert r.number_of_events == 6
    for e, p in zip(r.events, plain.events, strict=True):
        assert e.kvp_kv == pytest.approx(72.0)  # mean of 70, 72, 74: the zero pulses are left out
        assert e.tube_current_ma == pytest.approx(_mean_nonzero(PULSES[MA]))
        assert e.pulse_width_ms == pytest.approx(7.0)
        assert e.kap_gy_cm2 == p.kap_gy_cm2  # doses untouched
    assert r.kap_total_gy_cm2 == plain.kap_total_gy_cm2


@pytest.mark.parametrize("style", ["multivalued", "items"])
def test_dose_multivalued_dose_is_refused_by_name(style):
    ds = _per_pulse(synthetic_xray_rdsr(3, seed=4), style, codes=(KAP,))
    with pytest.raises(RDSRError) as e:
        parse_rdsr(_bytes(ds))
    assert e.value.reason == "invalid" and KAP in str(e.value) and "2 values" in str(e.value)
