"""The ``openir`` command: one sub-command per stage of a procedure.

Each domain package keeps its own commands in ``<package>/cli.py``; this module only assembles them,
and turns OpenIR errors into one red line and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from openir import __version__
from openir.core.errors import OpenIRError

app = typer.Typer(
    name="openir",
    help="OpenIR: plan, monitor, verify and record image-guided interventional procedures.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
err_console = Console(stderr=True)


@app.command()
def version() -> None:
    """Print the OpenIR version."""
    typer.echo(__version__)


@app.command()
def info(
    path: Path = typer.Argument(..., help="a DICOM file or folder, NIfTI, NRRD, SEG, RTSTRUCT, markups"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Show what a file or folder holds: modality, grid, spacing, labels."""
    from openir.io.info import describe, render_info

    result = describe(path)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render_info(result, Console())


@app.command()
def demo(
    out: Path = typer.Option(Path("openir-demo"), "--out", "-o", help="output folder"),
    seed: int = typer.Option(7, help="seed of the synthetic patient"),
    quick: bool = typer.Option(False, help="a coarser patient (2 mm voxels) for a fast run"),
    stages: str = typer.Option("", help="comma-separated stage names to run (default: all)"),
) -> None:
    """Run the end-to-end demo on a generated patient and write an HTML summary."""
    from openir.demo import run_demo

    index = run_demo(out, seed=seed, quick=quick, only=[s for s in stages.split(",") if s])
    Console().print(f"[green]Demo written:[/green] {index}")


# ---- commands from the domain packages (one line each) ---------------------------------------
# e.g. app.add_typer(dose_cli.app, name="dose") or app.command("trajectories")(plan_cli.trajectories)
from openir.verify.cli import app as _verify_app  # noqa: E402

app.add_typer(_verify_app, name="verify")
from openir.registry.cli import app as _registry_app  # noqa: E402
from openir.registry.cli import qc_app as _qc_app  # noqa: E402

app.add_typer(_registry_app, name="registry")
app.add_typer(_qc_app, name="qc")
from openir.dose.cli import app as dose_app  # noqa: E402

app.add_typer(dose_app, name="dose")
from openir.plan.cli import trajectories as _plan_trajectories  # noqa: E402

app.command("trajectories")(_plan_trajectories)
from openir.plan.cli import plan as _plan_plan  # noqa: E402

app.command("plan")(_plan_plan)
from openir.physics.cli import simulate as _physics_simulate  # noqa: E402

app.command("simulate")(_physics_simulate)
from openir.monitor.cli import app as _thermo_app  # noqa: E402

app.add_typer(_thermo_app, name="thermo")
# --------------------------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry: OpenIR errors become one message and their exit code."""
    try:
        app()
    except OpenIRError as exc:
        # the message is the user's data (file names, "[field]"): print it literally, not as markup
        err_console.print("[bold red]error:[/bold red] ", end="")
        err_console.print(str(exc), markup=False, highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
