"""The registry stores each SOP check with its deviations; block deviations need an override reason."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from openir.core import InputError
from openir.registry.db import session_scope
from openir.registry.models import Procedure, SOPCheckRow, SOPDeviationRow
from openir.registry.schemas import EquipmentIn, HospitalIn, OperatorIn, ProcedureIn, RoomIn
from openir.registry.store import add_hospital, add_operator, record_procedure
from openir.sop import check_patient

OK = {"inr": 1.1, "platelets": 180, "sex": "M", "child_pugh": "A", "diagnosis_code": "C22.0", "conditions": [],
      "antithrombotics": []}


def _site(s):
    add_hospital(s, HospitalIn(code="H1", name="City One", level="tertiary", region="north",
                               rooms=[RoomIn(name="CT1", equipment=[EquipmentIn(kind="ct")])]))
    add_operator(s, OperatorIn(code="O1", hospital_code="H1", credential="senior"))


def _proc(uid, check, reason=None, technique="liver_mwa"):
    return ProcedureIn(uid=uid, patient_key=f"pk-{uid}", hospital_code="H1", operator_code="O1", date=dt.date(2026, 5, 1),
                       technique=technique, disease="C22.0", sop_check=check, sop_override_reason=reason)


def test_checks_and_deviations_are_stored_and_flagged(engine):
    low_plt = check_patient("liver_mwa", {**OK, "platelets": "40000/uL", "egfr": 80})
    with session_scope(engine, "alice") as s:
        _site(s)
        clean = record_procedure(s, _proc("P1", check_patient("liver_mwa", OK)))
        with pytest.raises(InputError) as exc:
            record_procedure(s, _proc("P2", low_plt))
        assert exc.value.field == "sop_override_reason" and "platelets_high_risk" in str(exc.value)
        res = record_procedure(s, _proc("P3", low_plt, reason="platelets transfused, count 62 on the day"))
    assert clean.flags == []
    assert [f["rule"] for f in res.flags] == ["sop_block"] and "Patel" in res.flags[0]["message"]
    with session_scope(engine) as s:
        rows = s.execute(sa.select(Procedure.uid, SOPCheckRow.n_block, SOPCheckRow.n_warn, SOPCheckRow.override_reason)
                         .join(SOPCheckRow, SOPCheckRow.procedure_id == Procedure.id).order_by(Procedure.uid)).all()
        devs = s.execute(sa.select(SOPDeviationRow.check_id, SOPDeviationRow.value, SOPDeviationRow.severity)).all()
        stored = s.scalar(sa.select(SOPCheckRow.patient_values).where(SOPCheckRow.n_block == 1))
    assert [tuple(r) for r in rows] == [("P1", 0, 0, None), ("P3", 1, 0, "platelets transfused, count 62 on the day")]
    assert [tuple(d) for d in devs] == [("platelets_high_risk", "40.0", "block")]
    assert stored["platelets"] == 40.0 and stored["egfr"] == 80.0


def test_a_check_of_another_technique_is_refused(engine):
    with session_scope(engine) as s:
        _site(s)
        with pytest.raises(InputError, match="the SOP check is for 'tace'") as exc:
            record_procedure(s, _proc("P1", check_patient("tace", OK)))
    assert exc.value.field == "sop_check"


# ---- CSV import with pre-procedure value columns (optional) ------------------------------------------
CSV_HEAD = "uid,patient_key,hospital_code,operator_code,date,technique,disease,sex,child_pugh,inr,血小板,egfr,conditions,antithrombotics,sop_override_reason\n"


def _import(engine, tmp_path, rows: str, checker=check_patient):
    from openir.registry.importer import import_procedures

    f = tmp_path / "labs.csv"
    f.write_text(CSV_HEAD + rows, encoding="utf-8")
    return import_procedures(engine, f, sop_checker=checker)


def test_import_checks_lab_columns_and_stores_the_deviations(engine, tmp_path):
    with session_scope(engine) as s:
        _site(s)
    rep = _import(engine, tmp_path,
                  "C1,pk-c1,H1,O1,2026-05-01,liver_mwa,肝细胞癌,男,A,1.1,180,,无,无,\n"
                  "C2,pk-c2,H1,O1,2026-05-02,liver_mwa,C22.0,M,A,1.6,42000 /uL,,none,aspirin:antiplatelet,platelets transfused\n"
                  "C3,pk-c3,H1,O1,2026-05-03,tace,C22.0,M,A,,,,,,\n")
    assert rep.stored["procedures"] == 3
    with session_scope(engine) as s:
        got = s.execute(sa.select(Procedure.uid, Procedure.n_flags, SOPCheckRow.n_block, SOPCheckRow.n_warn,
                                  SOPCheckRow.override_reason)
                        .join(SOPCheckRow, SOPCheckRow.procedure_id == Procedure.id).order_by(Procedure.uid)).all()
        devs = sorted(tuple(r) for r in s.execute(sa.select(SOPDeviationRow.check_id, SOPDeviationRow.severity)).all())
    # C1 within the SOP; C2 platelets 42 (block, reason given), INR 1.6 (warn), aspirin (warn); C3: no values, no check
    assert [tuple(r)[:1] + tuple(r)[2:] for r in got] == [("C1", 0, 0, None), ("C2", 1, 2, "platelets transfused")]
    assert dict((u, n) for u, n, *_ in got)["C2"] >= 1
    assert devs == [("antithrombotic_high_risk", "warn"), ("inr_high_risk", "warn"), ("platelets_high_risk", "block")]


def test_import_refuses_block_without_reason_and_bad_units_naming_row_and_column(engine, tmp_path):
    from openir.registry.importer import ImportValidationError

    with session_scope(engine) as s:
        _site(s)
    with pytest.raises(ImportValidationError) as exc:
        _import(engine, tmp_path, "C1,pk-c1,H1,O1,2026-05-01,liver_mwa,C22.0,M,A,1.1,42,,none,none,\n"
                                  "C2,pk-c2,H1,O1,2026-05-01,liver_mwa,C22.0,M,A,1.1,150000,,none,none,\n"
                                  "C3,pk-c3,H1,O1,2026-05-01,liver_mwa,C22.0,M,A,1.1,150,,none,warfarin,\n")
    got = [(p.row, p.field) for p in exc.value.report.problems]
    assert got == [(2, "sop_override_reason"), (3, "platelets"), (4, "antithrombotics")]
    with session_scope(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Procedure)) == 0
    with pytest.raises(ImportValidationError, match="need the SOP check"):
        _import(engine, tmp_path, "C1,pk-c1,H1,O1,2026-05-01,liver_mwa,C22.0,M,A,1.1,150,,none,none,\n", checker=None)
