"""The registry records a seed implant with its D90 and V100 (generic fields, no seeds import)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from openir.registry import (
    HospitalIn,
    OperatorIn,
    ProcedureIn,
    SeedDosimetryIn,
    add_hospital,
    add_operator,
    find_case,
    record_procedure,
    session_scope,
)
from openir.registry.db import init_db
from openir.seeds.models import registry_dosimetry
from openir.seeds.needles import NeedleOptions
from openir.seeds.planner import SeedPlanOptions, plan_seeds

sys.path.insert(0, str(Path(__file__).parent))
from seed_cases import ball_case  # noqa: E402


def test_seed_procedure_recorded_with_d90_and_v100(tmp_path):
    plan = plan_seeds(None, ball_case(), SeedPlanOptions(tumour="tumour", site="liver",
                                                         needles=NeedleOptions(direction_lps=(1.0, 0.0, 0.0)))).plan
    engine = init_db(f"sqlite:///{tmp_path / 'r.db'}")
    with session_scope(engine, "test") as s:
        add_hospital(s, HospitalIn(code="H1", name="Hospital", level="tertiary", region="east"))
        add_operator(s, OperatorIn(code="O1", hospital_code="H1", credential="senior"))
        res = record_procedure(s, ProcedureIn(
            uid="seed-1", patient_key="pk-0001", hospital_code="H1", operator_code="O1", date=dt.date(2026, 1, 5),
            technique="seed_implantation", disease="liver metastasis",
            seed_dosimetry=[SeedDosimetryIn(**registry_dosimetry(plan))]))
    with session_scope(engine, "test") as s:
        case = find_case(s, res.procedure_id)
        assert case is not None
        rec = case.links["seed_dosimetry"][0]
        assert rec["d90_gy"] == pytest.approx(plan.metrics.d90_gy, abs=0.01)
        assert rec["v100_pct"] == pytest.approx(plan.metrics.v100_pct, abs=0.01)
        assert rec["seeds"] == len(plan.seeds) and rec["stage"] == "plan"
    assert res.uid == "seed-1"
    with pytest.raises(ValueError):
        SeedDosimetryIn(seeds=10, prescription_gy=120, d90_gy=130, v100_pct=140)  # over 100 %
