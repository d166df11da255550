"""Technique catalogue, tier rules and their YAML validation."""

from __future__ import annotations

import pytest

from openir.core.errors import DataFileError, InputError
from openir.phantom.registry_data import TECHNIQUES
from openir.registry.catalogue import TechniqueFile, load_catalogue, load_yaml


def test_packaged_files_load_and_every_value_has_a_source():
    cat = load_catalogue()
    assert all(t.source for t in cat.techniques.values())
    assert all(v.source for v in cat.tiers.min_yearly_volume.values())
    assert {"ica_aneurysm_coiling", "carotid_stenting", "pvtt_treatment"} <= {
        c for c, t in cat.techniques.items() if t.tier == "complex"}
    county = {c for c, t in cat.techniques.items() if t.tier == "basic"}
    assert {"abscess_drainage", "biliary_stenting", "uae", "dialysis_access", "lower_limb_pta",
            "haemorrhage_embolisation"} <= county


def test_synthetic_generator_mirrors_the_catalogue():
    cat = load_catalogue()
    for code, category, tier, _disease, _ in TECHNIQUES:
        assert cat.technique(code).category == category and cat.technique(code).tier == tier


@pytest.mark.parametrize(("tech", "level", "cred", "record", "rules"), [
    ("abscess_drainage", "county", "junior", {"disease": "abscess"}, []),
    ("tace", "county", "intermediate", {"disease": "hepatocellular carcinoma"}, ["hospital_tier"]),
    ("tace", "tertiary", "junior", {"disease": "hepatocellular carcinoma"}, ["operator_tier"]),
    ("ica_aneurysm_coiling", "secondary", "intermediate", {}, ["hospital_tier", "operator_tier"]),
    ("ica_aneurysm_coiling", "tertiary", "senior", {}, []),
    ("tace", "tertiary", "senior", {"child_pugh": "C", "disease": "hepatocellular carcinoma"}, ["contraindication"]),
    ("uae", "county", "junior", {"disease": "lung cancer"}, ["indication"]),
])
def test_flags(tech, level, cred, record, rules):
    flags = load_catalogue().check_procedure(technique=tech, hospital_level=level, credential=cred, record=record)
    assert sorted(f["rule"] for f in flags) == sorted(rules)


def test_unknown_codes_are_clear_errors():
    with pytest.raises(InputError, match="unknown technique"):
        load_catalogue().technique("laser_magic")
    with pytest.raises(InputError, match="hospital level"):
        load_catalogue().check_procedure(technique="uae", hospital_level="clinic", credential="junior")


def test_bad_yaml_names_file_and_field(tmp_path):
    bad = tmp_path / "techniques.yaml"
    bad.write_text("version: 1\nsource_note: x\ntechniques:\n  - {code: a, name: A, category: c, tier: expert, organ: o, "
                   "source: s, cusum: {p0: 0.1, p1: 0.2}}\n")
    with pytest.raises(DataFileError, match=r"techniques.yaml \[techniques.0.tier\]"):
        load_yaml(bad, TechniqueFile)
    bad.write_text("version: 1\nsource_note: x\ntechniques:\n  - {code: a, name: A, category: c, tier: basic, organ: o, "
                   "source: s, cusum: {p0: 0.2, p1: 0.1}}\n")
    with pytest.raises(DataFileError, match="cusum"):
        load_yaml(bad, TechniqueFile)
