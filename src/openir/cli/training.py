"""``openir training``: the teaching case library (add, list, show, export) and plan scoring."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from openir.core.errors import OpenIRError

app = typer.Typer(help="Teaching case library and trainee plan scoring.", no_args_is_help=True)
library_app = typer.Typer(help="De-identified teaching cases: add, list, show, export.", no_args_is_help=True)
app.add_typer(library_app, name="library")
err = Console(stderr=True)

LIB = typer.Option(None, "--library", help="library folder (default: <storage root>/training)")


def _root(library: Path | None) -> Path:
    if library is not None:
        return library
    from openir.core.settings import get_settings

    return get_settings().storage_root / "training"


def _clean(fn: Callable[..., Any]) -> Callable[..., Any]:
    """OpenIR errors: one red line and the error's exit code (2 for bad input), no traceback."""

    @wraps(fn)
    def run(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except OpenIRError as exc:
            err.print("[bold red]error:[/bold red] ", end="")
            err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return run


@library_app.command("add")
@_clean
def add(
    plan: Path | None = typer.Option(None, "--plan", help="expert plan JSON (as `openir plan` writes it)"),
    ct: Path | None = typer.Option(None, "--ct", help="CT image (DICOM folder, NIfTI, NRRD)"),
    labels: Path | None = typer.Option(None, "--labels", help="label map on the CT grid"),
    names: Path | None = typer.Option(None, "--names", help="label names JSON (value: name)"),
    case_id: int | None = typer.Option(None, "--case-id", help="registry procedure id (instead of files)"),
    db: str | None = typer.Option(None, "--db", help="registry database URL (with --case-id)"),
    storage: Path | None = typer.Option(None, "--storage", help="registry storage root (with --case-id)"),
    tumour: str | None = typer.Option(None, "--tumour", "--tumor", help="tumour label (default: the plan's first)"),
    technique: str | None = typer.Option(None, "--technique", help="technique (default: the plan's modality)"),
    title: str = typer.Option("", "--title", help="a short teaching title (no patient data)"),
    time_min: float | None = typer.Option(None, "--time-min", help="expert procedure time, minutes"),
    library: Path | None = LIB,
) -> None:
    """Add a de-identified case, from files (--ct, --labels, --plan) or a registry case (--case-id)."""
    from openir.core.errors import InputError
    from openir.training import add_case, read_plan

    if case_id is not None:
        from openir.core.settings import get_settings
        from openir.io.label_names import load_label_names
        from openir.registry import make_engine, session_scope
        from openir.training import case_from_registry

        nm = load_label_names(names) if names else None
        with session_scope(make_engine(db), "training") as s:
            args = case_from_registry(s, case_id, storage or get_settings().storage_root, plan=plan, names=nm)
        if time_min is not None:
            args["expert_time_min"] = time_min
        entry = add_case(_root(library), tumour=tumour, title=title, **{**args, "technique": technique or args["technique"]})
    else:
        if plan is None or labels is None:
            raise InputError("give --plan and --labels (and --ct), or --case-id", field="plan")
        from openir import io

        image = io.read_image(ct) if ct is not None else None
        lm = (io.read_labels(labels, names, reference=image) if names else io.read_labels(labels, reference=image)) \
            if image is not None else io.read_labels(labels, names)
        entry = add_case(_root(library), image, lm, read_plan(plan), tumour=tumour, technique=technique, title=title,
                         expert_time_min=time_min)
    Console().print(f"[green]added[/green] {entry.entry_id}: {entry.organ}, {entry.technique}, "
                    f"{entry.difficulty.level} ({entry.difficulty.points} points)")


@library_app.command("list")
@_clean
def list_cmd(
    organ: str | None = typer.Option(None, "--organ"),
    technique: str | None = typer.Option(None, "--technique"),
    difficulty: str | None = typer.Option(None, "--difficulty", help="basic | intermediate | advanced"),
    as_json: bool = typer.Option(False, "--json"),
    library: Path | None = LIB,
) -> None:
    """List the library's cases, filtered by organ, technique and difficulty."""
    from openir.training import entries_json, list_entries

    rows = list_entries(_root(library), organ=organ, technique=technique, difficulty=difficulty)
    if as_json:
        typer.echo(json.dumps(entries_json(rows), ensure_ascii=False, indent=1))
        return
    t = Table("id", "organ", "technique", "tumour mm", "difficulty", "title")
    for e in rows:
        t.add_row(e.entry_id, e.organ, e.technique, f"{e.tumour_diameter_mm:.0f}",
                  f"{e.difficulty.level} ({e.difficulty.points})", e.title)
    Console().print(t)


@library_app.command("show")
@_clean
def show(entry_id: str = typer.Argument(...), library: Path | None = LIB) -> None:
    """Show one case: difficulty criteria (with sources), outcome, files."""
    from openir.training import read_entry

    typer.echo(read_entry(_root(library), entry_id).model_dump_json(indent=1))


@library_app.command("export")
@_clean
def export(
    entry_id: str = typer.Argument(...),
    out: Path = typer.Option(..., "--out", "-o", help="destination folder"),
    with_expert: bool = typer.Option(False, "--with-expert", help="include the expert plan (for review)"),
    library: Path | None = LIB,
) -> None:
    """Export a case folder for a trainee (image, labels, case sheet; expert plan on request)."""
    from openir.training import export_case

    folder = export_case(_root(library), entry_id, out, include_expert=with_expert)
    Console().print(f"[green]exported[/green] {folder}")


@app.command("score")
@_clean
def score(
    case: str = typer.Argument(..., help="library case id"),
    plan: Path = typer.Argument(..., help="the trainee's plan: a plan JSON, or needles as entry/tip points"),
    as_json: bool = typer.Option(False, "--json", help="print the score as JSON"),
    figure: Path | None = typer.Option(None, "--figure", help="write the exercise figure (PNG)"),
    time_min: float | None = typer.Option(None, "--time-min", help="the trainee's procedure time, minutes"),
    lang: str = typer.Option("en", "--lang", help="en | zh-CN (explanations and figure)"),
    library: Path | None = LIB,
) -> None:
    """Score a trainee's plan against the case's ground truth and expert plan; explain every point lost."""
    from openir.training import load_case, read_trainee_plan, score_plan

    tc = load_case(_root(library), case)
    trainee = read_trainee_plan(plan)
    s = score_plan(tc, trainee, procedure_time_min=time_min)
    if figure is not None:
        from openir.report import exercise_figure

        exercise_figure(figure, tc, trainee, s)
    if as_json:
        typer.echo(s.model_dump_json(indent=1))
        return
    zh = lang.lower().startswith("zh")
    t = Table("criterion", "points", "measured", "reference", "expert", "why" if not zh else "扣分原因")
    for c in s.criteria:
        t.add_row(c.id, f"{c.points:g}/{c.max_points:g}", f"{c.measured:g} {c.unit}" if c.measured is not None else "-",
                  f"{c.reference:g}" if c.reference is not None else "-", f"{c.expert:g}" if c.expert is not None else "-",
                  (c.explanation_zh if zh else c.explanation_en) or "")
    con = Console()
    con.print(t)
    con.print(f"total {s.total:g}/{s.max_total:g} ({s.percent:.0f} %) - {'pass' if s.passed else 'not passed'}; "
              f"{s.n_probes} insertion(s), expert {s.expert_n_probes}; zone overlap with the expert (Dice) "
              f"{s.zone_dice_vs_expert:.2f}")
