"""Modality rules: heat sink beside a 6 mm vessel, IRE near bile ducts, organ rules, override."""

from __future__ import annotations

import numpy as np
import pytest

from openir.core import Grid, InputError, LabelMap, make_affine
from openir.plan import load_catalogue
from openir.plan.modality import describe_tumour, recommend_modality
from openir.plan.rules import load_margins, load_modality_rules


def _case(extra: str | None, radius_mm: float = 3.0, organ: str = "liver", gap_mm: float = 2.0, d_mm: float = 20.0):
    n = 60
    grid = Grid((n, n, n), make_affine((1.0, 1.0, 1.0), (-30.0, -30.0, -30.0)))
    p = grid.voxel_centres()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    org = x**2 + y**2 + z**2 <= 28**2
    tum = x**2 + y**2 + z**2 <= (d_mm / 2) ** 2
    masks = {organ: org}
    if extra:  # a straight tube along S, beside the tumour
        cx = d_mm / 2 + gap_mm + radius_mm
        masks[extra] = ((x - cx) ** 2 + y**2 <= radius_mm**2) & org
    masks["tumour_1"] = tum
    return LabelMap.from_masks(masks, grid)


def test_rules_files_validate_and_every_rule_has_a_source():
    rules = load_modality_rules()
    assert rules.rules and all(r.source.strip() for r in rules.rules)
    m = load_margins()
    assert m.for_organ("liver").margin_mm == 5.0 and m.heat_sink_min_diameter_mm == 3.0


def test_tumour_beside_6mm_vessel_gets_heat_sink_warning_and_non_rf():
    lm = _case("portal_vein", radius_mm=3.0)
    f = describe_tumour(lm, "tumour_1")
    assert f.organ == "liver"
    assert "heat_sink_vessel" in f.near
    assert 5.0 <= f.heat_sink_vessels["portal_vein"] <= 8.0  # 6 mm vessel, voxelised
    rec = recommend_modality(f)
    assert any("heat sink" in fl for fl in rec.flags)
    assert rec.ranking[0].modality != "radiofrequency" and rec.chosen != "radiofrequency"
    rf = next(m for m in rec.ranking if m.modality == "radiofrequency")
    mw = next(m for m in rec.ranking if m.modality == "microwave")
    assert mw.score > rf.score and any("heat sink" in r.lower() for r in rf.reasons)
    assert any(h.rule_id == "heat_sink_vessel" and "Lu" in h.source for h in rec.hits)


def test_small_vessel_is_not_a_heat_sink():
    lm = _case("portal_vein", radius_mm=1.0)
    f = describe_tumour(lm, "tumour_1")
    assert "heat_sink_vessel" not in f.near


def test_bile_duct_prefers_ire():
    lm = _case("common_bile_duct", radius_mm=2.0)
    rec = recommend_modality(describe_tumour(lm, "tumour_1"))
    assert rec.ranking[0].modality == "ire"
    assert any("bile" in fl for fl in rec.flags)


def test_large_tumour_flags_multiple_probes():
    lm = _case(None, d_mm=40.0)
    rec = recommend_modality(describe_tumour(lm, "tumour_1"))
    assert any("multiple probes" in fl for fl in rec.flags)


@pytest.mark.parametrize("organ,first", [("thyroid", "radiofrequency"), ("kidney_left", "cryo"), ("lung_left", "microwave")])
def test_organ_rules(organ, first):
    rec = recommend_modality(describe_tumour(_case(None, organ=organ), "tumour_1"))
    assert rec.ranking[0].modality == first


def test_override_is_kept_with_the_ranking_visible():
    f = describe_tumour(_case("portal_vein"), "tumour_1")
    rec = recommend_modality(f, override="cryo")
    assert rec.chosen == "cryo" and rec.overridden and "user" in rec.note
    assert rec.ranking[0].modality != "cryo" or rec.ranking[0].score >= rec.ranking[1].score
    with pytest.raises(InputError):
        recommend_modality(f, override="laser")


def test_a_modality_without_sourced_rows_is_never_chosen():
    packaged = load_catalogue()
    no_rf = packaged.model_copy(update={"devices": [d for d in packaged.devices if d.modality != "radiofrequency"]})
    feats = describe_tumour(_case(None, organ="thyroid"), "tumour_1")
    rec = recommend_modality(feats, catalogue=no_rf)
    assert rec.ranking[0].modality == "radiofrequency"
    assert not rec.ranking[0].plannable and rec.chosen != "radiofrequency" and "no sourced" in rec.note
    assert np.isfinite(rec.ranking[0].score)
    rec = recommend_modality(feats, catalogue=packaged)  # the packaged catalogue has sourced RF rows
    assert rec.ranking[0].plannable and rec.chosen == "radiofrequency"
