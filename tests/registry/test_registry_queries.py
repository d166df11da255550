"""Typed registry queries for applications, checked against the loaded data set and raw SQL."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from openir.core.errors import InputError
from openir.registry import (
    audit_event,
    count_procedures,
    find_case,
    find_procedure,
    get_hospital,
    get_operator,
    list_hospitals,
    list_operators,
    list_procedures,
    load_dataset,
    merge_procedure_links,
    session_scope,
)


@pytest.fixture
def loaded(engine):
    from openir.phantom.registry_data import generate_registry

    ds = generate_registry(240, 4, seed=11)
    load_dataset(engine, ds)
    return engine, ds


def test_hospitals_and_operators_match_the_data_set(loaded):
    engine, ds = loaded
    with session_scope(engine, "t") as s:
        hs = list_hospitals(s)
        assert [h.code for h in hs] == sorted(ds.hospitals["code"])
        one = ds.hospitals.iloc[1]
        assert get_hospital(s, one["code"]).model_dump(exclude={"id"}) == {k: one[k] for k in ("code", "name", "level", "region")}
        assert get_hospital(s, "NO-SUCH") is None
        for code in ds.hospitals["code"]:
            want = ds.operators[ds.operators["hospital_code"] == code].sort_values("code")
            got = list_operators(s, code)
            assert [(o.code, o.credential) for o in got] == list(zip(want["code"], want["credential"], strict=True))
        op = ds.operators.iloc[0]
        assert get_operator(s, op["code"]).hospital_code == op["hospital_code"]
        assert get_operator(s, "NO-SUCH") is None and list_operators(s, "") == []


def test_procedure_lists_are_scoped_counted_and_ordered(loaded):
    engine, ds = loaded
    code = ds.hospitals["code"].iloc[0]
    mine = ds.procedures[ds.procedures["hospital_code"] == code]
    with session_scope(engine, "t") as s:
        raw_flagged = s.scalar(sa.text("select count(*) from procedures where n_flags > 0"))
        assert count_procedures(s) == len(ds.procedures)
        assert count_procedures(s, hospitals=[code]) == len(mine)
        assert count_procedures(s, hospitals=()) == 0 and list_procedures(s, hospitals=()) == []
        assert raw_flagged > 0 and count_procedures(s, flagged=True) == raw_flagged
        rows = list_procedures(s, hospitals=[code], limit=None)
        assert {r.uid for r in rows} == set(mine["uid"]) and {r.hospital_code for r in rows} == {code}
        keys = [(r.date, r.id) for r in rows]
        assert keys == sorted(keys, reverse=True)  # newest first
        page = list_procedures(s, hospitals=[code], limit=7, offset=3)
        assert [r.id for r in page] == [r.id for r in rows[3:10]]
        entry = list_procedures(s, limit=None, order="entry")
        assert [r.id for r in entry] == sorted(r.id for r in entry)
        flagged = list_procedures(s, flagged=True, limit=None)
        assert len(flagged) == raw_flagged and all(r.n_flags > 0 and r.flags for r in flagged)
        by_uid = mine.set_index("uid")
        for r in rows[:20]:
            src = by_uid.loc[r.uid]
            assert (r.patient_key, r.operator_code, r.technique) == (src["patient_key"], src["operator_code"], src["technique"])
            assert r.date == pd.Timestamp(src["date"]).date()


def test_find_respects_the_hospital_scope(loaded):
    engine, ds = loaded
    a, b = ds.hospitals["code"].iloc[:2]
    with session_scope(engine, "t") as s:
        pid = list_procedures(s, hospitals=[a], limit=1)[0].id
        assert find_procedure(s, pid).hospital_code == a
        assert find_procedure(s, pid, hospitals=[a]).id == pid
        assert find_procedure(s, pid, hospitals=[b]) is None and find_case(s, pid, hospitals=[b]) is None
        assert find_procedure(s, 10**9) is None


def test_case_record_carries_outcome_and_adverse_events(loaded):
    engine, ds = loaded
    uid = ds.adverse_events["procedure_uid"].iloc[0]
    want = ds.adverse_events[ds.adverse_events["procedure_uid"] == uid]
    src = ds.procedures.set_index("uid").loc[uid]
    with session_scope(engine, "t") as s:
        pid = s.scalar(sa.text("select id from procedures where uid = :u"), {"u": uid})
        case = find_case(s, pid)
    assert case.procedure.uid == uid
    assert sorted(a["what"] for a in case.adverse_events) == sorted(want["what"])
    assert all({"cirse_grade", "sir_2017", "major"} <= set(a) for a in case.adverse_events)
    ts = src["technical_success"]
    assert case.outcome["technical_success"] == (None if pd.isna(ts) else bool(ts))


def test_links_merge_and_audit_rows(loaded):
    engine, _ = loaded
    with session_scope(engine, "linker") as s:
        pid = list_procedures(s, limit=1)[0].id
        merge_procedure_links(s, pid, {"image": "cases/x.npz"})
        assert merge_procedure_links(s, pid, {"plan": {"n_probes": 1}}) == {"image": "cases/x.npz", "plan": {"n_probes": 1}}
        audit_event(s, actor="reader", action="read", table="case_images", key=pid)
        with pytest.raises(InputError, match="procedure_id"):
            merge_procedure_links(s, 10**9, {})
    with engine.connect() as c:
        rows = c.execute(sa.text("select actor, action, table_name from audit_log where row_key = :k"), {"k": str(pid)}).all()
    assert ("linker", "update", "procedures") in rows and ("reader", "read", "case_images") in rows
