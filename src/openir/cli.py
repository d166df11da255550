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
# --------------------------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry: OpenIR errors become one message and their exit code."""
    try:
        app()
    except OpenIRError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
