"""CIRSE 2017 and SIR grades derived from raw facts."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openir.core.errors import InputError
from openir.registry.bulk import grade_frame
from openir.registry.grading import AEFacts, cirse_grade, grade_all, sir_2003_grade

# Hand-graded from the definitions in Filippiadis et al., CVIR 2017;40:1141 (CIRSE) and
# Sacks et al., JVIR 2003;14:S199 (SIR A-F): (case, facts, CIRSE grade, SIR class)
HAND_GRADED = [
    ("vasovagal reaction treated on the table", AEFacts(resolved_in_session=True), 1, "A"),
    ("catheter-induced vasospasm relieved during the session", AEFacts(resolved_in_session=True, therapy="nominal"), 1, "B"),
    ("small haematoma: overnight observation, nothing else", AEFacts(extra_stay_h=16), 2, "B"),
    ("post-embolisation pain: observed 40 h, no therapy", AEFacts(extra_stay_h=40), 2, "B"),
    ("pneumothorax needing a chest drain, discharged next day", AEFacts(therapy="additional", extra_stay_h=20), 3, "C"),
    ("bleeding needing transfusion and 4 extra days", AEFacts(therapy="additional", extra_stay_h=96), 3, "D"),
    ("liver abscess: ICU and surgery, full recovery", AEFacts(therapy="major", icu=True, extra_stay_h=240), 3, "D"),
    ("nerve injury with mild permanent sequela, independent", AEFacts(therapy="additional", extra_stay_h=72, sequelae="mild"), 4, "E"),
    ("stroke with hemiparesis needing daily assistance", AEFacts(therapy="major", icu=True, extra_stay_h=500, sequelae="severe"), 5, "E"),
    ("fatal haemorrhage", AEFacts(therapy="major", icu=True, death=True), 6, "F"),
]


@pytest.mark.parametrize(("case", "facts", "cirse", "sir"), HAND_GRADED, ids=[c[0] for c in HAND_GRADED])
def test_hand_graded_cases(case, facts, cirse, sir):
    assert cirse_grade(facts) == cirse
    assert sir_2003_grade(facts) == sir
    assert grade_all(facts)["major"] == (sir in "CDEF")


def test_bad_facts_are_refused():
    with pytest.raises(InputError, match="therapy"):
        AEFacts(therapy="surgery")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="extra_stay_h"):
        AEFacts(extra_stay_h=-1)


facts_st = st.builds(AEFacts, resolved_in_session=st.booleans(),
                     therapy=st.sampled_from(["none", "nominal", "additional", "major"]),
                     extra_stay_h=st.sampled_from([0.0, 0.5, 12.0, 24.0, 24.5, 48.0, 48.5, 300.0]),
                     icu=st.booleans(), life_threatening=st.booleans(),
                     sequelae=st.sampled_from(["none", "mild", "severe"]), death=st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(facts_st, min_size=1, max_size=20))
def test_vectorised_grades_equal_scalar_grades(facts):
    df = pd.DataFrame([f.__dict__ for f in facts])
    got = grade_frame(df)
    want = pd.DataFrame([grade_all(f) for f in facts])
    assert got["cirse_grade"].tolist() == want["cirse_grade"].tolist()
    assert got["sir_2003"].tolist() == want["sir_2003"].tolist()
    assert got["sir_2017"].tolist() == want["sir_2017"].tolist()
    assert got["major"].tolist() == want["major"].tolist()


@settings(max_examples=100, deadline=None)
@given(facts_st)
def test_grades_are_monotone_in_severity(f):
    worse = AEFacts(**{**f.__dict__, "death": True})
    assert cirse_grade(worse) == 6 and cirse_grade(f) <= 6
    assert "ABCDEF".index(sir_2003_grade(f)) <= "ABCDEF".index(sir_2003_grade(worse))
