"""FHIR R4 export: structure validated by fhir.resources (R4B models), R4 required bindings, standard
codes, no identifying value (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle

from openir.core.errors import InputError
from openir.phantom.registry_data import generate_registry
from openir.registry import fhir
from openir.registry.bulk import load_sites
from openir.registry.export import export_fhir, export_research, fhir_bundle
from openir.registry.importer import import_procedures, write_import_csv
from openir.registry.models import Procedure

SECRET_TEXT = "张三 13800138000 room 12 bed 4"


@pytest.fixture
def exported(engine, tmp_path):
    ds = generate_registry(300, 6, seed=23, prefix="F")
    with engine.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    p = ds.procedures.copy()
    ae = ds.adverse_events.copy()
    first = ae.iloc[0].copy()
    # one event with permanent mild sequelae, one fatal, one with a note that identifies a person
    extra = pd.DataFrame([first.to_dict() | {"what": "stroke", "sequelae": "mild", "death": False, "therapy": "major"},
                          first.to_dict() | {"what": "haemorrhage", "death": True, "therapy": "major"},
                          first.to_dict() | {"what": SECRET_TEXT, "therapy": "none", "sequelae": "none", "death": False}])
    ae = pd.concat([ae, extra], ignore_index=True)
    path = write_import_csv(p, ae, tmp_path / "p.csv")
    import_procedures(engine, path)
    return engine, ds, ae, tmp_path


def test_bundle_validates_with_an_independent_fhir_library(exported):
    engine, _, _, tmp = exported
    out = export_fhir(engine, tmp / "b.json", salt=b"k")
    raw = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(raw)  # raises on any structural error (cardinality, types, unknown elements)
    assert fhir.binding_problems(raw) == []
    kinds = {e["resource"]["resourceType"] for e in raw["entry"]}
    assert kinds == {"Patient", "Procedure", "Observation", "AdverseEvent"}


def test_adverse_events_use_r4_value_sets_and_grades_as_extensions(exported):
    engine, ds, ae, _ = exported
    b = fhir_bundle(engine, salt=b"k")
    events = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "AdverseEvent"]
    assert len(events) == len(ae)
    outcome = pd.Series([e["outcome"]["coding"][0]["code"] for e in events]).value_counts()
    death = ae["death"].astype(bool)
    assert outcome["fatal"] == death.sum()
    assert outcome["resolvedWithSequelae"] == ((ae["sequelae"] != "none") & ~death).sum() > 0
    for e in events:
        sev = e["severity"]["coding"][0]
        assert sev["system"] == "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
        assert sev["code"] in ("mild", "moderate", "severe")
        ser = e["seriousness"]["coding"][0]["code"]
        assert ser in fhir.R4_SERIOUSNESS and ser not in ("serious", "non-serious")  # R5 spellings refused
        ext = {x["url"].rsplit(":", 1)[-1]: x for x in e["extension"]}
        sir17 = ext["sir-2017-grade"]["valueInteger"]
        assert sev["code"] == {1: "mild", 2: "moderate"}.get(sir17, "severe")
        assert 1 <= ext["cirse-2017-grade"]["valueInteger"] <= 6 and ext["sir-2003-class"]["valueCode"] in "ABCDEF"
        if e["outcome"]["coding"][0]["code"] == "fatal":
            assert ser == "SeriousResultsInDeath"


def test_standard_code_systems(exported):
    engine, ds, _, _ = exported
    b = fhir_bundle(engine, salt=b"k")
    procs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Procedure"]
    reasons = [c for p in procs for r in p.get("reasonCode", []) for c in r["coding"]]
    assert reasons and all(c["system"] == "http://hl7.org/fhir/sid/icd-10" for c in reasons)
    assert {"C22.0"} <= {c["code"] for c in reasons}
    tace = next(p for p in procs if any(c["code"] == "tace" for c in p["code"]["coding"]))
    assert {"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "99.25"} in tace["code"]["coding"]
    obs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
    units = {o["valueQuantity"]["code"] for o in obs if "valueQuantity" in o}
    assert units == {"mm", "%"}


def test_no_identifying_value_in_any_export(exported):
    engine, ds, _, tmp = exported
    texts = [export_fhir(engine, tmp / "b.json", salt=b"k").read_text(encoding="utf-8"),
             export_research(engine, tmp / "r.csv", salt=b"k").read_text(encoding="utf-8")]
    with engine.connect() as conn:
        dates = {d.isoformat() for (d,) in conn.execute(sa.select(Procedure.date))}
    for text in texts:
        assert SECRET_TEXT not in text and "13800138000" not in text
        assert not any(u in text for u in ds.procedures["uid"])  # procedure UIDs
        assert not any(k in text for k in ds.procedures["patient_key"])  # pseudonymous keys are re-keyed
        assert not any(d in text for d in dates)  # exact dates (year-month only)
    assert fhir.WITHHELD in texts[0]


def test_export_refuses_a_bundle_that_breaks_a_required_binding(exported, monkeypatch):
    engine, _, _, tmp = exported
    monkeypatch.setattr(fhir, "severity", lambda grade: "grade-" + str(grade))
    with pytest.raises(InputError, match="R4 bindings"):
        export_fhir(engine, tmp / "bad.json")
    assert not (tmp / "bad.json").exists()
