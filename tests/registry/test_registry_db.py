"""Schema from migrations, audit trail, transactions (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from openir.core.errors import InputError
from openir.registry.db import head_revision, schema_revision, session_scope
from openir.registry.models import AuditLog, Base, Hospital, Procedure
from openir.registry.schemas import (
    AdverseEventIn,
    EquipmentIn,
    HospitalIn,
    OperatorIn,
    ProcedureIn,
    RoomIn,
)
from openir.registry.store import add_hospital, add_operator, record_procedure


def _site(s):
    add_hospital(s, HospitalIn(code="H1", name="County One", level="county", region="north",
                               rooms=[RoomIn(name="IR1", equipment=[EquipmentIn(kind="dsa")])]))
    add_operator(s, OperatorIn(code="O1", hospital_code="H1", credential="junior"))


def test_migrations_build_the_model_schema(engine):
    assert schema_revision(engine) == head_revision() == "0005_sop"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_audit_records_who_when_before_after(engine):
    with session_scope(engine, actor="alice") as s:
        _site(s)
        res = record_procedure(s, ProcedureIn(uid="P1", patient_key="pk-0001", hospital_code="H1", operator_code="O1",
                                              date=dt.date(2024, 3, 1), technique="abscess_drainage", disease="abscess"))
    with session_scope(engine, actor="bob") as s:
        p = s.get(Procedure, res.procedure_id)
        p.duration_min = 42.0
    with session_scope(engine, actor="carol") as s:
        h = s.scalar(sa.select(Hospital).where(Hospital.code == "H1"))
        h.name = "County One (renamed)"
    with session_scope(engine) as s:
        rows = s.scalars(sa.select(AuditLog).order_by(AuditLog.id)).all()
    inserts = [r for r in rows if r.action == "insert"]
    assert {r.table_name for r in inserts} >= {"hospitals", "rooms", "equipment", "operators", "patients", "procedures",
                                               "outcomes", "procedure_operators"}
    assert all(r.actor == "alice" for r in inserts)
    upd = [r for r in rows if r.action == "update"]
    assert [(r.actor, r.table_name, r.before, r.after) for r in upd] == [
        ("bob", "procedures", {"duration_min": None}, {"duration_min": 42.0}),
        ("carol", "hospitals", {"name": "County One"}, {"name": "County One (renamed)"}),
    ]
    assert upd[0].row_key == str(res.procedure_id)
    assert all(isinstance(r.at, dt.datetime) for r in rows)


def test_delete_is_audited_and_failed_transaction_leaves_nothing(engine):
    with session_scope(engine, actor="alice") as s:
        _site(s)
    with pytest.raises(InputError, match="already exists"), session_scope(engine, actor="mallory") as s:
        add_hospital(s, HospitalIn(code="H2", name="x", level="tertiary", region="east"))
        add_hospital(s, HospitalIn(code="H2", name="dup", level="tertiary", region="east"))
    with session_scope(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Hospital)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.actor == "mallory")) == 0
    with session_scope(engine, actor="dave") as s:
        h = s.scalar(sa.select(Hospital).where(Hospital.code == "H1"))
        for op in h.operators:
            s.delete(op)
        s.delete(h)
    with session_scope(engine) as s:
        d = s.scalars(sa.select(AuditLog).where(AuditLog.action == "delete")).all()
    assert {r.table_name for r in d} >= {"hospitals", "operators"}
    hosp = next(r for r in d if r.table_name == "hospitals")
    assert hosp.actor == "dave" and hosp.before["code"] == "H1" and hosp.after is None


def test_recorded_procedure_carries_flags_and_grades(engine):
    with session_scope(engine, actor="alice") as s:
        _site(s)
        res = record_procedure(s, ProcedureIn(
            uid="P2", patient_key="pk-0002", hospital_code="H1", operator_code="O1", date=dt.date(2024, 3, 2),
            technique="ica_aneurysm_coiling", disease="intracranial aneurysm",
            adverse_events=[AdverseEventIn(what="groin haematoma", therapy="additional", extra_stay_h=20)]))
    rules = sorted(f["rule"] for f in res.flags)
    assert rules == ["hospital_tier", "operator_tier"]
    assert res.grades[0]["cirse_grade"] == 3 and res.grades[0]["sir_2003"] == "C" and res.grades[0]["major"]
    with session_scope(engine) as s:
        p = s.scalar(sa.select(Procedure).where(Procedure.uid == "P2"))
        assert p.n_flags == 2 and p.category == "neuro" and p.adverse_events[0].cirse_grade == 3
