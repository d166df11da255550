"""The cases behind a figure: the list behind a funnel point holds exactly its n cases and x events."""

from __future__ import annotations

import datetime as dt

import pytest

from openir.core import InputError
from openir.registry import (
    CaseFilter,
    compute_indicators,
    find_cases,
    load_indicators,
    session_scope,
)


def test_the_cases_behind_every_funnel_point(seeded):
    engine, _ = seeded
    t = compute_indicators(engine, by=("hospital",))
    with session_scope(engine) as s:
        for d in load_indicators():
            rows = t[t["indicator"] == d.code].head(3)
            for r in rows.itertuples():
                n, _ = find_cases(s, CaseFilter(hospital=r.unit, indicator=d.code), limit=1)
                x, _ = find_cases(s, CaseFilter(hospital=r.unit, indicator=d.code, events_only=True), limit=1)
                assert (n, x) == (r.n, r.x), (d.code, r.unit)


def test_filters_combine_and_page(seeded):
    engine, ds = seeded
    code = str(ds.hospitals["code"].iloc[0])
    with session_scope(engine) as s:
        total, page = find_cases(s, CaseFilter(hospital=code), limit=10)
        assert total > 10 and len(page) == 10 and all(p.hospital_code == code for p in page)
        tech = page[0].technique
        n_tech, rows = find_cases(s, CaseFilter(hospital=code, technique=tech), limit=1000)
        assert 0 < n_tech < total and all(p.technique == tech for p in rows)
        since = dt.date(2024, 1, 1)
        n_since, rows = find_cases(s, CaseFilter(hospital=code, date_from=since), limit=1000)
        assert all(p.date >= since for p in rows) and n_since <= total
        one = page[0]
        assert find_cases(s, CaseFilter(text=one.uid[-6:]))[1][0].uid == one.uid
        assert find_cases(s, CaseFilter(hospital=code), hospitals=("NOPE",))[0] == 0  # scope still applies
        with pytest.raises(InputError, match="unknown indicator"):
            find_cases(s, CaseFilter(indicator="nope"))
