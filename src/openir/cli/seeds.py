"""`openir seeds plan|template|verify`: I-125 seed implant planning (TG-43U1), the needle template and
post-implant dosimetry (verify: `openir.cli.seeds_verify`).

    openir seeds plan ct.nii.gz labels.nii.gz --tumour tumour_1 --site liver --out seeds
    openir seeds template seeds/plan.json ct.nii.gz labels.nii.gz --out seeds

`plan` writes plan.json, dose.nii.gz (Gy), rtdose.dcm (DICOM RT Dose on the CT's frame), the
needle table (needles.csv), the skin-fitted template (template.stl) and report.html. Inputs are
checked before anything is written; bad input exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console

from openir.core.errors import InputError

app = typer.Typer(help="Radioactive seed implantation: TG-43U1 dose, needles and template, inverse planning.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _vec(text: str | None, field: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        v = tuple(float(p) for p in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"{text!r} is not 'x,y,z'", field=field) from None
    if len(v) != 3 or not all(math.isfinite(x) for x in v) or not any(v):
        raise InputError(f"{text!r} must be three finite numbers, not all zero", field=field)
    return v  # type: ignore[return-value]


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@app.command("plan")
def plan(
    ct: Path = typer.Argument(..., help="planning CT (DICOM folder, NIfTI, NRRD)"),
    labels: Path = typer.Argument(..., help="label map on the CT grid with the tumour and organs"),
    tumour: str = typer.Option(..., "--tumour", "-t", help="tumour label name"),
    site: str = typer.Option("pancreas", "--site", help="protocol in seeds/data/sites.yaml: pancreas, lung, liver, ..."),
    model: str = typer.Option("6711", "--model", help="seed model (seeds/data/seed_models.yaml)"),
    activity: float | None = typer.Option(None, "--activity", help="apparent activity per seed, mCi (default: site's)"),
    prescription: float | None = typer.Option(None, "--rx", help="prescription, Gy (default: site's)"),
    margin: float | None = typer.Option(None, "--margin", help="target margin, mm (default: site's)"),
    direction: str | None = typer.Option(None, "--direction", help="needle direction 'x,y,z' LPS (default: chosen)"),
    freehand: bool = typer.Option(False, "--freehand", help="oblique non-coplanar needles instead of one template"),
    seed_spacing: float = typer.Option(5.0, "--seed-spacing", help="seed slot spacing along a needle, mm"),
    hole_spacing: float = typer.Option(5.0, "--hole-spacing", help="template hole spacing, mm"),
    thickness: float = typer.Option(5.0, "--thickness", help="template thickness, mm"),
    sites: Path | None = typer.Option(None, "--sites", help="edited site-protocol YAML (default: the packaged one)"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    out: Path = typer.Option(Path("seeds"), "--out", "-o", help="output folder"),
) -> None:
    """Plan a permanent I-125 seed implant: needles, seeds, dose, indices, template, report."""
    from openir.seeds import air_kerma_strength_from_apparent_activity, get_seed_model
    from openir.seeds.needles import NeedleOptions
    from openir.seeds.planner import SeedPlanOptions
    from openir.seeds.sites import get_site

    # every cheap check before the images are read
    m = get_seed_model(model)
    s = get_site(site, sites)
    air_kerma_strength_from_apparent_activity(activity if activity is not None else s.activity_mci, m)
    for val, name in ((seed_spacing, "--seed-spacing"), (hole_spacing, "--hole-spacing"), (thickness, "--thickness")):
        if not (math.isfinite(val) and 0 < val <= 50):
            raise InputError(f"must be 0-50 mm, got {val}", field=name)
    opts = SeedPlanOptions(
        tumour=tumour, site=site, seed_model=m.name, activity_mci=activity, prescription_gy=prescription,
        margin_mm=margin, sites_path=sites, needles=NeedleOptions(mode="freehand" if freehand else "template",
                                                direction_lps=_vec(direction, "--direction"),
                                                seed_spacing_mm=seed_spacing, hole_spacing_mm=hole_spacing))
    run_plan(ct, labels, names, opts, out, thickness)


def run_plan(ct: Path, labels: Path, names: Path | None, opts, out: Path, thickness: float) -> None:
    """Read, plan, write (outputs appear only once everything is computed)."""
    from openir import io
    from openir.cli.plan import read_case
    from openir.core import body_mask_from_ct
    from openir.report.seed_figures import seed_report_html
    from openir.seeds.planner import plan_seeds
    from openir.seeds.template import TemplateOptions, needle_table_csv, template_mesh, write_stl

    console = Console()
    image, lm = read_case(ct, labels, names, console)
    lm.value_of(opts.tumour)  # unknown label: clear error naming the labels
    with console.status("planning: target, needles, inverse seed placement, dose"):
        res = plan_seeds(image, lm, opts)
        body = body_mask_from_ct(image, lm)
        try:
            mesh = template_mesh(res.plan, body, lm, TemplateOptions(thickness_mm=thickness))
        except InputError as exc:  # e.g. free-hand needles too oblique for one plate: plan still useful
            mesh, why = None, exc.problem
        html = seed_report_html(res.plan, image, res.dose_gy, res.target)
    out.mkdir(parents=True, exist_ok=True)
    p = res.plan
    _write_text_atomic(out / "plan.json", p.model_dump_json(indent=2))
    _write_text_atomic(out / "needles.csv", needle_table_csv(p, thickness))
    if mesh is not None:
        write_stl(out / "template.stl", mesh.triangles)
    else:
        console.print(f"[yellow]no template STL[/yellow]: {why}", markup=True)
    io.write_nifti(res.dose_gy, out / "dose.nii.gz")
    io.write_rt_dose(res.dose_gy, out / "rtdose.dcm", ct_meta=image.meta)
    _write_text_atomic(out / "report.html", html)
    mt = p.metrics
    colour = "green" if all(p.goals_met.get(k) for k in ("d90", "v100", "organs")) else "yellow"
    console.print(f"[{colour}]{p.tumour}[/{colour}]: {len(p.seeds)} seeds on {len(p.needles)} needles, "
                  f"{p.total_activity_mci:.1f} mCi; D90 {mt.d90_gy:.0f} Gy (Rx {p.prescription_gy:g}), "
                  f"V100 {mt.v100_pct:.1f} %, V150 {mt.v150_pct:.0f} %, V200 {mt.v200_pct:.0f} %, CI {mt.ci:.2f}")
    for o in mt.organs:
        if o.within_limit is False:
            console.print(f"  [red]limit NOT kept[/red]: {o.name} {o.limit_metric} > {o.limit_gy:g} Gy", markup=True)
    console.print(f"written to {out} ({p.seconds:.1f} s)")


@app.command("template")
def template(
    plan_json: Path = typer.Argument(..., help="plan.json written by `openir seeds plan`"),
    ct: Path = typer.Argument(..., help="the planning CT"),
    labels: Path = typer.Argument(..., help="its label map"),
    thickness: float = typer.Option(5.0, "--thickness", help="template thickness, mm"),
    border: float = typer.Option(10.0, "--border", help="plate border around the outer holes, mm"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    out: Path = typer.Option(Path("seeds"), "--out", "-o", help="output folder"),
) -> None:
    """Needle table (CSV) and skin-fitted 3D-printable template (STL) of a seed plan."""
    from pydantic import ValidationError

    from openir.cli.plan import read_case
    from openir.core import body_mask_from_ct
    from openir.seeds.models import SeedPlan
    from openir.seeds.template import (
        TemplateOptions,
        mesh_is_closed,
        needle_table_csv,
        template_mesh,
        write_stl,
    )

    if not plan_json.is_file():
        raise InputError("no such plan file", source=plan_json)
    try:
        p = SeedPlan.model_validate_json(plan_json.read_text(encoding="utf-8"))
    except ValidationError as exc:
        e = exc.errors()[0]
        raise InputError(f"not a seed plan: {e['msg']}", source=plan_json,
                         field=".".join(str(x) for x in e["loc"])) from None
    if not (math.isfinite(thickness) and 1 <= thickness <= 30) or not (math.isfinite(border) and 0 <= border <= 50):
        raise InputError("thickness must be 1-30 mm and border 0-50 mm", field="--thickness")
    console = Console()
    image, lm = read_case(ct, labels, names, console)
    with console.status("template: skin surface, plate, guide holes"):
        mesh = template_mesh(p, body_mask_from_ct(image, lm), lm, TemplateOptions(thickness_mm=thickness,
                                                                                   border_mm=border))
    out.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(out / "needles.csv", needle_table_csv(p, thickness))
    write_stl(out / "template.stl", mesh.triangles)
    closed = "closed" if mesh_is_closed(mesh.triangles) else "NOT closed"
    console.print(f"template: {mesh.holes} guide holes, {mesh.size_mm[0]:.0f} x {mesh.size_mm[1]:.0f} mm, "
                  f"{len(mesh.triangles)} triangles ({closed}); written to {out}")


# ---- post-implant dosimetry: `openir seeds verify` (openir.cli.seeds_verify) ------------------------
def _register_verify() -> None:
    from openir.cli.seeds_verify import seeds_verify

    app.command("verify")(seeds_verify)


_register_verify()
