"""`openir seeds verify`: post-implant dosimetry of a seed implant from the post-implant CT and the plan.

Registered on `openir.cli.seeds.app` (next to ``plan`` and ``template``). Example (synthetic case)::

    python -m openir.cli.seeds_verify --demo /tmp/case        # writes ct.nrrd, labels.nrrd, plan.json
    openir seeds verify /tmp/case/plan.json /tmp/case/ct.nrrd /tmp/case/labels.nrrd -o /tmp/case/verify

The plan is the plan.json of ``openir seeds plan`` (a `SeedPlan`) or a light JSON
``{"seeds": [Seed, ...], "prescription_gy": ..., "seed_model": ..., "tumour": ...}``. The labels must
lie on the post-implant CT's grid (contoured on it, or registered from the planning CT first); plan
and found seeds are evaluated on the same target mask and dose grid, so the deltas compare like
with like. Outputs: postimplant.json (`PostImplantReport`) and seeds_verify.png.
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
    return seeds, meta.get("prescription_gy"), meta.get("seed_model") or meta.get("model"), meta.get("tumour")


def seeds_verify(
    plan_path: Path = typer.Argument(..., help="plan JSON (openir seeds plan's plan.json) with the planned seeds"),
    ct_path: Path = typer.Argument(..., help="post-implant CT (DICOM folder, NIfTI or NRRD), in HU"),
    labels_path: Path = typer.Argument(..., help="label map with the target, on the post-implant CT's grid"),
    tumour: str | None = typer.Option(None, "--tumour", "-t", help="target label name (default: the plan's tumour)"),
    prescription: float | None = typer.Option(None, "--rx", help="prescription dose, Gy (default: the plan's)"),
    model: str | None = typer.Option(None, "--model", help="seed model (default: the plan's, else 6711)"),
    threshold: float = typer.Option(1500.0, "--threshold", help="metal threshold for seed detection, HU"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    out: Path = typer.Option(Path("seeds-verify"), "--out", "-o", help="output folder"),
) -> None:
    """Post-implant dosimetry: find the seeds on the CT, match them to the plan, recompute the dose, compare."""
    import numpy as np

    from openir.cli.plan import read_case
    from openir.report.seed_verify_figures import seed_verify_figure
    from openir.seeds.detect import DetectOptions
    from openir.seeds.postimplant import VerifyOptions, verify_implant

    for p in (plan_path, ct_path, labels_path):
        if not p.exists():
            raise InputError("file not found", source=p)
        if p.is_file() and p.stat().st_size == 0:
            raise InputError("the file is empty", source=p)
    if not (np.isfinite(threshold) and 500.0 <= threshold <= 30000.0):
        raise InputError(f"threshold must be 500-30000 HU, got {threshold}", field="--threshold")
    planned, rx_plan, model_plan, tumour_plan = _read_plan(plan_path)
    rx = prescription if prescription is not None else rx_plan
    if rx is None:
        raise InputError("no prescription: give --rx or put prescription_gy in the plan", source=plan_path,
                         field="prescription_gy")
    target = tumour or tumour_plan
    if not target:
        raise InputError("no target: give --tumour or put tumour in the plan", source=plan_path, field="tumour")
    con = Console()
    ct, labels = read_case(ct_path, labels_path, names, con)
    mask = labels.mask(target)
    opts = VerifyOptions(model=model or model_plan or "6711", detect=DetectOptions(threshold_hu=threshold))
    with con.status("finding seeds, matching, dose"):
        report = verify_implant(ct, mask, planned, float(rx), opts, source=str(ct_path))

    out.mkdir(parents=True, exist_ok=True)
    js = out / "postimplant.json"
    tmp = js.with_suffix(".json.part")
    tmp.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, js)  # never a half-written report
    centre = ct.index_to_world(np.argwhere(mask).mean(0)[::-1])
    pairs = [(m.planned_index, m.found_index) for m in report.matches if m.found_index is not None]
    png = seed_verify_figure(ct, np.array([s.position_lps for s in planned]), report.detection.positions_lps, pairs,
                             centre, out / "seeds_verify.png",
                             title=f"Post-implant: {report.found_seeds} found / {report.planned_seeds} planned; "
                                   f"D90 of {target} {report.post.d90_gy:.0f} Gy (planned seeds {report.plan.d90_gy:.0f})")
    con.print(f"seeds: {report.found_seeds} found, {report.planned_seeds} planned, {report.matched_seeds} matched; "
              f"mean error {report.seed_error_mean_mm or 0:.1f} mm")
    con.print(f"{target}: D90 {report.post.d90_gy:.1f} Gy (plan {report.plan.d90_gy:.1f}, delta {report.delta_d90_gy:+.1f}); "
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
    plan.write_text(json.dumps({"seed_model": "6711", "prescription_gy": prescription_gy, "tumour": p.tumour.name,
                                "seeds": seeds}, indent=1))
    return plan


if __name__ == "__main__":  # pragma: no cover - demo helper
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        print(write_demo_case(Path(sys.argv[2])))
