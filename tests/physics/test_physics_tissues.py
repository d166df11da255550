"""Tissue table: packaged file validates, every value is sourced, bad files name the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from openir.core.errors import DataFileError, InputError
from openir.core.labels import LabelMap
from openir.core.volume import make_affine
from openir.physics.presets import find_device, load_presets, source_parameters
from openir.physics.tissues import (
    TISSUES_YAML,
    load_tissue_table,
    tissue_for_label,
    tissue_index_map,
)


def test_packaged_table_has_liver_reference_values() -> None:
    t = load_tissue_table()
    liver = t.tissue("liver")
    assert (liver.density_kg_m3.value, liver.conductivity_w_m_k.value, liver.heat_capacity_j_kg_k.value) == (1079, 0.52, 3540)
    assert t.thermal_dose.lethal_cem43_min.value == 240
    assert t.thermal_dose.r_above_43.value == 0.5 and t.thermal_dose.r_below_43.value == 0.25
    for tissue in t.tissues.values():
        for f in ("density_kg_m3", "heat_capacity_j_kg_k", "conductivity_w_m_k", "perfusion_1_s"):
            assert len(getattr(tissue, f).source) > 10


def test_bad_table_names_file_and_field(tmp_path: Path) -> None:
    raw = yaml.safe_load(TISSUES_YAML.read_text())
    raw["tissues"]["liver"]["conductivity_w_m_k"]["value"] = -1
    bad = tmp_path / "t.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataFileError, match=r"t\.yaml \[tissues\.liver\.conductivity_w_m_k\.value\]"):
        load_tissue_table(bad)
    raw["tissues"]["liver"]["conductivity_w_m_k"] = {"value": 0.52}
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataFileError, match="source"):
        load_tissue_table(bad)


def test_label_mapping() -> None:
    assert tissue_for_label("Liver") == "liver"
    assert tissue_for_label("tumour_2") == "tumour"
    assert tissue_for_label("portal_vein") is None  # a vessel, not perfused tissue
    assert tissue_for_label("gallbladder") == load_tissue_table().default_tissue.value
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[1] = 1
    arr[2] = 2
    lm = LabelMap(arr, make_affine([1, 1, 1]), {}, {1: "liver", 2: "hepatic_veins"})
    idx, names, vessels = tissue_index_map(lm)
    assert names[idx[1, 0, 0]] == "liver"
    assert set(vessels) == {"hepatic_veins"} and vessels["hepatic_veins"].sum() == 16


def test_presets() -> None:
    key, dev = find_device("Emprint")
    assert key == "emprint" and dev.kind == "microwave"
    params, _ = source_parameters(dev, 100, 600)
    assert 0 < params["absorbed_fraction"] <= 1
    assert find_device("some_rf_probe", kind="radiofrequency")[0] == "generic_radiofrequency"
    with pytest.raises(InputError, match="unknown device"):
        find_device("nope")
    assert load_presets().devices["generic_cryo"].parameters["temperature_c"].value < -100
