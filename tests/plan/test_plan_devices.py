"""Device catalogue: loading, validation by row name, the public Emprint cross-check."""

from __future__ import annotations

import math

import pytest

from openir.core.errors import DataFileError, InputError
from openir.plan import catalogue_version, load_catalogue, zone_dimensions
from openir.plan.devices import parse_catalogue


def _cat(rows, modality="microwave"):
    return {"catalogue_version": "t1", "devices": [
        {"id": "dev", "name": "d", "manufacturer": "m", "modality": modality, "zones": rows}]}


def _row(p, t, length, dia, **kw):
    return {"power_w": p, "time_s": t, "length_mm": length, "diameter_mm": dia, "source": "paper X",
            "tip_to_centre_mm": 10.0, **kw}


def test_packaged_catalogue_loads_and_is_versioned():
    cat = load_catalogue()
    assert catalogue_version() == cat.catalogue_version
    assert {"emprint", "neuwave_pr", "amica", "cooltip_single", "icerod", "nanoknife", "ethanol_pei"} <= set(cat.ids)
    assert {d.modality for d in cat.devices} == {"microwave", "radiofrequency", "cryo", "ire", "chemical"}
    for d in cat.devices:
        for r in d.zones:
            assert r.source.strip(), f"{d.id} row without a source"


def test_emprint_100w_10min_matches_public_cross_check():
    dims, rows = zone_dimensions(load_catalogue().get("emprint"), power_w=100, time_s=600)
    assert 41 <= dims["length_mm"] <= 42
    assert dims["diameter_mm"] == pytest.approx(36, abs=0.5)
    assert dims["diameter2_mm"] == pytest.approx(36, abs=0.5)
    vol = math.pi / 6 * dims["length_mm"] * dims["diameter_mm"] * dims["diameter2_mm"] / 1000
    assert vol == pytest.approx(28, rel=0.05)


def test_unsourced_rows_are_never_used():
    with pytest.raises(InputError, match="no sourced zone rows"):
        zone_dimensions(load_catalogue().get("amica"), power_w=100, time_s=600)


@pytest.mark.parametrize("rows, fragment", [
    ([_row(100, 300, 40, 30), _row(100, 600, 35, 32)], "zones[1] (100 W, 600 s): length_mm 35.0 shrinks"),
    ([_row(60, 600, 40, 30), _row(100, 600, 38, 32)], "zones[1] (100 W, 600 s): length_mm 38.0 shrinks with more power"),
    ([_row(100, 600, -4, 30)], "zones[0] (100 W, 600 s): length_mm must be positive"),
    ([_row(100, 600, 42, 36, volume_ml=40)], "stated volume 40.0 mL differs"),
    ([{"power_w": 100, "time_s": 600, "length_mm": 42, "source": "x"}], "diameter_mm is missing"),
])
def test_bad_rows_are_reported_by_name(rows, fragment):
    with pytest.raises(DataFileError) as exc:
        parse_catalogue(_cat(rows), "test.yaml")
    assert "devices[dev]" in str(exc.value) and fragment in str(exc.value)
    assert "test.yaml" in str(exc.value)


def test_unknown_field_names_the_location():
    rows = [_row(100, 600, 42, 36, colour="red")]
    with pytest.raises(DataFileError, match=r"devices\.0\.zones\.0\.colour"):
        parse_catalogue(_cat(rows))


def test_interpolation_between_rows_and_no_extrapolation():
    cat = parse_catalogue(_cat([_row(60, 300, 30, 20), _row(60, 600, 40, 30),
                                _row(100, 300, 34, 24), _row(100, 600, 44, 34)]))
    dev = cat.get("dev")
    mid, used = zone_dimensions(dev, power_w=80, time_s=450)
    assert mid["length_mm"] == pytest.approx(37.0) and mid["diameter_mm"] == pytest.approx(27.0)
    assert len(used) == 4
    with pytest.raises(InputError, match="does not extrapolate"):
        zone_dimensions(dev, power_w=60, time_s=900)
    with pytest.raises(InputError, match="outside the sourced table"):
        zone_dimensions(dev, power_w=120, time_s=300)


def test_cryo_isotherms_must_nest():
    rows = [{"time_s": 600, "isotherm_c": 0, "length_mm": 40, "diameter_mm": 30, "source": "x"},
            {"time_s": 600, "isotherm_c": -40, "length_mm": 45, "diameter_mm": 20, "source": "x"}]
    with pytest.raises(DataFileError, match="shrinks with more isotherm temperature"):
        parse_catalogue(_cat(rows, modality="cryo"))
