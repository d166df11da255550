"""Demo stage: bioheat simulation of one Emprint antenna in the first tumour.

The antenna's calibrated source (100 W / 10 min) is simulated twice: in homogeneous liver (the
table's zone) and in the patient's tissues with the large vessels as flow-dependent heat sinks, so
the summary shows the heat-sink effect beside the perivascular tumour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext

DIRECTION_LPS = (0.0, 1.0, 0.0)  # anterior entry, towards posterior


def run(ctx: DemoContext) -> None:
    from openir.core import LabelMap, Volume, crop, resample, world_box
    from openir.io import write_nifti
    from openir.physics import SimulationRequest, simulate
    from openir.report import img_tag, overlay_slices_png, table
    from openir.report.physics_figures import plot_zone_growth

    patient = ctx.results["patient"]
    tum = patient.tumours[0]
    box = world_box(patient.ct.grid, tum.centre_lps, 100.0)
    ct, labels = crop(patient.ct, box), crop(patient.labels, box)
    labels = LabelMap(np.ascontiguousarray(labels.array), labels.affine, dict(labels.meta), dict(labels.labels))
    # feed point at the centroid of the tumour's voxels (a perivascular centre may fall in the vessel)
    kji = np.argwhere(labels.mask(tum.name)).mean(axis=0) if labels.has(tum.name) else None
    centre = labels.index_to_world(kji[::-1]) if kji is not None else np.asarray(tum.centre_lps, float)
    tip = centre + 10.0 * np.asarray(DIRECTION_LPS)
    req = SimulationRequest.model_validate({
        "probes": [{"device": "emprint", "power_w": 100, "time_s": 600, "tip_lps": tip.tolist(), "direction_lps": DIRECTION_LPS}],
        "spacing_mm": 2.0 if ctx.quick else 1.5, "box_mm": 90, "output_times_s": [120, 240, 360, 480, 600],
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
        f"<p>Emprint 100 W / 10 min, feed point at {tum.name} ({tum.location}); Pennes solver on a "
        f"{req.spacing_mm:g} mm grid, {res.n_steps} {res.method} steps in {res.runtime_s:.1f} s. "
        f"Zone volume change from the vessels: {-shrink:+.0f}%.</p>"
        + table(["model", "length (mm)", "width (mm)", "volume (mL)"], rows, numeric=(1, 2, 3))
        + f"<ul>{notes}</ul>" + img_tag(png, "lethal zone") + img_tag((folder / "zone_growth.png").read_bytes(), "zone growth"),
    )
