"""SOP data files: one per catalogued technique, every item sourced; units and bad input."""

from __future__ import annotations

import pytest
import yaml

from openir.core import InputError
from openir.sop import PatientValues, check_patient, load_checks, load_sop, technique_ids
from openir.sop.models import SOPCheck
from openir.sop.units import normalise_lab

CATALOGUE = "src/openir/registry/data/techniques.yaml"


def test_every_catalogued_technique_has_an_sop():
    from importlib import resources

    text = resources.files("openir.registry").joinpath("data/techniques.yaml").read_text(encoding="utf-8")
    codes = {t["code"] for t in yaml.safe_load(text)["techniques"]}
    assert set(technique_ids()) == codes
    for code in codes:
        sop = load_sop(code)
        assert sop.technique == code and sop.bleeding_risk.class_ in ("low", "high")


def test_every_item_has_a_source_and_both_languages():
    for code in technique_ids():
        sop = load_sop(code)
        for group in (sop.indications, sop.contraindications, sop.consent, sop.steps, sop.observation, sop.complications):
            for item in group:
                assert item.source and item.en and item.zh
    for rule in load_checks().checks:
        assert len(rule.source) > 20 and rule.en and rule.zh


def test_key_techniques_have_full_sops_and_published_thresholds():
    for code in ("liver_mwa", "liver_rfa", "ct_biopsy", "abscess_drainage", "tace", "seed_implantation"):
        assert load_sop(code).status == "full"
    rules = {r.id: r for r in load_checks().checks}
    # SIR 2019 (Patel et al.): high risk INR <= 1.5-1.8, platelets 50; low risk INR <= 2.0-3.0, platelets 20
    assert rules["inr_high_risk"].block == {"gt": 1.8} and rules["inr_high_risk"].warn == {"gt": 1.5}
    assert rules["platelets_high_risk"].block == {"lt": 50} and rules["platelets_low_risk"].block == {"lt": 20}
    assert rules["inr_low_risk"].block == {"gt": 3.0} and rules["inr_arterial_femoral"].block == {"ge": 1.8}
    assert rules["egfr_iodinated_contrast"].warn == {"lt": 30}  # ACR-NKF 2020
    assert load_sop("liver_mwa").bleeding_risk.class_ == "high" and load_sop("tace").bleeding_risk.class_ == "low"


@pytest.mark.parametrize(("raw", "expected"), [
    (150, 150.0), ("150000 /uL", 150.0), ("150 x10^9/L", 150.0), ({"value": 150, "unit": "10^3/µL"}, 150.0),
    ("150000/mm3", 150.0), ("150 G/L", 150.0),
])
def test_platelet_units_are_normalised(raw, expected):
    assert normalise_lab("platelets", raw) == pytest.approx(expected)


def test_haemoglobin_in_g_per_dl_is_converted():
    assert PatientValues(haemoglobin="12.5 g/dL").haemoglobin == pytest.approx(125.0)


@pytest.mark.parametrize(("values", "field", "words"), [
    ({"platelets": 150000}, "platelets", "looks like /uL"),
    ({"platelets": "150 cells"}, "platelets", "unknown unit"),
    ({"platelets": float("nan")}, "platelets", "NaN"),
    ({"inr": "nan"}, "inr", "NaN"),
    ({"egfr": float("nan")}, "egfr", "NaN"),
    ({"inr": "high"}, "inr", "not a number"),
    ({"sex": "M", "pregnancy": "pregnant"}, None, "pregnant"),
    ({"platelets_count": 10}, "platelets_count", "Extra"),
])
def test_bad_values_are_refused_naming_the_field(values, field, words):
    with pytest.raises(InputError) as exc:
        check_patient("tace", values)
    assert exc.value.field == field and words in str(exc.value)


def test_unknown_technique_is_refused():
    with pytest.raises(InputError, match="no SOP for technique 'liver_laser'"):
        check_patient("liver_laser", {})


def test_missing_values_are_deviations_not_passes():
    r = check_patient("liver_mwa", {})
    missing = {d.check: d.severity for d in r.deviations if d.kind == "missing"}
    assert missing == {"inr_high_risk": "block", "platelets_high_risk": "block", "antithrombotic_high_risk": "warn",
                       "pregnancy": "warn", "child_pugh_contraindication": "warn", "coded_contraindication": "warn",
                       "indication": "warn"}
    assert r.blocked and r.n_block == 2 and r.n_warn == 5


def test_a_deviation_names_value_threshold_and_source_in_both_languages():
    r = check_patient("ct_biopsy", {"inr": 1.2, "platelets": "40000/uL", "sex": "M", "diagnosis_code": "C34",
                                    "conditions": [], "antithrombotics": []})
    (d,) = r.deviations
    assert (d.check, d.value, d.threshold, d.severity) == ("platelets_high_risk", 40.0, "< 50 10^9/L", "block")
    assert "Patel" in d.source and "50" in d.message_en and "血小板" in d.message_zh
    again = SOPCheck.model_validate_json(r.model_dump_json())
    assert again.deviations == r.deviations and again.values == r.values


def test_antithrombotics_are_listed_and_anticoagulant_holds_checked():
    base = {"inr": 1.0, "platelets": 200, "sex": "M", "child_pugh": "A", "diagnosis_code": "C22.0", "conditions": []}
    agents = [{"name": "rivaroxaban", "kind": "anticoagulant", "last_dose": "2026-11-30T08:00"},
              {"name": "aspirin", "kind": "antiplatelet"}]
    r = check_patient("liver_rfa", {**base, "antithrombotics": agents, "procedure_at": "2026-12-01T08:00"})
    listed, held = r.deviations
    assert listed.value == ("rivaroxaban (anticoagulant, last dose 2026-11-30 08:00); "
                            "aspirin (antiplatelet, last dose not recorded)")
    # 2 d hold (ACC/AHA 2023 Table 18, PAUSE) read as 24 x 2 + 12 = 60 h; 24 h have passed
    assert (held.check, held.severity, held.value) == (
        "anticoagulant_withholding_high_risk", "block", "rivaroxaban: 24 h since the last dose, 60 h needed (2 d)")
    ok = check_patient("liver_rfa", {**base, "antithrombotics": agents[:1], "procedure_at": "2026-12-02T20:00"})
    assert [d.check for d in ok.deviations] == ["antithrombotic_high_risk"]  # 60 h exactly: held long enough
    zh = check_patient("liver_rfa", {**base, "antithrombotics": [{"name": "华法林", "kind": "anticoagulant",
                                                                   "last_dose": "2026-11-28T20:00"}],
                                     "procedure_at": "2026-12-01T08:00"})
    assert zh.deviations[1].severity == "block" and "132 h needed" in zh.deviations[1].value  # warfarin 5 d
    unknown = check_patient("liver_rfa", {**base, "antithrombotics": agents})  # no procedure time
    assert [(d.check, d.severity, d.kind) for d in unknown.deviations][1] == (
        "anticoagulant_withholding_high_risk", "warn", "missing")
    low = check_patient("tace", {**base, "egfr": 90, "antithrombotics": agents, "procedure_at": "2026-12-01T08:00"})
    assert low.deviations == []  # low bleeding risk: not withheld (SIR 2019)


def test_check_table_refuses_unknown_techniques_and_text_in_lab_columns():
    import pandas as pd

    from openir.sop import check_table

    with pytest.raises(InputError, match="no SOP for technique"):
        check_table(pd.DataFrame({"technique": ["tace", "liver_laser"]}))
    with pytest.raises(InputError, match="row 2: 'high' is not a number") as exc:
        check_table(pd.DataFrame({"technique": ["tace", "tace"], "inr": ["1.1", "high"]}))
    assert exc.value.field == "inr"
    empty = check_table(pd.DataFrame({"technique": pd.Series([], dtype=str)}))
    assert len(empty) == 0


def test_mixed_time_zones_are_refused():
    with pytest.raises(InputError, match="time zone"):
        check_patient("liver_mwa", {"procedure_at": "2026-12-01T08:00",
                                    "antithrombotics": [{"name": "apixaban", "kind": "anticoagulant",
                                                         "last_dose": "2026-11-28T08:00+08:00"}]})
