"""Zone tables beyond microwave power x time: evidence tables, RF exposure, IRE pairs, ethanol, tissue."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from openir.cli import app
from openir.core.errors import DataFileError, InputError
from openir.plan import load_catalogue, predict_zone, zone_dimensions
from openir.plan.devices import parse_catalogue
from openir.plan.models import Probe
from openir.plan.placement import zone_options


def _cat(rows, modality="microwave", dev_id="dev"):
    return parse_catalogue({"catalogue_version": "t1", "devices": [
        {"id": dev_id, "name": "d", "manufacturer": "m", "modality": modality, "zones": rows}]})


def _mw(p, t, length, dia, **kw):
    return {"power_w": p, "time_s": t, "length_mm": length, "diameter_mm": dia, "source": "paper X", **kw}


def test_default_table_is_the_manufacturer_chart_and_others_are_chosen_by_name():
    dev = _cat([_mw(65, 600, 47, 35, evidence="manufacturer"),
                _mw(65, 600, 36, 27, evidence="clinical", beyond_tip_mm=6)]).get("dev")
    dims, rows = zone_dimensions(dev, power_w=65, time_s=600)
    assert (dims["length_mm"], dims["diameter_mm"]) == (47, 35) and rows[0].evidence == "manufacturer"
    dims, rows = zone_dimensions(dev, power_w=65, time_s=600, evidence="clinical")
    assert (dims["length_mm"], dims["diameter_mm"]) == (36, 27)
    assert dims["tip_to_centre_mm"] == pytest.approx(36 / 2 - 6)  # derived from the reach past the tip
    with pytest.raises(InputError, match="no sourced 'ex vivo' rows; it has: manufacturer, clinical"):
        zone_dimensions(dev, power_w=65, time_s=600, evidence="ex vivo")


def test_same_setting_twice_in_one_table_is_a_duplicate_but_not_across_tables():
    with pytest.raises(DataFileError, match="duplicates the setting"):
        _cat([_mw(65, 600, 47, 35, evidence="clinical"), _mw(65, 600, 36, 27, evidence="clinical")])
    _cat([_mw(65, 600, 47, 35, evidence="manufacturer"), _mw(65, 600, 36, 27, evidence="clinical")])


def test_reach_past_the_tip_cannot_put_the_centre_ahead_of_the_tip():
    with pytest.raises(DataFileError, match="beyond_tip_mm 30.0 puts the zone centre ahead"):
        _cat([_mw(65, 600, 40, 30, beyond_tip_mm=30)])


def test_impedance_controlled_rf_rows_need_exposure_not_power():
    rf = [{"time_s": 720, "exposure_mm": 20, "control": "impedance", "length_mm": 26, "diameter_mm": 20, "source": "p"},
          {"time_s": 720, "exposure_mm": 30, "control": "impedance", "length_mm": 38, "diameter_mm": 29, "source": "p"}]
    dev = _cat(rf, modality="radiofrequency").get("dev")
    dims, _ = zone_dimensions(dev, time_s=720, exposure_mm=30)
    assert dims["length_mm"] == 38
    with pytest.raises(InputError, match="exposure_mm is needed; the sourced table has 20 mm, 30 mm"):
        zone_dimensions(dev, time_s=720)
    with pytest.raises(InputError, match="no sourced rows for exposure_mm 25 mm"):
        zone_dimensions(dev, time_s=720, exposure_mm=25)  # an exposure is a different electrode: no blending
    with pytest.raises(InputError, match="impedance-controlled"):
        zone_dimensions(dev, time_s=720, exposure_mm=30, power_w=200)
    bad = [{"time_s": 720, "control": "impedance", "length_mm": 26, "diameter_mm": 20, "source": "p"}]
    with pytest.raises(DataFileError, match="exposure_mm is missing"):
        _cat(bad, modality="radiofrequency")
    bad = [{"time_s": 720, "length_mm": 26, "diameter_mm": 20, "source": "p"}]
    with pytest.raises(DataFileError, match="needs power_w or exposure_mm"):
        _cat(bad, modality="radiofrequency")


def test_ire_pair_interpolates_over_spacing_and_orients_the_width_in_the_electrode_plane():
    rows = [{"spacing_mm": 15, "exposure_mm": 20, "length_mm": 30, "diameter_mm": 30, "diameter2_mm": 17,
             "tip_to_centre_mm": 10, "probes": 2, "source": "p"},
            {"spacing_mm": 20, "exposure_mm": 20, "length_mm": 32, "diameter_mm": 39, "diameter2_mm": 19,
             "tip_to_centre_mm": 10, "probes": 2, "source": "p"}]
    cat = _cat(rows, modality="ire")
    dims, used = zone_dimensions(cat.get("dev"), spacing_mm=17.5)
    assert dims["diameter_mm"] == pytest.approx(34.5) and len(used) == 2
    with pytest.raises(InputError, match="does not extrapolate"):
        zone_dimensions(cat.get("dev"), spacing_mm=25)
    probe = Probe(device="dev", tip_lps=(0, 0, 0), direction_lps=(0, 0, 1), spacing_mm=15, plane_lps=(1, 1, 0))
    e = predict_zone(probe, cat)
    assert np.allclose(e.centre_lps, (0, 0, -10))
    assert np.allclose(np.abs(e.axes_lps[1]), np.array([1, 1, 0]) / np.sqrt(2))
    assert e.semi_axes_mm == pytest.approx((15, 15, 8.5))
    with pytest.raises(Exception, match="parallel to the shaft"):
        predict_zone(probe.model_copy(update={"plane_lps": (0, 0, 2)}), cat)
    # multi-probe table rows are for look-up: the planner places whole arrays (physics array zones)
    opts, notes = zone_options(cat, "ire", "liver", tissue="any")
    assert opts == [] and any("look-up only" in n for n in notes)


def test_ethanol_zone_grows_with_the_injected_volume():
    rows = [{"injected_ml": 2, "length_mm": 12, "diameter_mm": 10, "source": "p"},
            {"injected_ml": 4, "length_mm": 22, "diameter_mm": 20, "source": "p"}]
    dev = _cat(rows, modality="chemical").get("dev")
    assert zone_dimensions(dev, injected_ml=3)[0]["diameter_mm"] == pytest.approx(15)
    with pytest.raises(DataFileError, match="shrinks with more injected volume"):
        _cat([rows[0], {**rows[1], "diameter_mm": 8}], modality="chemical")


def test_rows_of_several_tissues_need_the_tissue_named():
    rows = [{"time_s": 240, "length_mm": 38, "diameter_mm": 17, "tissue": "liver (in vivo porcine)", "source": "p"},
            {"time_s": 240, "length_mm": 30, "diameter_mm": 20, "tissue": "kidney (in vivo porcine)", "source": "p"}]
    dev = _cat(rows, modality="cryo").get("dev")
    with pytest.raises(InputError, match="several tissues"):
        zone_dimensions(dev, time_s=240)
    assert zone_dimensions(dev, time_s=240, tissue="kidney")[0]["length_mm"] == 30
    with pytest.raises(InputError, match="no sourced rows measured in 'lung'"):
        zone_dimensions(dev, time_s=240, tissue="lung")


def test_multi_probe_rows_without_a_placement_model_are_lookup_only():
    rows = [{"time_s": 900, "length_mm": 68, "diameter_mm": 43, "probes": 2, "tissue": "liver", "source": "p"}]
    cat = _cat(rows, modality="cryo")
    assert zone_dimensions(cat.get("dev"), time_s=900)[0]["length_mm"] == 68
    opts, notes = zone_options(cat, "cryo", "liver")
    assert opts == [] and any("look-up only" in n for n in notes)


def test_packaged_catalogue_every_sourced_row_predicts_a_zone():
    """Each sourced row of the shipped catalogue can be looked up by its own setting."""
    cat = load_catalogue()
    n = 0
    for dev in cat.devices:
        for kind in dev.evidence_kinds:
            for r in dev.table(kind) if kind is not None else [r for r in dev.usable_rows() if r.evidence is None]:
                dims, used = zone_dimensions(dev, power_w=r.power_w, time_s=r.time_s, isotherm_c=r.isotherm_c,
                                             exposure_mm=r.exposure_mm, spacing_mm=r.spacing_mm,
                                             injected_ml=r.injected_ml, evidence=kind, tissue=r.tissue)
                assert used == [r] and dims["length_mm"] == r.length_mm, (dev.id, r.label())
                n += 1
    assert n >= 8


def test_devices_cli_list_show_zone_chart(tmp_path):
    run = CliRunner().invoke
    r = run(app, ["devices", "list", "--json"])
    assert r.exit_code == 0, r.output
    listed = {d["id"]: d for d in json.loads(r.output)["devices"]}
    assert listed["emprint"]["sourced_rows"] >= 1 and listed["amica"]["sourced_rows"] == 0
    r = run(app, ["devices", "show", "emprint"])
    assert r.exit_code == 0 and "100 W, 600 s" in r.output
    r = run(app, ["devices", "zone", "emprint", "--power", "100", "--minutes", "10", "--json"])
    assert r.exit_code == 0, r.output
    z = json.loads(r.output)
    assert 41 <= z["length_mm"] <= 42 and z["diameter_mm"] == pytest.approx(36, abs=0.5) and z["sources"]
    png = tmp_path / "chart.png"
    r = run(app, ["devices", "chart", "neuwave_pr", "-o", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["zone", "emprint", "--power", "100", "--minutes", "20"], "does not extrapolate"),
    (["zone", "no_such_device"], "unknown device"),
    (["chart", "amica"], "no sourced zone rows"),
    (["zone", "visica2", "--minutes", "4"], "several tissues"),
])
def test_devices_cli_bad_requests_exit_2_with_one_line(args, message, tmp_path):
    r = subprocess.run([sys.executable, "-m", "openir", "devices", *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
