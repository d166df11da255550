"""Demo stage: plan the ablation of every tumour of the synthetic patient (modality, target,
multi-probe placement) and leave the plan for the verify stage (``Plan.zone_mask(grid)``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext


def run(ctx: DemoContext) -> None:
    from openir.core import body_mask_from_ct
    from openir.io import write_markups, write_nifti
    from openir.plan.export import plan_labelmap, plan_markups
    from openir.plan.models import CaseRef
    from openir.plan.planner import NOT_A_PLAN, plan_ablation
    from openir.report import table
    from openir.report.plan_report import plan_figures, write_plan_report

    patient = ctx.results["patient"]
    labels, ct = patient.labels, patient.ct
    targets: dict[str, np.ndarray] = {}
    plan = plan_ablation(labels, [t.name for t in patient.tumours], body_mask=body_mask_from_ct(ct, labels),
                         case=CaseRef(case_id=f"demo seed {ctx.seed}", grid=labels.grid.describe()),
                         targets_out=targets)
    ctx.results["plan"] = plan
    folder = ctx.out / "plan"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(plan.model_dump_json(indent=2))
    pts, lines = plan_markups(plan)
    write_markups(folder / "plan.mrk.json", points=pts, lines=lines)
    write_nifti(plan_labelmap(plan, labels, targets=targets), folder / "plan_segmentation.nii.gz")
    write_plan_report(folder / "plan_report.html", plan, labels, ct, targets)
    margins = {}
    try:  # sub-voxel minimal margin from the verify package (allowed at the demo layer)
        from openir.core import crop, world_box
        from openir.verify.margins import margin_analysis

        for t in patient.tumours:
            box = world_box(labels.grid, t.centre_lps, 110.0)
            sub = crop(labels, box)
            zone = plan.zone_mask(sub.grid, tumour=t.name)
            margins[t.name] = margin_analysis(sub.mask(t.name), zone, sub.grid).report.min_margin_mm
    except Exception:  # noqa: BLE001 - the figure is optional in the demo
        pass
    rows = [(t.tumour, t.modality, t.n_probes, f"{t.tumour_coverage_pct:.1f}", f"{t.target_coverage_pct:.1f}",
             f"{t.min_margin_mm:.1f}", f"{margins[t.tumour]:.1f}" if t.tumour in margins else "-",
             f"{t.ablated_healthy_ml:.1f}", "yes" if t.full_coverage else "no", f"{t.seconds:.1f}")
            for t in plan.targets]
    tab = table(["tumour", "modality", "probes", "tumour cov. %", "tumour+margin cov. %", "min margin mm (EDT)",
                 "min margin mm (verify, sub-voxel)", "healthy ablated mL", "full coverage", "time s"], rows,
                numeric=(2, 3, 4, 5, 6, 7, 9))
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in plan.warnings)
    partial = "".join(
        f"<p><b>{html.escape(t.tumour)}: {NOT_A_PLAN}</b> - no plan within the limits covers tumour + margin; the best "
        f"one is shown (coverage above) with what a tumour board would weigh instead: "
        f"{html.escape('; '.join(t.alternatives) or 'see the warnings')}. The stages below carry it on to show the "
        "workflow (navigation, monitoring, verification), not as a treatment recommendation.</p>"
        for t in plan.targets if t.configuration.startswith(NOT_A_PLAN))
    figs = "".join(plan_figures(plan, labels, ct, targets))
    ctx.add_section(
        "Ablation plan",
        f"<p>Catalogue {plan.provenance.catalogue_version}, rules {plan.provenance.rules_version}. Files: "
        "<code>plan/plan.json</code>, <code>plan/plan.mrk.json</code>, <code>plan/plan_segmentation.nii.gz</code>, "
        f"<code>plan/plan_report.html</code>.</p>{tab}{partial}<ul>{warn}</ul>{figs}",
    )
