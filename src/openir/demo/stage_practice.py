"""Demo stage: standard practice around the demo's case (issue 22).

- the patient's pre-procedure values checked against the SOP of the planned technique (every
  deviation with its source);
- a teaching exercise on the same patient: a trainee's plan (the expert plan with its probes moved
  6 mm off the tumour) scored against the ground truth and the expert plan, every point lost explained;
- the DRG cost table of the synthetic multi-centre registry with its cost-outlier funnel.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext

# planned modality -> catalogue technique whose SOP applies (cryo and IRE are not yet catalogued)
_TECHNIQUE = {"microwave": "liver_mwa", "radiofrequency": "liver_rfa"}

# the demo patient's values: a cirrhotic patient on warfarin stopped 3 days ago, platelets low
_VALUES = {"inr": 1.7, "platelets": 62, "egfr": 58, "haemoglobin": 118, "sex": "M", "age_years": 63,
           "pregnancy": "not_applicable", "child_pugh": "A", "diagnosis_code": "C22.0", "conditions": [],
           "iodinated_contrast": True}


def _sop_section(ctx: DemoContext, technique: str) -> str:
    from openir.report import table
    from openir.sop import check_patient

    procedure_at = dt.datetime.combine(dt.date.today(), dt.time(9, 0))
    values = {**_VALUES, "procedure_at": procedure_at,
              "antithrombotics": [{"name": "warfarin", "kind": "anticoagulant",
                                   "last_dose": procedure_at - dt.timedelta(days=3)}]}
    check = check_patient(technique, values)
    folder = ctx.out / "practice"
    (folder / "sop_check.json").write_text(check.model_dump_json(indent=2), encoding="utf-8")
    ctx.results["sop_check"] = check
    rows = [(d.severity, d.item, "-" if d.value is None else str(d.value), d.threshold, d.message_en, d.message_zh,
             d.source) for d in check.deviations]
    verdict = (f"<b>{check.n_block} blocking</b> and {check.n_warn} warning deviation(s): a blocking deviation "
               "needs a recorded override reason before the procedure is saved" if check.deviations
               else "no deviation")
    return (f"<h3>Pre-procedure check against the SOP of <code>{html.escape(technique)}</code></h3>"
            f"<p>Patient values: {html.escape(', '.join(f'{k} {v}' for k, v in _VALUES.items()))}; warfarin, last dose "
            f"3 days before. Result: {verdict}. File: <code>practice/sop_check.json</code>; the same check runs in "
            "<code>openir sop check</code>, <code>openir plan --patient-values</code> and the web entry form.</p>"
            + table(["severity", "item", "value", "threshold", "message", "说明", "source"], rows))


def _exercise_section(ctx: DemoContext, tumour: str) -> str:
    from openir.report import exercise_figure, table
    from openir.training import score_plan, teaching_case

    patient, plan = ctx.results["patient"], ctx.results["plan"]
    case = teaching_case(patient.ct, patient.labels, plan, tumour=tumour, title=f"demo seed {ctx.seed}")
    trainee = plan.model_copy(deep=True)
    mine = [p for p in trainee.probes if p.tumour == tumour]
    d = np.asarray(mine[0].direction_lps, float)
    side = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
    shift = 6.0 * side / np.linalg.norm(side)  # every probe of the tumour 6 mm sideways: margin missed
    for p in mine:
        p.tip_lps = tuple(np.asarray(p.tip_lps) + shift)
        if p.entry_lps is not None:
            p.entry_lps = tuple(np.asarray(p.entry_lps) + shift)
    expert = score_plan(case, plan, tumour=tumour)
    score = score_plan(case, trainee, tumour=tumour)
    folder = ctx.out / "practice"
    (folder / "exercise_score.json").write_text(score.model_dump_json(indent=2), encoding="utf-8")
    exercise_figure(folder / "exercise.png", case, trainee, score)
    ctx.results["exercise"] = score
    rows = [(c.id, f"{c.points:g} / {c.max_points:g}", "" if c.measured is None else str(c.measured),
             c.explanation_en or "", c.explanation_zh or "") for c in score.criteria]
    return (f"<h3>Teaching exercise on {html.escape(tumour)} (difficulty {html.escape(case.entry.difficulty.level)})</h3>"
            f"<p>The expert plan scores {expert.total:g} / {expert.max_total:g}. A trainee's plan with the same "
            f"{len(mine)} probe(s) moved 6 mm sideways scores <b>{score.total:g} / {score.max_total:g}</b> "
            f"({'passed' if score.passed else 'not passed'}): {score.missed_target_ml:.1f} mL of tumour + margin "
            "outside every zone. Files: <code>practice/exercise_score.json</code>, <code>practice/exercise.png</code>; "
            "the same in <code>openir training score</code> and the web page <code>/training</code>.</p>"
            + table(["criterion", "points", "measured", "points lost because", "扣分原因"], rows)
            + "<img src='practice/exercise.png' alt='exercise figure' style='max-width:640px'>")


def _drg_section(ctx: DemoContext) -> str:
    from openir.phantom.registry_costs import generate_costs
    from openir.phantom.registry_data import generate_registry
    from openir.registry import case_table, cost_funnel, drg_summary, load_drg_config
    from openir.report import drg_funnel_png, table

    ds = ctx.results.get("registry_dataset") or generate_registry(6_000, 20, seed=ctx.seed)
    costs = generate_costs(ds.procedures, seed=ctx.seed)
    cases = case_table(ds.procedures, costs.headers, costs.items, ds.adverse_events)
    config = load_drg_config()
    by_group = drg_summary(cases, config, by=("drg_code",))
    funnel = cost_funnel(cases)
    folder = ctx.out / "practice"
    by_group.to_csv(folder / "drg_by_group.csv", index=False)
    drg_summary(cases, config).to_csv(folder / "drg_by_group_and_hospital.csv", index=False)
    top = str(by_group.sort_values("cases", ascending=False)["drg_code"].iloc[0])
    outlier = costs.truth.get("cost_outlier")
    (folder / "drg_funnel.png").write_bytes(drg_funnel_png(funnel, top, highlight=outlier))
    flagged = funnel[(funnel["status"] == "alarm")]
    ctx.results["drg"] = {"groups": len(by_group), "alarms": len(flagged), "planted": costs.truth}

    def f(x: object, fmt: str) -> str:
        return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)

    rows = [(r.drg_code, int(r.cases), f(r.cost_mean, ",.0f"), f(r.cost_median, ",.0f"), f(r.los_mean, ".1f"),
             f(100 * r.complication_rate, ".1f"), f(100 * r.domestic_share_cost, ".0f"),
             f(r.margin_mean, ",.0f")) for r in by_group.itertuples()]
    return ("<h3>DRG cost analysis (synthetic registry)</h3>"
            f"<p>{len(cases):,} procedures with cost data; payment = relative weight x base rate of the "
            "<b>EXAMPLE</b> configuration shipped in <code>registry/data/drg.yaml</code> (each city's insurance bureau "
            f"sets its own). Planted: hospital {html.escape(str(outlier))} costs x 1.35, hospital "
            f"{html.escape(str(costs.truth.get('no_domestic')))} uses imported consumables only. Funnel of group "
            f"{html.escape(top)}: {len(flagged[flagged['drg_code'] == top])} hospital(s) above the 99.8 % limit. Files: "
            "<code>practice/drg_by_group*.csv</code>, <code>practice/drg_funnel.png</code>; the same in "
            "<code>openir registry drg</code> and the web page <code>/drg</code>.</p>"
            + table(["DRG", "cases", "cost mean CNY", "cost median CNY", "stay mean d", "complications %",
                     "domestic consumables % (cost)", "payment - cost CNY"], rows, numeric=(1, 2, 3, 4, 5, 6, 7))
            + "<img src='practice/drg_funnel.png' alt='DRG cost funnel' style='max-width:640px'>")


def run(ctx: DemoContext) -> None:
    (ctx.out / "practice").mkdir(parents=True, exist_ok=True)
    plan = ctx.results.get("plan")
    parts = []
    if plan is not None:
        thermal = [t for t in plan.targets if t.modality in _TECHNIQUE and t.n_probes > 0]
        first = thermal[0] if thermal else None
        technique = _TECHNIQUE[first.modality] if first else "liver_mwa"
        parts.append(_sop_section(ctx, technique))
        if first is not None:
            parts.append(_exercise_section(ctx, first.tumour))
    parts.append(_drg_section(ctx))
    ctx.add_section("Standard practice: SOP check, teaching exercise, DRG cost", "".join(parts))
