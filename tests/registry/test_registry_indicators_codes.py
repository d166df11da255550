"""TACE necrosis, per-technique and per-diagnosis indicators, sourced targets, empty registry (both backends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openir.core.errors import InputError
from openir.registry.catalogue import load_catalogue
from openir.registry.codes import resolve_diagnosis
from openir.registry.indicators import compute_indicators, load_indicators


def test_tace_necrosis_from_percent_else_response(seeded):
    engine, ds = seeded
    tab = compute_indicators(engine, by=("hospital", "all"))
    p = ds.procedures[ds.procedures["technique"].isin(["tace", "pvtt_treatment"])]
    pct = pd.to_numeric(p["necrosis_pct"])
    resp = p["mrecist"].isin(["CR", "PR"])
    ok = np.where(pct.notna(), pct >= 50, resp)  # independent reading of the definition
    known = pct.notna() | p["mrecist"].notna()
    pooled = tab[(tab["indicator"] == "tace_necrosis") & (tab["level_by"] == "all")].iloc[0]
    assert pooled["n"] == int(known.sum()) and pooled["x"] == int(ok[known.to_numpy()].sum())
    h = tab[(tab["indicator"] == "tace_necrosis") & (tab["level_by"] == "hospital")].set_index("unit")
    want = p.assign(ok=ok, known=known)[known.to_numpy()].groupby("hospital_code")["ok"].agg(["size", "sum"])
    for code, row in want.iterrows():
        assert h.loc[code, "n"] == row["size"] and h.loc[code, "x"] == row["sum"]


def test_puncture_bleeding_per_technique_and_disease(seeded):
    engine, ds = seeded
    tab = compute_indicators(engine, by=("technique", "disease"))
    pb = tab[tab["indicator"] == "puncture_bleeding"]
    p = ds.procedures
    by_t = p.groupby("technique")["puncture_bleeding"].agg(["size", "sum"])
    t = pb[pb["level_by"] == "technique"].set_index("unit")
    for code, row in by_t.iterrows():
        assert t.loc[code, ["n", "x"]].tolist() == [row["size"], row["sum"]]
        assert "/" in t.loc[code, "label"]
    codes = p["disease"].map(lambda d: resolve_diagnosis(d).code)
    by_d = p.assign(code=codes).groupby("code")["puncture_bleeding"].agg(["size", "sum"])
    d = pb[pb["level_by"] == "disease"].set_index("unit")
    assert set(d.index) == set(by_d.index)
    for code, row in by_d.iterrows():
        assert d.loc[code, ["n", "x"]].tolist() == [row["size"], row["sum"]]
    assert d.loc["C22.0", "label"] == "肝细胞癌 / Liver cell carcinoma"


def test_targets_carry_sources_and_category_overrides(seeded):
    engine, ds = seeded
    tab = compute_indicators(engine, by=("technique", "hospital"))
    ts = tab[tab["indicator"] == "technical_success"]
    biopsy = ts[(ts["level_by"] == "technique") & (ts["unit"] == "ct_biopsy")].iloc[0]
    assert (biopsy["target"], biopsy["alarm_level"]) == (0.90, 0.80) and "rcr.ac.uk" in biopsy["alarm_source"]
    other = ts[(ts["level_by"] == "technique") & (ts["unit"] == "tace")].iloc[0]
    assert (other["target"], other["alarm_level"]) == (0.95, 0.90) and other["alarm_source"].startswith("NOT SOURCED")
    hosp = ts[ts["level_by"] == "hospital"]  # hospitals mix categories: the indicator's own level
    assert set(hosp["alarm_level"]) == {0.90}
    m = tab[(tab["indicator"] == "mortality_30d") & (tab["level_by"] == "hospital")].iloc[0]
    assert m["alarm_level"] == 0.01 and "综合介入诊疗技术管理规范" in m["alarm_source"]
    for d in load_indicators():  # every level says where it comes from, or that it is not sourced
        for t in [d.target, d.alarm, *(x for c in d.by_category.values() for x in (c.target, c.alarm) if x)]:
            assert t.source.startswith("NOT SOURCED") or (" 20" in t.source or "19" in t.source)
            assert t.verified is False or ("VERIFY" not in t.source and "read" in t.source)


@pytest.mark.parametrize("level, message", [
    ("{value: 0.05}", r"\[indicators\.0\.alarm\.source\]: Field required"),
    ("{value: 0.05, source: '   :  '}", r"\[indicators\.0\.alarm\]: .*needs a source"),
    ("{value: 0.05, verified: true, source: 'NOT SOURCED: placeholder'}", r"cannot be verified"),
])
def test_loader_refuses_a_level_without_a_source(tmp_path, level, message):
    from openir.core.errors import DataFileError

    f = tmp_path / "ind.yaml"
    f.write_text("version: 2\nindicators:\n  - {code: x, title: X, numerator: [{field: died, eq: true}], "
                 f"direction: lower_better, definition_source: d, target: {{value: 0.01, source: 'NOT SOURCED: p'}}, alarm: {level}}}\n")
    with pytest.raises(DataFileError, match=message):
        load_indicators(str(f))


def test_empty_registry_is_a_clear_error(engine):
    with pytest.raises(InputError, match="no procedures yet"):
        compute_indicators(engine)


def test_indication_codes_cover_the_catalogue_wording():
    """Each technique's English indications resolve to codes inside its own indication codes."""
    cat = load_catalogue()
    for t in cat.techniques.values():
        for text in t.indications:
            if text in ("trauma", "tumour staging"):
                continue  # umbrella words with no single ICD-10 code
            res = resolve_diagnosis(text)
            assert res is not None, (t.code, text)
            assert not cat._indication_flags(t, {"diagnosis_code": res.code}), (t.code, text, res.code)


@pytest.mark.parametrize(("technique", "disease", "rule"), [
    ("tace", "肝细胞癌", None), ("tace", "原发性肝癌", None), ("tace", "C22.0", None), ("tace", "Ｃ２２．０", None),
    ("tace", "C22.000x001", None), ("liver_mwa", "肝转移瘤", None), ("uae", "肺癌", "indication"),
    ("lung_ablation", "C34.1", None), ("tace", "K76.6", "indication"), ("tace", "某种怪病", "diagnosis_uncoded"),
])
def test_indications_checked_by_code_in_any_language(technique, disease, rule):
    flags = load_catalogue().check_procedure(technique=technique, hospital_level="tertiary", credential="senior",
                                             record={"disease": disease})
    assert [f["rule"] for f in flags] == ([rule] if rule else [])
