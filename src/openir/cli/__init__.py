"""The ``openir`` command: one sub-command per stage of a procedure.

Each stage keeps its commands in a module of this package (``openir.cli.plan``, ``openir.cli.verify``...), the only
place that wires io, domain packages and report together; this module only assembles them,
and turns OpenIR errors into one red line and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from openir import __version__
from openir.core.errors import OpenIRError

err_console = Console(stderr=True)

# ---- commands from the domain packages -----------------------------------------------------------
# Each is imported only when it runs, so `openir --help` and `openir version` start in a fraction
# of a second instead of loading numba, scipy and SQLAlchemy for every call.
# name: (module, attribute (a Typer app or a command function), one-line help for `openir --help`)
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("openir.cli.plan", "plan", "Plan an ablation: modality, target with margin, probe placement, plan report."),
    "devices": ("openir.cli.devices", "app", "Ablation device catalogue: list devices, show zone tables and sources, zone lookup, chart."),
    "trajectories": ("openir.cli.plan", "trajectories", "Find every safe straight needle path to a target; JSON, Slicer markups, PNG."),
    "path": ("openir.cli.path", "path", "Needle path for a CT-guided biopsy, drainage or nerve block (--procedure)."),
    "simulate": ("openir.cli.simulate", "simulate", "Bioheat simulation of a plan's probes: temperature and thermal-dose maps."),
    "thermo": ("openir.cli.thermo", "app", "MR thermometry: live temperature, thermal dose and safety alerts."),
    "verify": ("openir.cli.verify", "app", "Ablation verification: registration, minimal ablative margin, verdict."),
    "dose": ("openir.cli.dose", "app", "Radiation dose monitoring: RDSR import, DICOM receiver, alerts, reference levels."),
    "seeds": ("openir.cli.seeds", "app", "Radioactive seed implantation: TG-43 dose, template and needles, inverse planning, post-implant check."),
    "registry": ("openir.cli.registry", "app", "Multi-centre procedure registry: create, import, export, record."),
    "qc": ("openir.cli.registry", "qc_app", "Quality control over the registry: indicators, funnel plots, ratings."),
    "navigate": ("openir.cli.navigate", "navigate", "Serve a plan over OpenIGTLink and guide a tracked needle against it; replay a log."),
    "serve": ("openir.cli.web", "serve", "Start the web application (registry entry, dashboards, case viewer)."),
    "users": ("openir.cli.users", "app", "Web accounts: add, list, disable/enable, the first administrator."),
    "sop": ("openir.cli.sop", "app", "Standard operating procedures: show a technique's SOP, check a patient's values against it."),
    "training": ("openir.cli.training", "app", "Teaching case library (add, list, show, export) and trainee plan scoring."),
}


class _LazyGroup(TyperGroup):
    """A Typer group that lists the domain commands from `LAZY_COMMANDS` and imports one on use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (_, _, short_help) in LAZY_COMMANDS.items():
            self.commands.setdefault(name, TyperCommand(name=name, help=short_help, short_help=short_help))

    def _load(self, name: str) -> None:
        module, attribute, _ = LAZY_COMMANDS[name]
        obj = getattr(importlib.import_module(module), attribute)
        if isinstance(obj, typer.Typer):
            obj._add_completion = False  # a sub-command, not a root: no shell-completion options
            command = typer.main.get_group(obj)  # a group even with one sub-command (qc report)
        else:  # a plain function: wrap it in a one-command Typer, which Typer turns into the command
            single = typer.Typer(pretty_exceptions_show_locals=False, add_completion=False)
            single.command(name)(obj)
            command = typer.main.get_command(single)
        command.name = name
        self.commands[name] = command

    def resolve_command(self, ctx: Any, args: list[str]):  # type: ignore[override]
        if args and args[0] in LAZY_COMMANDS and not getattr(self.commands[args[0]], "_loaded", False):
            self._load(args[0])
            self.commands[args[0]]._loaded = True  # type: ignore[attr-defined]
        return super().resolve_command(ctx, args)


# --------------------------------------------------------------------------------------------------
app = typer.Typer(
    name="openir",
    help="OpenIR: plan, monitor, verify and record image-guided interventional procedures.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    cls=_LazyGroup,
)


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


def main() -> None:
    """Console-script entry: OpenIR errors become one message and their exit code."""
    try:
        app()
    except OpenIRError as exc:
        # the message is the user's data (file names, "[field]"): print it literally, not as markup
        err_console.print("[bold red]error:[/bold red] ", end="")
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)  # one line, never re-wrapped
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
