"""Demo stage: an I-125 seed implant plan for the perivascular tumour (TG-43U1, template, inverse).

Seeds suit a tumour next to large vessels, where heat sink limits ablation: the stage plans a
coplanar template implant for the patient's first tumour (liver protocol of seeds/data/sites.yaml),
writes plan.json, dose (NIfTI and DICOM RT Dose), the needle table, the template STL and the
report under ``<out>/seeds``, and leaves the plan in ``ctx.results['seeds']`` for the registry.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import DemoContext


def run(ctx: DemoContext) -> None:
    from openir import io
    from openir.core import body_mask_from_ct
    from openir.report import img_tag, table
    from openir.report.seed_figures import dvh_png, isodose_png, seed_report_html
    from openir.seeds.planner import SeedPlanOptions, plan_seeds
    from openir.seeds.template import TemplateOptions, needle_table_csv, template_mesh, write_stl

    patient = ctx.results["patient"]
    tumour = patient.tumours[0]
    res = plan_seeds(patient.ct, patient.labels, SeedPlanOptions(tumour=tumour.name, site="liver"))
    p = res.plan
    folder = ctx.out / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    mesh = template_mesh(p, body_mask_from_ct(patient.ct, patient.labels), patient.labels, TemplateOptions())
    (folder / "plan.json").write_text(p.model_dump_json(indent=2), encoding="utf-8")
    (folder / "needles.csv").write_text(needle_table_csv(p), encoding="utf-8")
    write_stl(folder / "template.stl", mesh.triangles)
    io.write_nifti(res.dose_gy, folder / "dose.nii.gz")
    io.write_rt_dose(res.dose_gy, folder / "rtdose.dcm", ct_meta=patient.ct.meta)
    (folder / "report.html").write_text(seed_report_html(p, patient.ct, res.dose_gy, res.target), encoding="utf-8")
    ctx.results["seeds"] = p
    m = p.metrics
    rows = [("D90", f"{m.d90_gy:.0f} Gy (Rx {p.prescription_gy:g} Gy)"), ("V100 / V150 / V200",
            f"{m.v100_pct:.1f} / {m.v150_pct:.0f} / {m.v200_pct:.0f} %"), ("CI / HI", f"{m.ci:.2f} / {m.hi:.2f}"),
            ("seeds / needles", f"{len(p.seeds)} / {len(p.needles)}"),
            ("total activity", f"{p.total_activity_mci:.1f} mCi ({p.seed_model}, {p.activity_mci:g} mCi each)"),
            ("organs at risk", ", ".join(f"{o.name} {'kept' if o.within_limit else 'NOT kept'}" for o in m.organs)
             or "none near")]
    e = html.escape
    ctx.add_section(
        "Seed implantation (I-125, TG-43U1)",
        f"<p>{e(tumour.name)} ({tumour.diameter_mm:.0f} mm, {e(tumour.location)}): coplanar template, "
        f"{len(p.needles)} needles checked with the trajectory module; planned in {p.seconds:.1f} s. Files: "
        "<code>seeds/plan.json</code>, <code>seeds/dose.nii.gz</code>, <code>seeds/rtdose.dcm</code>, "
        "<code>seeds/needles.csv</code>, <code>seeds/template.stl</code>, "
        "<a href='seeds/report.html'>seeds/report.html</a>.</p>"
        + table(["index", "value"], rows)
        + img_tag(isodose_png(patient.ct, res.dose_gy, res.target, p), "isodose lines")
        + img_tag(dvh_png(p), "DVH"))
