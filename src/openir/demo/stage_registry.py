"""Demo stage: record the demo's case in a multi-centre registry and show the QC report.

An embedded SQLite registry in ``<out>/registry`` is seeded with synthetic multi-centre data
(planted outliers included), the demo patient's ablation is recorded at one of its hospitals with
whatever earlier stages produced (verification verdict and margin, dose alerts; read by duck
typing so this stage does not depend on their schemas), and the QC report is written.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import DemoContext


def _plain(obj: Any) -> Any:
    if obj is None:
        return None
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return obj
    return {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_") and not callable(getattr(obj, k, None))}


def _find(d: Any, *names: str) -> Any:
    """First value under any of ``names`` anywhere in a nested dict (None if absent)."""
    if isinstance(d, dict):
        for n in names:
            if n in d and d[n] is not None and not isinstance(d[n], (dict, list)):
                return d[n]
        for v in d.values():
            got = _find(v, *names)
            if got is not None:
                return got
    return None


def run(ctx: DemoContext) -> None:
    from openir.phantom.registry_data import generate_registry
    from openir.registry import (
        OutcomeIn,
        ProcedureIn,
        build_qc,
        init_db,
        load_dataset,
        record_procedure,
        session_scope,
    )
    from openir.report import qc_page_html as page_html
    from openir.report import render_qc_html as render_html

    folder = ctx.out / "registry"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "registry.db"
    db.unlink(missing_ok=True)
    engine = init_db(f"sqlite:///{db}")
    ds = generate_registry(6_000 if ctx.quick else 20_000, 20 if ctx.quick else 40, seed=ctx.seed)
    load_dataset(engine, ds)
    ctx.results["registry_dataset"] = ds  # the practice stage's DRG table reads the same hospitals

    hospital = str(ds.hospitals[ds.hospitals["level"] == "tertiary"]["code"].iloc[-1])
    ops = ds.operators[(ds.operators["hospital_code"] == hospital) & (ds.operators["credential"] == "senior")]
    operator = str(ops["code"].iloc[0])
    verify = _plain(ctx.results.get("verify"))
    dose = _plain(ctx.results.get("dose"))
    success = _find(verify, "technical_success", "success", "complete", "covered")
    margin = _find(verify, "min_margin_mm", "minimal_margin_mm", "minimum_margin_mm", "margin_mm")
    alerts = dose.get("alerts") if isinstance(dose, dict) else None
    links = {k: v for k, v in {"verify": verify and {"technical_success": success, "min_margin_mm": margin},
                               "dose": dose and {"alerts": len(alerts or []),
                                                 "kap_total_gy_cm2": _find(dose, "kap_total_gy_cm2")}}.items() if v}
    case = ProcedureIn(
        uid=f"DEMO-{ctx.seed}", patient_key=f"demo-patient-{ctx.seed:04d}", hospital_code=hospital,
        operator_code=operator, date=dt.date.today(), technique="liver_mwa", disease="hepatocellular carcinoma",
        imaging_guidance="ct", anaesthesia="local", duration_min=75, age_years=63, asa_class=2, child_pugh="A",
        outcome=OutcomeIn(technical_success=bool(success) if success is not None else None,
                          complete_ablation=bool(success) if success is not None else None,
                          min_margin_mm=float(margin) if margin is not None else None),
        verify_uid=_find(verify, "uid", "id") if verify else None, dose_uid=_find(dose, "uid") if dose else None,
        dose_alert=bool(alerts) if alerts is not None else None, links=links or None,
    )
    with session_scope(engine, actor="demo") as s:
        recorded = record_procedure(s, case)
    seeds = ctx.results.get("seeds")
    if seeds is not None:  # the seed implant of the same patient, with its planned D90 and V100
        from openir.registry import SeedDosimetryIn
        from openir.seeds.models import registry_dosimetry

        implant = case.model_copy(update={
            "uid": f"DEMO-{ctx.seed}-SEEDS", "technique": "seed_implantation", "outcome": OutcomeIn(),
            "links": None, "verify_uid": None, "dose_uid": None, "dose_alert": None,
            "seed_dosimetry": [SeedDosimetryIn(**registry_dosimetry(seeds))]})
        with session_scope(engine, actor="demo") as s:
            record_procedure(s, implant)
    qc = build_qc(engine)
    body = render_html(qc, highlight=hospital, fragment=True)
    (folder / "qc-report.html").write_text(page_html(body), encoding="utf-8")
    qc.indicators.to_csv(folder / "indicators.csv", index=False)
    rating = next(r for r in qc.ratings if r.hospital == hospital)
    ctx.results["registry"] = {"procedure_uid": recorded.uid, "hospital": hospital, "grade": rating.grade,
                               "flags": recorded.flags, "planted": ds.truth}
    e = html.escape
    intro = (f"<p>Case <b>{e(recorded.uid)}</b> recorded at hospital <b>{e(hospital)}</b> (tertiary, grade "
             f"{rating.grade}) by {e(operator)}: technical success "
             f"{'unknown' if success is None else e(str(bool(success)))}, minimal margin "
             f"{'unknown' if margin is None else f'{float(margin):.1f} mm'}, dose alert "
             f"{'unknown' if alerts is None else bool(alerts)}; rule flags: "
             f"{e(', '.join(f['message'] for f in recorded.flags)) or 'none'}.</p>"
             f"<p>Registry: {len(ds.procedures):,} synthetic procedures in {len(ds.hospitals)} hospitals; planted "
             f"problems {e(str(ds.truth))}. Full report: <a href='registry/qc-report.html'>registry/qc-report.html</a>.</p>")
    ctx.add_section("Registry and quality control", intro + body)
