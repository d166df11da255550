"""`openir trajectories`: safe needle paths from the skin to a target, as JSON, markups and a figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from openir.core import body_mask_from_ct
from openir.core.errors import InputError


def parse_pairs(items: list[str], what: str) -> dict[str, float]:
    out = {}
    for it in items:
        name, sep, val = it.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise InputError(f"expected NAME=MM, got {it!r}", field=what) from None
        if not sep:
            raise InputError(f"expected NAME=MM, got {it!r}", field=what)
    return out


# PlanOptions field -> the `openir plan` option that sets it (where the names differ)
_OPTION_OF_FIELD = {"devices": "--device", "clip_to_organ": "--clip-capsule", "needle_length_mm": "--needle",
                    "margin_mm": "--margin", "uncertainty_mm": "--uncertainty", "plan_voxel_mm": "--plan-voxel",
                    "tip_offset_mm": "--tip-offset", "physics_spacing_mm": "--physics-spacing"}


def read_case(ct: Path, labels: Path, names: Path | None, console: Console):
    """The CT and its label map (on the same grid, else a clear error), as both commands need them."""
    from openir import io

    with console.status("reading images"):
        image = io.read_image(ct)
        lm = io.read_labels(labels, names, reference=image) if names else io.read_labels(labels, reference=image)
    io.require_same_frame(image.grid, lm.grid, ct, labels)  # shape, origin, spacing, direction
    return image, lm


def trajectories(
    ct: Path = typer.Argument(..., help="CT image (DICOM folder, NIfTI, NRRD)"),
    labels: Path = typer.Argument(..., help="label map on the CT grid (NIfTI/NRRD/SEG)"),
    target: str = typer.Option(..., "--target", "-t", help="'x,y,z' in LPS mm, or a label name (its centroid)"),
    needle_mm: float = typer.Option(150.0, "--needle", help="usable needle length, mm"),
    directions: int = typer.Option(20000, "--directions", help="candidate directions to evaluate"),
    keep_away: list[str] = typer.Option([], "--keep-away", help="NAME=MM keep-away margin (repeatable)"),
    forbid: list[str] = typer.Option([], "--forbid", help="structure that must not be crossed"),
    allow: list[str] = typer.Option([], "--allow", help="structure that may be crossed"),
    policy_file: Path | None = typer.Option(None, "--policy", help="policy YAML (default: packaged)"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    shortlist: int = typer.Option(5, "--shortlist", help="number of ranked paths to keep"),
    position: str | None = typer.Option(None, "--position", help="supine, prone, left_lateral, right_lateral or "
                                        "any: no entry from the table side (default: the policy's, supine)"),
    gauge: int | None = typer.Option(None, "--gauge", help="needle gauge, ISO 9626 (default: the policy's, 17 G)"),
    max_pleural: int | None = typer.Option(None, "--max-pleural", help="pleural surfaces a path may cross besides "
                                           "the target's own (default: the policy's, 0)"),
    out: Path = typer.Option(Path("trajectories"), "--out", "-o", help="output folder"),
) -> None:
    """Find every feasible straight needle path to the target; write JSON, Slicer markups and a PNG."""
    from openir import io
    from openir.core import normalise_label_name
    from openir.plan.policy import load_policy
    from openir.plan.trajectories import find_trajectories, target_from_label
    from openir.report.trajectory_figure import plot_trajectories

    console = Console()
    image, lm = read_case(ct, labels, names, console)
    parts = target.replace(" ", "").split(",")
    if len(parts) == 3:
        try:
            tgt = np.array([float(p) for p in parts])
        except ValueError:
            raise InputError(f"target {target!r} is neither 'x,y,z' nor a label name", field="--target") from None
    else:
        tgt = target_from_label(lm, target)  # UnknownLabelError names the available labels
    pol = load_policy(policy_file)
    for name in forbid + allow:
        if not lm.has(name) and not pol.structures.get(normalise_label_name(name)):
            from openir.core.errors import UnknownLabelError

            raise UnknownLabelError(name, lm.names)
    if forbid:
        pol = pol.with_rules(**{n: "forbid" for n in forbid})
    if allow:
        pol = pol.with_rules(**{n: "allow" for n in allow})
    if position is not None:
        if position not in ("supine", "prone", "left_lateral", "right_lateral", "any"):
            raise InputError(f"must be supine, prone, left_lateral, right_lateral or any, got {position!r}",
                             field="--position")
        pol = pol.model_copy(update={"patient_position": position})
    if gauge is not None:
        from openir.plan.policy import needle_diameter_mm

        needle_diameter_mm(gauge)  # an unknown gauge is a clear error
        pol = pol.model_copy(update={"needle_gauge": gauge})
    if max_pleural is not None:
        pol = pol.model_copy(update={"max_counted_crossings": {**pol.max_counted_crossings, "lung": max_pleural}})
    with console.status("body mask, distance maps and search"):
        body = body_mask_from_ct(image, lm)
        res = find_trajectories(lm, tgt, pol, needle_mm, directions, body_mask=body,
                                keep_away=parse_pairs(keep_away, "--keep-away") or None,
                                shortlist_size=shortlist)
    out.mkdir(parents=True, exist_ok=True)
    (out / "trajectories.json").write_text(res.model_dump_json(indent=2))
    io.write_markups(out / "trajectories.mrk.json",
                     points={"target": {"target": tuple(tgt.tolist())}},
                     lines={f"path_{t.rank}": (t.entry_lps, t.target_lps) for t in res.shortlist})
    plot_trajectories(res, lm, out / "trajectories.png", ct=image)
    console.print(f"[green]{res.n_feasible} of {res.n_directions} directions feasible[/green]; "
                  f"{len(res.pareto)} Pareto-optimal; shortlist written to {out}")
    for t in res.shortlist:
        console.print(f"  #{t.rank}: entry {np.round(t.entry_lps, 1).tolist()} depth {t.depth_mm:.1f} mm, "
                      f"min clearance {t.min_clearance_mm:.1f} mm, gantry {t.inplane_angle_deg:+.0f} deg, "
                      f"craniocaudal {t.craniocaudal_angle_deg:+.0f} deg")


# (organ, modality) of a plan -> technique of the registry catalogue (the SOP checked); cryo and IRE of
# the liver are not catalogued techniques: --sop-technique names the SOP to use
PLAN_TECHNIQUE = {("liver", "microwave"): "liver_mwa", ("liver", "radiofrequency"): "liver_rfa",
                  ("lung", "microwave"): "lung_ablation", ("lung", "radiofrequency"): "lung_ablation"}


def _sop_check(result, values, technique: str | None, out: Path, console: Console) -> list[tuple[str, str]]:  # noqa: ANN001
    """Check the patient values against the SOP of the plan's technique; write sop_check.json and
    return the report section. The CLI wires plan and sop: neither imports the other."""
    import html

    from openir.cli.sop import print_deviations, summary_line
    from openir.sop import check_patient

    if technique is None:
        found = sorted({PLAN_TECHNIQUE.get((t.recommendation.features.organ, t.modality)) for t in result.targets} - {None})
        if len(found) != 1:
            pairs = ", ".join(sorted({f"{t.recommendation.features.organ} {t.modality}" for t in result.targets}))
            console.print(f"[red]SOP check not run[/red]: no single catalogued technique for {pairs}; "
                          "pass --sop-technique (see `openir sop show`)")
            return [("Pre-procedure SOP check", "<p><b>Not run</b>: no single catalogued technique for "
                     f"{html.escape(pairs)}; pass --sop-technique.</p>")]
        technique = found[0]
    check = check_patient(technique, values)
    (out / "sop_check.json").write_text(check.model_dump_json(indent=2), encoding="utf-8")
    print_deviations(console, check)
    console.print(summary_line(check))
    rows = "".join(
        f"<tr><td><b>{d.severity}</b></td><td>{html.escape(d.item)}</td><td>{html.escape('—' if d.value is None else str(d.value))}"
        f"</td><td>{html.escape(d.threshold)}</td><td>{html.escape(d.message_en)}<br>{html.escape(d.message_zh)}</td>"
        f"<td style='font-size:80%'>{html.escape(d.source)}</td></tr>" for d in check.deviations)
    table = ("<table><tr><th>severity</th><th>item</th><th>value</th><th>threshold</th><th>message</th><th>source</th></tr>"
             + rows + "</table>") if rows else ""
    return [("Pre-procedure SOP check", f"<p>{html.escape(technique)} SOP v{check.sop_version}, checked "
             f"{check.checked_at.isoformat()}: {html.escape(summary_line(check))}.</p>{table}")]


def plan(
    ct: Path = typer.Argument(..., help="CT image (DICOM folder, NIfTI, NRRD)"),
    labels: Path = typer.Argument(..., help="label map on the CT grid (NIfTI/NRRD/SEG)"),
    tumor: list[str] = typer.Option(..., "--tumor", "--tumour", help="tumour label (repeatable)"),
    modality: str | None = typer.Option(None, "--modality", help="override: microwave, radiofrequency, cryo, ire, chemical"),
    device: list[str] = typer.Option([], "--device", help="restrict to these catalogue device ids"),
    tumour_type: str = typer.Option("unknown", "--tumour-type", help="e.g. hcc, crlm (used by the rules)"),
    margin_mm: float | None = typer.Option(None, "--margin", help="margin mm (default: per organ, margins.yaml)"),
    clip: bool | None = typer.Option(None, "--clip-capsule/--no-clip-capsule", help="drop margin beyond the organ capsule"),
    uncertainty_mm: float | None = typer.Option(None, "--uncertainty", help="uncertainty band mm (shown separately)"),
    needle_mm: float = typer.Option(150.0, "--needle", help="usable needle length, mm"),
    tip_offset_mm: float = typer.Option(0.0, "--tip-offset", help="tip beyond zone centre when the catalogue has none"),
    keep_away: list[str] = typer.Option([], "--keep-away", help="NAME=MM needle keep-away (repeatable)"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    plan_voxel_mm: float = typer.Option(2.0, "--plan-voxel", help="planning grid voxel size, mm"),
    dicom_ct: Path | None = typer.Option(None, "--dicom-ct", help="the source DICOM CT series folder: also write DICOM SEG and RTSTRUCT on it"),
    zone_model: str = typer.Option(
        "table", "--zone-model",
        help="table: catalogue zones; both: also simulate each probe (bioheat, vessels as heat sinks) and "
             "report both; physics: coverage and margin from the simulated zones (placement uses the table)"),
    physics_spacing_mm: float = typer.Option(2.0, "--physics-spacing", help="simulation voxel for physics zones, mm"),
    evidence: str | None = typer.Option(
        None, "--evidence",
        help="zone table to plan with: manufacturer, clinical, in vivo animal, ex vivo, phantom "
             "(default: each device's preferred; see `openir devices show`)"),
    patient_values: Path | None = typer.Option(
        None, "--patient-values",
        help="pre-procedure values (YAML/JSON: inr, platelets, egfr, ...): check them against the SOP of the "
             "plan's technique; deviations printed, written to sop_check.json and the report"),
    sop_technique: str | None = typer.Option(
        None, "--sop-technique", help="SOP to check against (default: from the plan's organ and modality, "
                                      "e.g. liver + microwave = liver_mwa)"),
    beyond_practice: bool = typer.Option(
        False, "--beyond-practice",
        help="allow more cryo/IRE probes than practice uses for the tumour's size (configurations.yaml "
             "practice_probes); the plan warns"),
    out: Path = typer.Option(Path("plan"), "--out", "-o", help="output folder"),
) -> None:
    """Plan an ablation: modality, target, probes; write plan.json, markups, segmentation, report.

    With --patient-values, the patient's pre-procedure values are checked against the SOP of the
    plan's technique (openir sop check) and every deviation is shown with its source."""
    from openir import io
    from openir.plan.devices import load_catalogue
    from openir.plan.export import plan_labelmap, plan_markups, plan_segments, zone_surfaces
    from openir.plan.models import CaseRef
    from openir.plan.options import PlanOptions
    from openir.plan.planner import plan_ablation
    from openir.report.plan_report import write_plan_report

    console = Console()
    # every option is checked before anything is read, planned or written (one line, exit 2)
    try:
        opts = PlanOptions.build(modality=modality, devices=device, tumour_type=tumour_type, margin_mm=margin_mm,
                                 clip_to_organ=clip, uncertainty_mm=uncertainty_mm, needle_length_mm=needle_mm,
                                 keep_away=parse_pairs(keep_away, "--keep-away"), plan_voxel_mm=plan_voxel_mm,
                                 tip_offset_mm=tip_offset_mm, zone_model=zone_model,
                                 physics_spacing_mm=physics_spacing_mm, evidence=evidence,
                                 beyond_practice=beyond_practice)
    except InputError as exc:  # name the command-line option the user typed, not the model field
        top = (exc.field or "").split(".")[0]
        raise InputError(exc.problem, field=_OPTION_OF_FIELD.get(top, f"--{top.replace('_', '-')}")) from None
    cat = load_catalogue()
    for d in opts.devices:
        try:
            dev = cat.get(d)  # unknown device: InputError naming the catalogue's ids
        except InputError as exc:
            raise InputError(exc.problem, field="--device") from None
        if opts.modality and dev.modality != opts.modality:
            raise InputError(f"device {d!r} is a {dev.modality} device, not {opts.modality}", field="--device")
    values = None
    if patient_values is not None:  # read and validated before planning: a bad file stops here (exit 2)
        from openir.sop import load_sop, read_values

        values = read_values(patient_values)
        if sop_technique is not None:
            try:
                load_sop(sop_technique)
            except InputError as exc:
                raise InputError(exc.problem, field="--sop-technique") from None
    image, lm = read_case(ct, labels, names, console)
    if dicom_ct is not None:  # before planning: nothing is written for a series on another grid
        io.require_same_frame(io.series_grid(io.read_dicom_datasets(dicom_ct)), lm.grid, dicom_ct, labels)
    for t in tumor:
        lm.value_of(t)  # UnknownLabelError names the available labels
    targets: dict = {}
    status = "planning (modality, target, trajectories, placement" + (
        ", physics zones)" if opts.zone_model != "table" else ")")
    with console.status(status):
        body = body_mask_from_ct(image, lm)
        result = plan_ablation(lm, tumor, opts, body_mask=body, targets_out=targets,
                               case=CaseRef(case_id=ct.name, ct=str(ct.resolve()), labels=str(labels.resolve()),
                                            grid=lm.grid.describe()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(result.model_dump_json(indent=2))
    pts, lines = plan_markups(result)
    io.write_markups(out / "plan.mrk.json", points=pts, lines=lines)
    segs = plan_segments(result, lm, targets=targets)
    io.write_segmentation_nrrd(segs, lm.grid, out / "plan_segmentation.seg.nrrd")  # overlapping, named (Slicer)
    io.write_segments_nifti(segs, lm.grid, out / "plan_segments.nii.gz")  # 4-D + plan_segments.json
    plain = plan_labelmap(result, lm, targets=targets)
    io.write_nifti(plain, out / "plan_segmentation.nii.gz")
    (out / "plan_segmentation.labels.json").write_text(json.dumps({str(v): n for v, n in plain.labels.items()}, indent=2))
    for name, (verts, faces) in zone_surfaces(result).items():
        io.write_vtk_surface(verts, faces, out / "models" / f"{name}.vtk", name=name)
    if dicom_ct is not None:
        io.write_dicom_seg_masks(segs, lm.grid, dicom_ct, out / "plan_seg.dcm",
                                 series_description="OpenIR plan: tumour, target, zones", algorithm_name="OpenIR plan")
        io.write_rtstruct(segs, lm.grid, dicom_ct, out / "plan_rtstruct.dcm")
    extra = []
    if values is not None:
        extra = _sop_check(result, values, sop_technique, out, console)
    write_plan_report(out / "plan_report.html", result, lm, image, targets, extra_sections=extra)
    for t in result.targets:
        colour = "green" if t.full_coverage else "red"
        console.print(f"[{colour}]{t.tumour}[/{colour}]: {t.modality}, {t.n_probes} probe(s), tumour + margin "
                      f"covered {t.target_coverage_pct:.1f}%, min margin {t.min_margin_mm:.1f} mm, "
                      f"healthy ablated {t.ablated_healthy_ml:.1f} mL", markup=True, highlight=False)
        console.print(f"  {t.configuration}; zone evidence: {t.evidence_used or '-'}"
                      + "".join(f"; with {e.evidence} evidence: {e.target_coverage_pct:.1f}%" for e in
                                t.evidence_comparison if e.target_coverage_pct is not None),
                      markup=False, highlight=False)
        mine = [p for p in result.probes if p.tumour == t.tumour]
        for dev, off, src, ok in sorted({(p.device, p.tip_offset_mm, p.tip_offset_source, p.tip_offset_sourced)
                                         for p in mine}):
            console.print(f"  tip {off:g} mm beyond the zone centre ({dev}): "
                          + (src[:140] if ok else "UNSOURCED - check the device IFU"), markup=False, highlight=False)
        sched = next((p.schedule for p in mine if p.schedule), None)
        if sched:
            console.print("  freeze-thaw-freeze " + "-".join(f"{st.duration_s / 60:g}" for st in sched) + " min",
                          markup=False, highlight=False)
        for a in t.alternatives:
            console.print(f"  alternative: {a}", markup=False, highlight=False)
    for o in (result.physics.targets if result.physics else []):
        console.print(f"  physics zones ({result.physics.criterion}): {o.tumour} tumour + margin covered "  # type: ignore[union-attr]
                      f"{o.target_coverage_pct:.1f}% (table {o.table_target_coverage_pct:.1f}%), min margin "
                      f"{o.min_margin_mm:.1f} mm (table {o.table_min_margin_mm:.1f} mm)")
    for w in result.warnings:
        console.print(f"  [yellow]warning[/yellow]: {w}")
    console.print(f"written to {out}")
