"""`openir seeds verify`: post-implant dosimetry of a seed implant from the post-implant CT and the plan.

Registered on `openir.cli.seeds.app` (next to ``plan`` and ``template``). Example (synthetic case)::

    python -m openir.cli.seeds_verify --demo /tmp/case        # writes ct.nrrd, labels.nrrd, plan.json
    openir seeds verify --ct /tmp/case/ct.nrrd --labels /tmp/case/labels.nrrd --target tumour_1 \\
        --plan /tmp/case/plan.json --out /tmp/case/verify

The plan is the plan.json of ``openir seeds plan`` (a `SeedPlan`) or a light JSON
``{"seeds": [Seed, ...], "prescription_gy": ..., "seed_model": ...}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from openir.core.errors import InputError


def _read_plan(path: Path):
    """Planned seeds, prescription and seed model from a plan JSON (a `SeedPlan`, or its seeds alone)."""
    from pydantic import ValidationError

    from openir.seeds import Seed

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the plan ({exc})", source=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"the plan is not valid JSON ({exc.msg}, line {exc.lineno})", source=path) from None
    items = doc if isinstance(doc, list) else doc.get("seeds") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("the plan holds no seeds (expected a 'seeds' list)", source=path, field="seeds")
    seeds = []
    for i, item in enumerate(items):
        try:
            seeds.append(Seed.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(f"invalid seed: {first['msg']}", source=path, field=f"seeds.{i}.{where}") from None
    meta = doc if isinstance(doc, dict) else {}
    return seeds, meta.get("prescription_gy"), meta.get("seed_model") or meta.get("model")


def seeds_verify(
    ct_path: Path = typer.Option(..., "--ct", help="post-implant CT (DICOM folder, NIfTI or NRRD), in HU"),
    labels_path: Path = typer.Option(..., "--labels", help="label map holding the target, on the CT grid"),
    plan_path: Path = typer.Option(..., "--plan", help="plan JSON with the planned seeds (LPS mm, S_K in U)"),
    target: str = typer.Option("tumour", help="target label name"),
    prescription: float | None = typer.Option(None, "--prescription", help="prescription dose, Gy (default: the plan's)"),
    model: str | None = typer.Option(None, help="seed model (default: the plan's, else 6711)"),
    threshold: float = typer.Option(1500.0, help="metal threshold for seed detection, HU"),
    out: Path = typer.Option(Path("openir-seeds-verify"), "--out", "-o", help="output folder"),
) -> None:
    """Post-implant dosimetry: find the seeds on the CT, match them to the plan, recompute the dose, compare."""
    from openir.io import read_image, read_labels
    from openir.report.seed_verify_figures import seed_verify_figure
    from openir.seeds.detect import DetectOptions
    from openir.seeds.postimplant import VerifyOptions, verify_implant

    for p in (ct_path, labels_path, plan_path):
        if not p.exists():
            raise InputError("file not found", source=p)
        if p.is_file() and p.stat().st_size == 0:
            raise InputError("the file is empty", source=p)
    planned, rx_plan, model_plan = _read_plan(plan_path)
    rx = prescription if prescription is not None else rx_plan
    if rx is None:
        raise InputError("no prescription: give --prescription or put prescription_gy in the plan", source=plan_path,
                         field="prescription_gy")
    ct = read_image(ct_path)
    labels = read_labels(labels_path, reference=ct)
    if labels.shape != ct.shape or not labels.grid.same_as(ct.grid, tol_mm=0.01):
        raise InputError("the label map is not on the CT's grid", source=labels_path)
    mask = labels.mask(target)
    opts = VerifyOptions(model=model or model_plan or "6711", detect=DetectOptions(threshold_hu=threshold))
    report = verify_implant(ct, mask, planned, float(rx), opts, source=str(ct_path))

    out.mkdir(parents=True, exist_ok=True)
    js = out / "postimplant.json"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, js)  # never a half-written report
    import numpy as np

    centre = ct.index_to_world(np.argwhere(mask).mean(0)[::-1])
    pairs = [(m.planned_index, m.found_index) for m in report.matches if m.found_index is not None]
    png = seed_verify_figure(ct, np.array([s.position_lps for s in planned]), report.detection.positions_lps, pairs,
                             centre, out / "seeds_verify.png",
                             title=f"Post-implant: {report.found_seeds} found / {report.planned_seeds} planned; "
                                   f"D90 {report.post.d90_gy:.0f} Gy (plan {report.plan.d90_gy:.0f})")
    con = Console()
    con.print(f"seeds: {report.found_seeds} found, {report.planned_seeds} planned, {report.matched_seeds} matched; "
              f"mean error {report.seed_error_mean_mm or 0:.1f} mm")
    con.print(f"D90 {report.post.d90_gy:.1f} Gy (plan {report.plan.d90_gy:.1f}, delta {report.delta_d90_gy:+.1f}); "
              f"V100 {report.post.v100_pct:.1f} % (plan {report.plan.v100_pct:.1f}, delta {report.delta_v100_pct:+.1f})")
    for w in report.warnings:
        con.print(f"[yellow]warning:[/] {w}")
    con.print(f"wrote {js} and {png}")


def write_demo_case(folder: Path, spec=None, sk_u: float = 0.8, prescription_gy: float = 120.0) -> Path:
    """A synthetic post-implant case (CT, labels, plan JSON) for trying the command; returns the plan."""
    from openir.io import write_nrrd
    from openir.phantom import PostImplantSpec, make_post_implant_ct

    p = make_post_implant_ct(spec or PostImplantSpec())
    folder.mkdir(parents=True, exist_ok=True)
    write_nrrd(p.ct, folder / "ct.nrrd")
    write_nrrd(p.labels, folder / "labels.nrrd")
    (folder / "labels.json").write_text(json.dumps({str(v): n for v, n in p.labels.labels.items()}))
    seeds = [{"position_lps": s.planned_lps, "direction_lps": p.needles[s.needle].planned_direction,
              "air_kerma_strength_U": sk_u, "needle": s.needle} for s in p.seeds]
    plan = folder / "plan.json"
    plan.write_text(json.dumps({"seed_model": "6711", "prescription_gy": prescription_gy, "seeds": seeds}, indent=1))
    return plan


if __name__ == "__main__":  # pragma: no cover - demo helper
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        print(write_demo_case(Path(sys.argv[2])))
