"""Demo stage: physics of what was planned, the plan's first tumour with its own modality and probes.

The plan stage's probes for the first tumour (deepest array position; pull-backs repeat the same
physics further out) go through `openir.physics.simulate`, the path `openir simulate PLAN.json`
takes, in the patient's tissues: a thermal plan heats (CEM43 zone, vessels as heat sinks), a cryo
plan freezes the array (ice ball, lethal isotherm, coldest temperature at the organs at risk), an
IRE plan gives the electric field, its lethal zone and the Joule heating. Without a plan
(``--stages physics``) one Emprint antenna is simulated in the first tumour instead.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext

DIRECTION_LPS = (0.0, 1.0, 0.0)  # anterior entry, towards posterior (no-plan fallback)
BOX_MM = 90.0
NOT_ORGANS = ("liver", "skin", "fat", "muscle", "body", "air", "bone", "lung")


def run(ctx: DemoContext) -> None:
    plan = ctx.results.get("plan")
    if plan is not None and plan.targets and plan.probes:
        _run_planned(ctx, plan)
    else:
        _run_emprint(ctx)


def _request(ctx: DemoContext, probes: list, notes: list[str]) -> object:
    """The simulation request of the plan's probes; a cryoprobe planned without a freeze time gets the
    sourced default freeze-thaw-freeze protocol (data/arrays.yaml), said in ``notes``."""
    from openir.physics import SimulationRequest, load_array_data

    rows = [p.model_dump(mode="json") for p in probes]
    cryo = load_array_data().cryo.default_schedule_min
    for r in rows:
        if r.get("modality") == "cryo" and r.get("time_s") is None and not r.get("schedule"):
            r["schedule"] = [{"duration_s": 60.0 * m, "power_w": 0.0 if k % 2 else 1.0} for k, m in enumerate(cryo.value)]
    if any(r.get("schedule") for r in rows):
        notes.append(f"no freeze time in the plan: {'-'.join(f'{m:g}' for m in cryo.value)} min freeze-thaw-freeze "
                     f"({cryo.source})")
    return SimulationRequest.model_validate({"probes": rows, "spacing_mm": 2.0 if ctx.quick else 1.5, "box_mm": BOX_MM})


def _crop_ct_labels(patient, centre):
    from openir.core import LabelMap, crop, world_box

    box = world_box(patient.ct.grid, centre, 100.0)
    ct, labels = crop(patient.ct, box), crop(patient.labels, box)
    return ct, LabelMap(np.ascontiguousarray(labels.array), labels.affine, dict(labels.meta), dict(labels.labels))


def _run_planned(ctx: DemoContext, plan) -> None:
    from openir.core import LabelMap, Volume, resample
    from openir.core.enums import THERMAL_MODALITIES
    from openir.io import write_nifti
    from openir.physics import simulate
    from openir.report import img_tag, overlay_slices_png, table
    from openir.report.physics_figures import plot_zone_growth

    patient = ctx.results["patient"]
    tp = plan.targets[0]
    tumour = tp.tumour
    mine = sorted((p for p in plan.probes if p.tumour == tumour), key=lambda p: p.order)
    probes = [p for p in mine if p.array_position == 1]
    req_notes: list[str] = []
    if tp.modality in THERMAL_MODALITIES and len(probes) > 1:
        # overlapping thermal zones are ablated one after another (an antenna repositioned between
        # them); switching them all on at once would overheat the overlap, so show the first one
        req_notes.append(f"first of {len(probes)} planned overlapping zones simulated; the plan ablates them one after another")
        probes = probes[:1]
    req = _request(ctx, probes, req_notes)
    res, fields = simulate(req, patient.labels)  # type: ignore[arg-type]
    res.notes[:0] = req_notes
    ctx.results["physics"] = res
    folder = ctx.out / "physics"
    folder.mkdir(parents=True, exist_ok=True)
    aff = fields.grid.affine
    sol = fields.solution
    if res.modality == "ire":
        zone = np.asarray(fields.extra["lethal_zone"]) > 0
        maps = {k: np.asarray(v, np.float32) for k, v in fields.extra.items()}
    elif res.criterion == "isotherm":
        zone = sol.min_temperature_c <= res.threshold
        maps = {"min_temperature_c": sol.min_temperature_c.astype(np.float32)}
    else:
        zone = sol.cem43_min[-1] >= res.threshold
        maps = {"cem43_min": sol.cem43_min[-1].astype(np.float32), "max_temperature_c": sol.max_temperature_c.astype(np.float32)}
    for name, arr in maps.items():
        write_nifti(Volume(arr, aff), folder / f"{name}.nii.gz")
    (folder / "simulation.json").write_text(res.model_dump_json(indent=2))

    centre = np.mean([p.zone_centre_lps for p in probes], axis=0)
    ct, labels = _crop_ct_labels(patient, centre)
    zone_ct = resample(LabelMap(zone.astype(np.uint8), aff, {}, {1: "lethal_zone"}), ct.grid).array > 0
    show = [n for n in labels.names if n == tumour or n not in (*NOT_ORGANS,) and not n.startswith("tumour")]
    what = {"ire": f"IRE lethal zone (E >= {res.threshold:g} V/cm)",
            "cryo": f"lethal isotherm ({res.threshold:g} °C)"}.get(res.modality, f"lethal zone (CEM43 >= {res.threshold:g} min)")
    figs = [img_tag(overlay_slices_png(ct, labels.subset(show), centre, title=f"{tumour}: simulated {what}, plan's probes",
                                       extra_masks={"simulated zone": zone_ct}), "simulated zone")]
    if res.modality == "ire":
        figs.append(_ire_maps_tag(fields, centre))
    elif sol is not None and len(res.zones) > 1:
        plot_zone_growth(res, folder / "zone_growth.png")
        figs.append(img_tag((folder / "zone_growth.png").read_bytes(), "zone growth"))

    devices = sorted({p.device for p in probes})
    pulled = len(mine) - len(probes)
    a = res.array_zone
    size = (f"{a.along_mm:.1f} x {a.across1_mm:.1f} x {a.across2_mm:.1f} mm, {a.volume_ml:.1f} mL" if a is not None
            else f"{res.final_length_mm:.1f} x {res.final_width_mm:.1f} mm, {res.final_volume_ml:.1f} mL")
    rows = [("modality", res.modality), ("device(s)", ", ".join(devices)),
            ("probes simulated", f"{len(probes)} (array position 1" + (f"; {pulled} pull-back position(s) not simulated)" if pulled else ")")),
            ("configuration", tp.configuration or "-"), ("lethal criterion", f"{res.criterion} {res.threshold:g} ({res.threshold_source})"),
            ("simulated zone, all probes", size), ("planned zone model", plan.zone_model)]
    if res.peak_field_v_cm is not None:
        rows.append(("peak field", f"{res.peak_field_v_cm:.0f} V/cm"))
    if res.max_temperature_c is not None and res.modality != "cryo":
        rows.append(("peak temperature", f"{res.max_temperature_c:.1f} °C"))
    oar = ""
    if res.modality == "cryo" and sol is not None:
        oar = _cold_at_organs(patient.labels, fields.grid, sol.min_temperature_c, tumour)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in res.notes)
    models = "".join(f"<li>probe {m.probe} ({html.escape(m.device)}): {html.escape(m.model)}"
                     f"{'' if m.calibrated else ' — generic model, no calibration data for this device'}</li>"
                     for m in res.probe_models)
    ctx.add_section(
        "Physics of the plan",
        f"<p>The plan's probes for <b>{html.escape(tumour)}</b> simulated together with "
        f"<code>openir.physics.simulate</code> (as <code>openir simulate plan/plan.json</code>) in the patient's "
        f"tissues, {res.spacing_mm:g} mm grid, {res.method}, {res.runtime_s:.1f} s. Files: <code>physics/</code>.</p>"
        + table(["", "value"], rows) + oar + f"<ul>{models}{notes}</ul>" + "".join(figs),
    )


def _cold_at_organs(labels, grid, tmin: np.ndarray, tumour: str) -> str:
    """Coldest simulated temperature in each organ at risk inside the simulated region (cryo)."""
    from openir.core import resample
    from openir.report import table

    lab = resample(labels, grid).array
    rows = []
    for v, name in sorted(labels.labels.items()):
        if name in NOT_ORGANS or name.startswith("tumour"):
            continue
        m = lab == v
        if m.any():
            rows.append((name, int(m.sum()), f"{float(tmin[m].min()):.1f}"))
    if not rows:
        return "<p>No organ at risk inside the simulated region.</p>"
    return ("<p>Coldest temperature reached in each structure inside the simulated region (vessels warm the ice "
            "ball; a structure reaching -20/-40 °C is inside the lethal zone):</p>"
            + table(["structure", "voxels", "min temperature (°C)"], rows, numeric=(1, 2)))


def _ire_maps_tag(fields, centre) -> str:
    """Axial field and Joule-heating maps through the zone centre, radiological convention."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openir.core import Volume
    from openir.report import img_tag
    from openir.report.figures import figure_png
    from openir.report.slices import decorate, radiological_slice

    panels = [("field_v_cm", "electric field (V/cm)", "viridis"), ("max_temperature_c", "peak temperature (°C), Joule heating", "inferno")]
    panels = [p for p in panels if p[0] in fields.extra]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), facecolor="black", squeeze=False)
    for ax, (key, title, cmap) in zip(axes[0], panels, strict=True):
        s = radiological_slice(Volume(np.asarray(fields.extra[key], np.float32), fields.grid.affine), "axial", centre, order=1)
        im = ax.imshow(s.pixels, cmap=cmap, extent=s.extent, interpolation="bilinear")
        decorate(ax, s)
        ax.set_title(f"axial: {title}", color="white", fontsize=9)
        cb = fig.colorbar(im, ax=ax, fraction=0.046)
        cb.ax.tick_params(colors="white", labelsize=7)
    fig.tight_layout()
    return img_tag(figure_png(fig), "IRE field and heating")


def _run_emprint(ctx: DemoContext) -> None:
    """No plan: one Emprint antenna (100 W / 10 min) in the first tumour, homogeneous liver vs patient tissues."""
    from openir.core import LabelMap, Volume, resample
    from openir.io import write_nifti
    from openir.physics import SimulationRequest, simulate
    from openir.report import img_tag, overlay_slices_png, table
    from openir.report.physics_figures import plot_zone_growth

    patient = ctx.results["patient"]
    tum = patient.tumours[0]
    ct, labels = _crop_ct_labels(patient, tum.centre_lps)
    # feed point at the centroid of the tumour's voxels (a perivascular centre may fall in the vessel)
    kji = np.argwhere(labels.mask(tum.name)).mean(axis=0) if labels.has(tum.name) else None
    centre = labels.index_to_world(kji[::-1]) if kji is not None else np.asarray(tum.centre_lps, float)
    tip = centre + 10.0 * np.asarray(DIRECTION_LPS)
    req = SimulationRequest.model_validate({
        "probes": [{"device": "emprint", "power_w": 100, "time_s": 600, "tip_lps": tip.tolist(), "direction_lps": DIRECTION_LPS}],
        "spacing_mm": 2.0 if ctx.quick else 1.5, "box_mm": BOX_MM, "output_times_s": [120, 240, 360, 480, 600],
    })
    homog, _ = simulate(req)
    res, fields = simulate(req, labels)
    ctx.results["physics"] = res

    folder = ctx.out / "physics"
    folder.mkdir(parents=True, exist_ok=True)
    sol = fields.solution
    write_nifti(Volume(sol.cem43_min[-1], fields.grid.affine), folder / "cem43_min.nii.gz")
    write_nifti(Volume(sol.max_temperature_c, fields.grid.affine), folder / "max_temperature_c.nii.gz")
    plot_zone_growth(res, folder / "zone_growth.png")
    (folder / "simulation.json").write_text(res.model_dump_json(indent=2))

    zone = LabelMap((sol.cem43_min[-1] >= res.threshold).astype(np.uint8), fields.grid.affine, {}, {1: "lethal_zone"})
    zone_ct = resample(zone, ct.grid).array > 0
    png = overlay_slices_png(ct, labels.subset([n for n in labels.names if n in (tum.name, "liver", "portal_vein", "hepatic_veins")]),
                             centre, title="predicted lethal zone (CEM43 >= 240 min), vessels as heat sinks",
                             extra_masks={"lethal zone": zone_ct})
    shrink = 100 * (1 - res.final_volume_ml / homog.final_volume_ml) if homog.final_volume_ml else 0.0
    rows = [
        ("homogeneous liver (calibrated to the table)", f"{homog.final_length_mm:.1f}", f"{homog.final_width_mm:.1f}", f"{homog.final_volume_ml:.1f}"),
        ("patient tissues + vessel heat sinks", f"{res.final_length_mm:.1f}", f"{res.final_width_mm:.1f}", f"{res.final_volume_ml:.1f}"),
    ]
    notes = "".join(f"<li>{n}</li>" for n in res.notes)
    ctx.add_section(
        "Bioheat simulation",
        f"<p>No plan in this run: Emprint 100 W / 10 min, feed point at {tum.name} ({tum.location}); Pennes solver on a "
        f"{req.spacing_mm:g} mm grid, {res.n_steps} {res.method} steps in {res.runtime_s:.1f} s. "
        f"Zone volume change from the vessels: {-shrink:+.0f}%.</p>"
        + table(["model", "length (mm)", "width (mm)", "volume (mL)"], rows, numeric=(1, 2, 3))
        + f"<ul>{notes}</ul>" + img_tag(png, "lethal zone") + img_tag((folder / "zone_growth.png").read_bytes(), "zone growth"),
    )
