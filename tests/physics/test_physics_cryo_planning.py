"""Cryo planning isotherm per schedule (sourced, conservative default), the validation gel, and
`python -m openir.physics.array_table --only` regenerating one modality while keeping the other."""

from __future__ import annotations

import json

import pytest

from openir.physics import array_table as at
from openir.physics import load_array_data
from openir.physics.arrays import ArrayDims
from openir.physics.cryo_array import gel_table, isotherm_source
from openir.physics.tissues import load_tissue_table


def test_planning_isotherm_per_schedule_is_sourced_and_conservative():
    c = load_array_data().cryo
    rows = {r.freezes: r for r in c.planning_isotherms}
    assert set(rows) == {1, 2}
    for r in rows.values():
        assert len(r.source) > 40 and "NOT SOURCED" not in r.source
    assert "PMC2762356" in rows[2].source and "-20 to -25" in rows[2].source
    assert "-40 C" in rows[1].source
    # single freeze -40 C, double freeze-thaw -30 C (colder than the -20/-25 C double-freeze
    # threshold), anything else the most conservative sourced value
    assert c.planning_isotherm([15]).value == -40.0
    assert c.planning_isotherm([10, 8, 10]).value == -30.0
    assert c.planning_isotherm([5, 5, 5, 5, 5]).value == c.default_isotherm_c.value == -40.0
    assert c.planning_isotherm(None).value == -30.0  # the default schedule is 10-8-10
    coldest = min(s.value for s in c.lethal_isotherms_c)
    assert c.default_isotherm_c.value == coldest
    assert all(r.value <= -30.0 for r in c.planning_isotherms)  # never the -20 C end
    assert isotherm_source(-30.0) == rows[2].source


def test_table_default_setting_follows_the_schedule():
    s = at._defaults("cryo", None)
    assert s.schedule_min == (10.0, 8.0, 10.0) and s.isotherm_c == -30.0
    single = at._defaults("cryo", at.ArraySetting(schedule_min=(15.0,)))
    assert single.isotherm_c == -40.0
    explicit = at._defaults("cryo", at.ArraySetting(isotherm_c=-20.0))
    assert explicit.isotherm_c == -20.0


def test_gel_phantom_is_water_like_and_sourced():
    g = load_array_data().cryo.phantom
    assert g is not None
    for name in type(g).model_fields:
        assert len(getattr(g, name).source) > 10, name
    t = gel_table(load_tissue_table())
    agar = t.tissue("agar")
    # water: rho c = 4.18 MJ/m3/K, no perfusion; freezing at 0 C with water's latent heat
    assert agar.volumetric_heat_capacity == pytest.approx(4.18e6)
    assert agar.perfusion_1_s.value == 0.0
    assert t.freezing.liquidus_c.value == 0.0
    assert t.freezing.latent_heat_j_m3.value == pytest.approx(3.34e8)
    assert t.freezing.frozen_conductivity_w_m_k.value == g.frozen_conductivity_w_m_k.value
    # the packaged tissue table is untouched
    assert load_tissue_table().freezing.liquidus_c.value == -1.0


def _dims(v: float) -> ArrayDims:
    return ArrayDims(along_mm=v, across1_mm=v, across2_mm=v, centre_offset_mm=1.0, volume_ml=1.0)


def test_only_cryo_regenerates_cryo_rows_and_keeps_ire_rows(tmp_path, monkeypatch):
    path = tmp_path / "table.json"
    ire_rows = {"ire|1500": {"2": {"15": _dims(33.0).model_dump(exclude={"source"})}}}
    old_cryo = {"cryo|-30|10-8-10": {"2": {"10": _dims(1.0).model_dump(exclude={"source"}),
                                           "25": _dims(2.0).model_dump(exclude={"source"})}}}
    path.write_text(json.dumps({"entries": {**ire_rows, **old_cryo}}))
    monkeypatch.setattr(at, "TABLE_JSON", path)
    calls: list[tuple] = []

    def fake_cryo(n, spacing, schedule):
        calls.append(("cryo", n, spacing))
        return {iso: _dims(100.0 + spacing) for iso in at.CRYO_TABLE_ISOTHERMS_C}

    def fake_sim(*a, **k):  # IRE must not be computed
        raise AssertionError("IRE rows computed under --only cryo")

    monkeypatch.setattr(at, "_cryo_all_isotherms", fake_cryo)
    monkeypatch.setattr(at, "_simulate", fake_sim)
    at.main(["--write", "--only", "cryo", "--probes", "2"])
    out = json.loads(path.read_text())["entries"]
    assert out["ire|1500"] == ire_rows["ire|1500"]  # kept byte for byte
    assert calls == [("cryo", 2, s) for s in at.TABLE_SPACINGS_MM]
    for key in ("cryo|-40|10-8-10", "cryo|-30|10-8-10", "cryo|-20|10-8-10"):
        assert {k: v["across1_mm"] for k, v in out[key]["2"].items()} == {"10": 110.0, "15": 115.0, "20": 120.0,
                                                                           "25": 125.0}
    at._table.cache_clear()
    at._lookup.cache_clear()


def test_only_is_refused_for_an_unknown_modality(capsys):
    with pytest.raises(SystemExit) as e:
        at.main(["--only", "microwave"])
    assert e.value.code == 2
