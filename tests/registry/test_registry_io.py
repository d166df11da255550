"""CSV/Excel import (all or nothing), de-identified export, FHIR R4 Bundle."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_sites
from openir.registry.export import export_research, fhir_bundle, research_table
from openir.registry.importer import ImportValidationError, import_procedures, write_import_csv
from openir.registry.models import AdverseEvent, AuditLog, Procedure


@pytest.fixture
def sites_and_csv(engine, tmp_path):
    ds = generate_registry(300, 8, seed=11)
    with engine.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    path = write_import_csv(ds.procedures, ds.adverse_events, tmp_path / "procedures.csv")
    return engine, ds, path


def _count(engine, model):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_good_file_imports_once_and_is_idempotent(sites_and_csv):
    engine, ds, path = sites_and_csv
    rep = import_procedures(engine, path, actor="importer")
    assert rep.ok and rep.stored["procedures"] == 300
    assert _count(engine, Procedure) == 300
    assert _count(engine, AdverseEvent) == ds.adverse_events["procedure_uid"].nunique()
    again = import_procedures(engine, path)
    assert again.stored["procedures"] == 0 and again.stored["skipped"] == 300
    with engine.connect() as conn:
        audit = conn.execute(sa.select(AuditLog).where(AuditLog.action == "bulk_import")).all()
    assert len(audit) == 1 and audit[0].actor == "importer" and audit[0].after["procedures"] == 300


def test_bad_row_reported_with_row_and_field_and_nothing_stored(sites_and_csv, tmp_path):
    engine, _, path = sites_and_csv
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[41, "asa_class"] = "7"  # spreadsheet row 43
    df.loc[99, "date"] = "2023-02-30"  # row 101
    df.loc[150, "technique"] = "laser_magic"  # row 152
    df.loc[200, "operator_code"] = "NOBODY"  # row 202
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(ImportValidationError) as err:
        import_procedures(engine, bad)
    problems = {(p.row, p.field) for p in err.value.report.problems}
    assert {(43, "asa_class"), (101, "date"), (152, "technique"), (202, "operator_code")} <= problems
    assert "row 43" in str(err.value) and "asa_class" in str(err.value)
    assert _count(engine, Procedure) == 0 and _count(engine, AdverseEvent) == 0
    assert _count(engine, AuditLog) == 0


def test_excel_import(sites_and_csv, tmp_path):
    engine, _, path = sites_and_csv
    xlsx = tmp_path / "p.xlsx"
    pd.read_csv(path, dtype=str).head(20).to_excel(xlsx, index=False)
    assert import_procedures(engine, xlsx).stored["procedures"] == 20


def test_deidentified_export(sites_and_csv, tmp_path):
    engine, ds, path = sites_and_csv
    import_procedures(engine, path)
    t = research_table(engine, salt=b"s1")
    assert len(t) == 300
    text = t.to_csv()
    assert not any(k in text for k in ds.procedures["patient_key"].head(50))
    assert not any(u in text for u in ds.procedures["uid"].head(50))
    assert "date" not in t.columns and t["age_band"].dropna().str.match(r"^\d+-\d+$").all()
    assert research_table(engine, salt=b"s1")["subject"].equals(t["subject"])
    assert not research_table(engine, salt=b"s2")["subject"].equals(t["subject"])
    pq = export_research(engine, tmp_path / "x.parquet", salt=b"s1")
    assert pd.read_parquet(pq).shape == t.shape
    csv = export_research(engine, tmp_path / "x.csv", salt=b"s1")
    assert pd.read_csv(csv).shape == t.shape


def test_fhir_bundle_structure(sites_and_csv):
    engine, ds, path = sites_and_csv
    import_procedures(engine, path)
    b = json.loads(json.dumps(fhir_bundle(engine, salt=b"k")))
    assert b["resourceType"] == "Bundle" and b["type"] == "collection"
    res = [e["resource"] for e in b["entry"]]
    kinds = pd.Series([r["resourceType"] for r in res]).value_counts()
    assert kinds["Procedure"] == 300 and kinds["Patient"] == ds.procedures["patient_key"].nunique()
    assert kinds["AdverseEvent"] == len(ds.adverse_events[ds.adverse_events["procedure_uid"].isin(ds.procedures["uid"])]) and kinds["Observation"] > 300
    urls = {e["fullUrl"] for e in b["entry"]}
    assert len(urls) == len(b["entry"]) and all(u.startswith("urn:uuid:") for u in urls)
    for r in res:  # every reference resolves inside the bundle; required R4 elements present
        for ref in [r.get("subject"), *r.get("partOf", []), *[s["instance"] for s in r.get("suspectEntity", [])]]:
            if ref:
                assert ref["reference"] in urls
        if r["resourceType"] == "Procedure":
            assert r["status"] == "completed" and "code" in r
        if r["resourceType"] == "Observation":
            assert r["status"] == "final" and any(k.startswith("value") for k in r)
        if r["resourceType"] == "AdverseEvent":
            assert r["actuality"] == "actual"
        if r["resourceType"] == "Patient":
            assert set(r) <= {"resourceType", "id", "identifier", "gender"}
