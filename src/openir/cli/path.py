"""`openir path --procedure biopsy|drainage|nerve-block`: the safest needle path for a CT-guided
lung biopsy, drainage of a collection or coeliac plexus block, as JSON, Slicer markups and a figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from openir.core.errors import InputError


def path(
    ct: Path = typer.Argument(..., help="CT image (DICOM folder, NIfTI, NRRD)"),
    labels: Path = typer.Argument(..., help="label map on the CT grid (NIfTI/NRRD/SEG)"),
    procedure: str = typer.Option(..., "--procedure", "-p", help="biopsy, drainage or nerve-block"),
    target: str | None = typer.Option(None, "--target", "-t",
                                      help="'x,y,z' LPS mm or a label name (default: the procedure's target label)"),
    position: str | None = typer.Option(None, "--position", help="supine, prone, left_lateral, right_lateral "
                                        "(default: each the procedure allows)"),
    gauge: int | None = typer.Option(None, "--gauge", help="needle gauge (default: the procedure's)"),
    needle_mm: float | None = typer.Option(None, "--needle", help="usable needle length, mm"),
    french: float | None = typer.Option(None, "--catheter-fr", help="drainage catheter size, French"),
    directions: int = typer.Option(20000, "--directions", help="candidate directions per position"),
    keep_away: list[str] = typer.Option([], "--keep-away", help="NAME=MM keep-away margin (repeatable)"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON for NIfTI/NRRD label maps"),
    out: Path = typer.Option(Path("path"), "--out", "-o", help="output folder"),
) -> None:
    """Plan the needle path of a CT-guided biopsy, drainage or nerve block; write JSON, markups, PNG."""
    from openir import io
    from openir.cli.plan import parse_pairs, read_case
    from openir.core import body_mask_from_ct
    from openir.plan import PathOptions, plan_path
    from openir.report.trajectory_figure import plot_trajectories

    console = Console()
    image, lm = read_case(ct, labels, names, console)
    tgt: str | np.ndarray | None = target
    if target is not None:
        parts = target.replace(" ", "").split(",")
        if len(parts) == 3:
            try:
                tgt = np.array([float(p) for p in parts])
            except ValueError:
                raise InputError(f"target {target!r} is neither 'x,y,z' nor a label name", field="--target") from None
        else:
            lm.value_of(target)  # UnknownLabelError names the available labels
    try:
        opts = PathOptions(position=position, needle_gauge=gauge, needle_length_mm=needle_mm, catheter_french=french,
                           n_directions=directions, keep_away=parse_pairs(keep_away, "--keep-away"))
    except ValueError as exc:
        raise InputError(str(exc).splitlines()[-1] if str(exc) else "bad option", field="--position") from None
    with console.status(f"{procedure}: body mask, distance maps and search"):
        body = body_mask_from_ct(image, lm)
        res = plan_path(lm, procedure, tgt, opts, body_mask=body)
    out.mkdir(parents=True, exist_ok=True)
    (out / "path.json").write_text(res.model_dump_json(indent=2))
    b = res.best
    io.write_markups(out / "path.mrk.json", points={"target": {"target": res.target_lps}, "entry": {"entry": b.entry_lps}},
                     lines={f"path_{t.rank}": (t.entry_lps, t.target_lps) for t in res.result.shortlist})
    plot_trajectories(res.result, lm, out / "path.png", ct=image)
    console.print(f"[green]{res.title}[/green]: patient {res.position}, {res.needle_gauge} G needle")
    console.print(f"  entry {np.round(b.entry_lps, 1).tolist()} LPS, depth {b.depth_mm:.1f} mm, gantry "
                  f"{b.inplane_angle_deg:+.0f} deg, craniocaudal {b.craniocaudal_angle_deg:+.0f} deg, "
                  f"min clearance {b.min_clearance_mm:.1f} mm")
    for r in res.risk_factors:
        console.print(f"  risk: {r}", markup=False)
    console.print(f"written to {out}")
