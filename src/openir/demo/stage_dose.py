"""Demo stage: radiation dose monitoring of an interventional suite.

Synthetic RDSRs (a partial and a cumulative report of one procedure, a high-dose procedure, a
biplane one, a CT one, a broken file) go through the dose store; alerts, peak skin dose, ICRP 135
reference levels of a synthetic multi-facility survey and charts land in ``<out>/dose``.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from openir.report import distribution_chart, esc, img_tag, table, trend_chart

if TYPE_CHECKING:
    from .runner import DemoContext


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def run(ctx: DemoContext) -> None:
    from openir.dose import DoseStore, DoseSummary, compare, peak_skin_dose, reference_levels
    from openir.phantom import (
        XrayRdsrSpec,
        synthetic_ct_rdsr,
        synthetic_dose_survey,
        synthetic_xray_rdsr,
    )

    folder = ctx.out / "dose"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "dose.db"
    db.unlink(missing_ok=True)
    store = DoseStore(f"sqlite:///{db}", folder / "store")
    t0 = datetime(2024, 3, 4, 9, 0)
    seed = ctx.seed
    inputs = {
        "partial.dcm": synthetic_xray_rdsr(24, seed=seed, include_events=10, patient_id="DEMO-1", start=t0),
        "cumulative.dcm": synthetic_xray_rdsr(24, seed=seed, patient_id="DEMO-1", start=t0, kap_unit="Gym2"),
        "high_dose.dcm": synthetic_xray_rdsr(60, seed=seed + 1, patient_id="DEMO-2", start=t0, dose_scale=12.0,
                                             spec=XrayRdsrSpec(procedure="TIPS creation", station="IR-ROOM-2")),
        "repeat_procedure.dcm": synthetic_xray_rdsr(40, seed=seed + 2, patient_id="DEMO-2", dose_scale=8.0,
                                                    start=t0 + timedelta(days=20),
                                                    spec=XrayRdsrSpec(procedure="TIPS revision", station="IR-ROOM-2")),
        "biplane.dcm": synthetic_xray_rdsr(30, seed=seed + 3, biplane=True, patient_id="DEMO-3", start=t0,
                                           kap_unit="dGy.cm2",
                                           spec=XrayRdsrSpec(procedure="Cerebral embolisation", station="NEURO-BIPLANE")),
        "ct.dcm": synthetic_ct_rdsr(3, seed=seed, patient_id="DEMO-1", start=t0 - timedelta(days=1)),
    }
    data = {name: _bytes(ds) for name, ds in inputs.items()}
    data["truncated.dcm"] = data["biplane.dcm"][: len(data["biplane.dcm"]) // 2]
    statuses = []
    for name, blob in data.items():
        (folder / "inputs").mkdir(exist_ok=True)
        (folder / "inputs" / name).write_bytes(blob)
        r = store.import_file(folder / "inputs" / name)
        statuses.append((name, r.status, r.message[:90]))
    store.import_file(folder / "inputs" / "cumulative.dcm")  # sent twice: still stored once

    current = store.reports()
    psd = [peak_skin_dose(r) for r in current if r.kind == "projection"]
    survey = synthetic_dose_survey(seed=seed, per_operator=6 if ctx.quick else 12)
    levels = reference_levels(survey)
    rooms = compare(survey, levels, by="room")
    distribution_chart(survey, levels, folder / "dose_distribution.png")
    trend_chart(survey, folder / "dose_trend.png")
    frame = store.summary_frame(include_superseded=True)
    result = DoseSummary(
        reports=len(current), superseded=int(frame["superseded_by"].notna().sum()),
        events_counted=store.count_events(), quarantined=len(store.quarantined()),
        kap_total_gy_cm2=float(sum(r.kap_total_gy_cm2 or 0 for r in current)), alerts=store.alerts(),
        reference_levels=levels, rooms_above_drl=[c for c in rooms if c.above_drl], skin_dose=psd,
    )
    (folder / "dose_summary.json").write_text(result.model_dump_json(indent=1), encoding="utf-8")
    ctx.results["dose"] = result
    store.close()

    html = [
        f"<p>{result.reports} current reports ({result.superseded} partial report superseded, "
        f"{result.events_counted} events counted once), {result.quarantined} file quarantined.</p>",
        table(["file", "status", "note"], statuses),
        table(["scope", "patient", "alert"], [(a.scope, a.patient_id, a.message) for a in result.alerts]),
        f"<p>Follow-up: {esc(result.alerts[0].follow_up) if result.alerts else 'none needed'}</p>",
        table(["procedure", "PSD Gy", "Ka,r Gy", "events"],
              [(r.procedure, f"{s.peak_skin_dose_gy:.2f}", f"{s.dose_rp_total_gy:.2f}", s.events_used)
               for r, s in zip([r for r in current if r.kind == "projection"], psd, strict=True)], numeric=(1, 2, 3)),
        table(["procedure (synthetic survey)", "facilities", "DRL Gy·cm²", "typical Gy·cm²"],
              [(lv.procedure, lv.n_groups, f"{lv.drl:.1f}", f"{lv.typical_value:.1f}") for lv in levels], numeric=(1, 2, 3)),
        img_tag((folder / "dose_distribution.png").read_bytes(), "dose distribution"),
        img_tag((folder / "dose_trend.png").read_bytes(), "dose trend"),
    ]
    ctx.add_section("Radiation dose", "\n".join(html))
