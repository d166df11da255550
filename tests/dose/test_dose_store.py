"""Dose store: idempotent import, supersession without double counting, quarantine, alerts, hooks."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest

from openir.dose import DoseStore, load_thresholds, patient_alerts, procedure_alerts
from openir.dose.rdsr import parse_rdsr
from openir.phantom import XrayRdsrSpec, synthetic_ct_rdsr, synthetic_xray_rdsr


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    s = DoseStore(f"sqlite:///{tmp_path / 'dose.db'}", tmp_path / "root", skin_dose=False)
    yield s
    s.close()


def test_dose_store_idempotent_and_supersession(store, tmp_path):
    partial = _bytes(synthetic_xray_rdsr(12, seed=1, include_events=5))
    full = _bytes(synthetic_xray_rdsr(12, seed=1))
    assert store.import_bytes(partial, "partial").status == "stored"
    assert store.import_bytes(partial, "partial again").status == "duplicate"
    assert store.import_bytes(full, "cumulative").status == "stored"
    assert store.import_bytes(full, "cumulative again").status == "duplicate"
    current = store.reports()
    assert len(current) == 1 and current[0].number_of_events == 12
    assert len(store.reports(include_superseded=True)) == 2
    assert store.count_events() == 12  # the 5 partial events are not counted twice
    # originals kept, content-addressed
    assert len(list((tmp_path / "root" / "files").rglob("*.dcm"))) == 2


def test_dose_store_late_partial_is_superseded(store):
    full = _bytes(synthetic_xray_rdsr(8, seed=2))
    partial = _bytes(synthetic_xray_rdsr(8, seed=2, include_events=3))
    store.import_bytes(full, "full")
    assert store.import_bytes(partial, "late partial").status == "superseded"
    assert store.count_events() == 8 and len(store.reports()) == 1


def test_dose_store_separate_procedures_add(store):
    store.import_bytes(_bytes(synthetic_xray_rdsr(4, seed=3)), "a")
    store.import_bytes(_bytes(synthetic_xray_rdsr(6, seed=4)), "b")
    store.import_bytes(_bytes(synthetic_ct_rdsr(2)), "ct")
    assert store.count_events() == 12 and len(store.reports()) == 3


def test_dose_store_quarantine(store, tmp_path):
    good = _bytes(synthetic_xray_rdsr(4))
    r = store.import_bytes(good[:2000], "cut.dcm")
    assert r.status == "quarantined" and "truncated" in r.message
    (tmp_path / "notes.txt").write_text("not dicom")
    assert store.import_file(tmp_path / "notes.txt").status == "quarantined"
    q = store.quarantined()
    assert [x["reason"] for x in q] == ["truncated", "not_dicom"]
    assert all((tmp_path / "root" / "quarantine").joinpath(x["path"].split("/")[-1]).exists() for x in q)
    assert store.reports() == []


def test_dose_alerts_procedure_and_window(tmp_path):
    seen = []
    s = DoseStore(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "r", hooks=[seen.append, lambda a: 1 / 0])
    t0 = datetime(2024, 1, 1, 8)
    hi = synthetic_xray_rdsr(40, seed=5, dose_scale=12.0, patient_id="P1", start=t0)
    r = s.import_bytes(_bytes(hi), "hi")
    metrics = {a.metric for a in r.alerts}
    assert {"dose_rp_gy", "kap_gy_cm2"} <= metrics and all(a.scope == "procedure" for a in r.alerts)
    assert "follow-up" in r.alerts[0].follow_up.lower() and "NCRP" in r.alerts[0].source
    assert len(seen) == len(r.alerts) and s.hook_errors  # failing hook reported, alert kept
    # two moderate procedures 30 days apart: none alone, together over 5 Gy within 84 days
    s2 = DoseStore(f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "r2", skin_dose=False)
    a = synthetic_xray_rdsr(30, seed=6, dose_scale=6.0, patient_id="P2", start=t0)
    ra = parse_rdsr(_bytes(a))
    scale = 3.5 / ra.dose_rp_total_gy * 6.0
    a = synthetic_xray_rdsr(30, seed=6, dose_scale=scale, patient_id="P2", start=t0)
    b = synthetic_xray_rdsr(30, seed=6, dose_scale=scale, patient_id="P2", start=t0 + timedelta(days=30),
                            study_uid="1.2.3.4.5.6")
    first = s2.import_bytes(_bytes(a), "a")
    assert "dose_rp_gy" not in {x.metric for x in first.alerts}
    second = s2.import_bytes(_bytes(b), "b")
    win = [x for x in second.alerts if x.scope == "patient" and x.metric == "dose_rp_gy"]
    assert len(win) == 1 and win[0].value == pytest.approx(7.0, rel=1e-3) and len(win[0].reports) == 2
    # the same pair 100 days apart: outside the 84-day window
    ra, rb = parse_rdsr(_bytes(a)), parse_rdsr(_bytes(b))
    rb.content_datetime = ra.content_datetime + timedelta(days=100)
    assert patient_alerts([(ra, None), (rb, None)]) == []
    assert procedure_alerts(ra, load_thresholds()) == [x for x in procedure_alerts(ra) if x.metric != "dose_rp_gy"]


def test_dose_thresholds_file_errors(tmp_path):
    from openir.core.errors import DataFileError

    bad = tmp_path / "t.yaml"
    bad.write_text("thresholds: {kap_gy_cm2: {value: -1, unit: 'Gy·cm²', source: x}}\n")
    with pytest.raises(DataFileError, match="t.yaml"):
        load_thresholds(bad)
    th = load_thresholds()
    assert th.thresholds["dose_rp_gy"].value == 5.0 and th.thresholds["kap_gy_cm2"].value == 500.0
    assert th.thresholds["fluoro_time_s"].value == 3600.0 and th.thresholds["peak_skin_dose_gy"].value == 3.0


def test_dose_alert_and_report_filters_match_a_python_filter(store):
    """The SQL filters of ``alerts`` and ``report_entries`` against filtering the full lists by hand."""
    t0 = datetime(2024, 5, 1, 8)
    plan = [("H1", "H1-ROOM-1", "P1", 150.0), ("H1", "H1-ROOM-2", "P2", 150.0), ("H2", "H2-ROOM-1", "P3", 150.0),
            ("H2", "H2-ROOM-1", "P1", 1.0), ("", "X-ROOM", "P4", 150.0)]
    for n, (inst, station, pat, scale) in enumerate(plan):
        ds = synthetic_xray_rdsr(6, seed=40 + n, patient_id=pat, spec=XrayRdsrSpec(institution=inst, station=station),
                                 dose_scale=scale, start=t0 + timedelta(days=n))
        assert store.import_bytes(_bytes(ds), f"r{n}").status == "stored"
    every = store.alerts()
    assert len({a.facility for a in every}) >= 3 and [a.id for a in every] == sorted(a.id for a in every)
    cases = [dict(facilities=["H1"]), dict(facilities=["H2", "nowhere"]), dict(facilities=[]),
             dict(room="H2-ROOM-1"), dict(scope="patient"), dict(patient_id="P1"),
             dict(exclude_ids=[every[0].id, every[-1].id]), dict(since=max(a.created_at for a in every))]
    for kw in cases:
        def keep(a, kw=kw):
            return ((kw.get("facilities") is None or a.facility in kw["facilities"])
                    and (kw.get("room") is None or a.room == kw["room"])
                    and (kw.get("scope") is None or a.scope == kw["scope"])
                    and (kw.get("patient_id") is None or a.patient_id == kw["patient_id"])
                    and a.id not in kw.get("exclude_ids", ())
                    and (kw.get("since") is None or a.created_at >= kw["since"]))
        assert [a.id for a in store.alerts(**kw)] == [a.id for a in every if keep(a)], kw
    newest = store.alerts(newest_first=True, limit=2)
    assert [a.id for a in newest] == [a.id for a in sorted(every, key=lambda a: (a.created_at, a.id), reverse=True)[:2]]
    assert all(a.message and a.unit for a in every)  # the stored alert itself comes back whole
    mine = store.report_entries(patient_id="P1")
    assert [e.facility for e in mine] == ["H1", "H2"] and [e.performed_at for e in mine] == sorted(e.performed_at for e in mine)
    assert [e.facility for e in store.report_entries(patient_id="P1", facilities=["H2"])] == ["H2"]
    assert len(store.report_entries()) == len(plan) and store.report_entries(facilities=[]) == []
