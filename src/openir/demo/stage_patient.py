"""Demo stage 1: generate the synthetic patient and save CT + label map (NIfTI and labels JSON)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from openir.report import img_tag, overlay_slices_png, table

if TYPE_CHECKING:
    from .runner import DemoContext


def run(ctx: DemoContext) -> None:
    from openir.io import write_nifti
    from openir.phantom import TumourSpec, make_abdomen

    spacing = (2.0, 2.0, 2.0) if ctx.quick else (0.8, 0.8, 1.0)
    tumours = (
        TumourSpec(diameter_mm=30.0, shape="lobulated", location="perivascular"),
        TumourSpec(diameter_mm=18.0, shape="sphere", location="subcapsular"),
    )
    patient = make_abdomen(seed=ctx.seed, tumours=tumours, spacing_mm=spacing)
    ctx.results["patient"] = patient

    folder = ctx.out / "patient"
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(patient.ct, folder / "ct.nii.gz")
    write_nifti(patient.labels, folder / "labels.nii.gz")
    (folder / "labels.json").write_text(
        json.dumps({"labels": {str(v): n for v, n in sorted(patient.labels.labels.items())}}, indent=1)
    )

    figs = []
    for t in patient.tumours:
        png = overlay_slices_png(patient.ct, patient.labels, t.centre_lps, title=f"{t.name}: {t.diameter_mm:.0f} mm {t.shape}, {t.location}")
        (folder / f"{t.name}.png").write_bytes(png)
        figs.append(img_tag(png, t.name))
    vols = patient.labels.volumes_ml()
    rows = [(n, f"{vols[n]:.1f}") for n in patient.labels.names if n in vols]
    tum = table(
        ["tumour", "shape", "location", "diameter (mm)", "volume (mL)", "centre LPS (mm)"],
        [(t.name, t.shape, t.location, f"{t.diameter_mm:.0f}", f"{t.volume_ml:.1f}",
          ", ".join(f"{c:.0f}" for c in t.centre_lps)) for t in patient.tumours],
        numeric=(3, 4),
    )
    grid = patient.ct.grid.describe()
    ctx.add_section(
        "Patient",
        f"<p>Synthetic abdomen, {grid}. Files: <code>patient/ct.nii.gz</code>, "
        f"<code>patient/labels.nii.gz</code>, <code>patient/labels.json</code>.</p>{tum}{''.join(figs)}"
        f"<details><summary>Structures ({len(rows)})</summary>{table(['label', 'volume (mL)'], rows, numeric=(1,))}</details>",
    )
