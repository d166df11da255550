"""``openir registry ...`` and ``openir qc ...`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from openir.core.errors import InputError

from .credentials import app as credentials_app

app = typer.Typer(help="Multi-centre procedure registry: create, import, export, record.", no_args_is_help=True)
qc_app = typer.Typer(help="Quality control over the registry: indicators, funnel plots, ratings.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
URL = typer.Option(None, "--db", help="database URL (default: OPENIR_DATABASE_URL or SQLite in OPENIR_HOME)")


@app.command("init")
def init(db: str | None = URL) -> None:
    """Create or upgrade the registry schema (Alembic migrations)."""
    from openir.registry.db import database_url, init_db, schema_revision

    engine = init_db(db)
    Console().print(f"[green]registry ready[/green] at {database_url(db)} (schema {schema_revision(engine)})")


@app.command("seed")
def seed(
    db: str | None = URL,
    procedures: int = typer.Option(20_000, help="number of synthetic procedures"),
    hospitals: int = typer.Option(40, help="number of synthetic hospitals"),
    seed_: int = typer.Option(0, "--seed", help="random seed"),
) -> None:
    """Fill the registry with synthetic multi-centre data (with planted outliers)."""
    from openir.phantom.registry_data import generate_registry
    from openir.registry.bulk import load_dataset
    from openir.registry.db import init_db

    engine = init_db(db)
    ds = generate_registry(procedures, hospitals, seed=seed_)
    counts = load_dataset(engine, ds)
    Console().print(f"stored {counts}; planted: {json.dumps(ds.truth)}")


@app.command("import")
def import_(path: Path = typer.Argument(..., help="CSV or Excel file of procedures"), db: str | None = URL,
            actor: str = typer.Option("import", help="who is importing (audit log)"),
            encoding: str | None = typer.Option(None, help="CSV text encoding (default: detect UTF-8 / BOM / GB18030)")) -> None:
    """Import procedures; the whole file is validated first and nothing is stored if any row is bad.

    Optional pre-procedure value columns (inr, platelets, egfr, pregnancy, antithrombotics, ...) are
    checked against the technique's SOP and stored with their deviations; a row with block-level
    deviations needs sop_override_reason.

    Example: openir registry import 导出.csv --encoding gb18030
    """
    from openir.registry.db import init_db
    from openir.registry.importer import ImportValidationError, import_procedures
    from openir.sop import check_patient

    engine = init_db(db)
    try:
        report = import_procedures(engine, path, actor=actor, encoding=encoding, sop_checker=check_patient)
    except ImportValidationError as exc:
        Console(stderr=True).print(exc.report.text(), highlight=False)
        raise
    Console().print(f"[green]imported[/green] {report.stored}")


@app.command("template")
def template(out: Path = typer.Argument(..., help=".xlsx (drop-down lists, column sheet) or .csv (UTF-8 BOM, label rows)")) -> None:
    """Write an empty import file with every column and its allowed values in Chinese and English.

    Example: openir registry template procedures.xlsx
    """
    from openir.registry.columns import write_template

    Console().print(f"[green]template[/green] {write_template(out)}")


@app.command("export")
def export(out: Path = typer.Argument(..., help=".csv / .parquet (de-identified table) or .json (FHIR R4 Bundle)"),
           db: str | None = URL, salt: str | None = typer.Option(None, help="pseudonym salt (default: random)")) -> None:
    """De-identified export for multi-centre research."""
    from openir.registry.db import init_db
    from openir.registry.export import export_fhir, export_research

    engine = init_db(db)
    s = salt.encode() if salt else None
    path = export_fhir(engine, out, salt=s) if out.suffix.lower() == ".json" else export_research(engine, out, salt=s)
    Console().print(f"[green]written[/green] {path}")


@app.command("add")
def add(record: Path = typer.Argument(..., help="JSON file: a procedure, or {hospitals:[], operators:[], procedures:[]}"),
        db: str | None = URL, actor: str = typer.Option("cli", help="who records (audit log)")) -> None:
    """Record hospitals, operators and procedures from JSON (rule violations are flagged)."""
    from pydantic import ValidationError

    from openir.registry.db import init_db, session_scope
    from openir.registry.schemas import HospitalIn, OperatorIn, ProcedureIn
    from openir.registry.store import add_hospital, add_operator, record_procedure

    try:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read JSON ({exc})", source=record) from exc
    if "uid" in data:
        data = {"procedures": [data]}
    engine = init_db(db)
    console = Console()
    try:
        with session_scope(engine, actor) as s:
            for h in data.get("hospitals", []):
                add_hospital(s, HospitalIn.model_validate(h))
            for o in data.get("operators", []):
                add_operator(s, OperatorIn.model_validate(o))
            for p in data.get("procedures", []):
                res = record_procedure(s, ProcedureIn.model_validate(p))
                console.print(f"recorded {res.uid}" + (f" [yellow]flags:[/yellow] {[f['message'] for f in res.flags]}" if res.flags else ""))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], source=record, field=".".join(str(x) for x in err["loc"])) from exc


@qc_app.command("indicators")
def indicators(db: str | None = URL, by: str = typer.Option("hospital,technique,disease", help="levels, comma separated: "
               "hospital, operator, region, level, technique, disease, all"),
               out: Path | None = typer.Option(None, "--out", "-o", help="CSV to write (default: print a summary)")) -> None:
    """Quality indicators per unit (rates, exact CIs, funnel status, target and alarm with sources).

    Example: openir qc indicators --by technique,disease -o indicators.csv
    """
    from openir.registry.db import init_db
    from openir.registry.indicators import compute_indicators

    engine = init_db(db)
    tab = compute_indicators(engine, by=tuple(b.strip() for b in by.split(",") if b.strip()))
    if out:
        tab.to_csv(out, index=False)
        Console().print(f"[green]written[/green] {out} ({len(tab)} rows)")
        return
    alarms = tab[tab["status"] == "alarm"] if "status" in tab else tab.iloc[:0]
    Console().print(f"{len(tab)} indicator rows over {', '.join(sorted(tab['level_by'].unique()))}; "
                    f"{len(alarms)} outside the 99.8% funnel")


@qc_app.command("report")
def report(out: Path = typer.Option(Path("qc-report.html"), "--out", "-o", help="HTML file to write"),
           db: str | None = URL, csv: Path | None = typer.Option(None, help="also write the indicator table as CSV")) -> None:
    """HTML quality report: funnel plots, hospital ratings with reasons, operator learning curves."""
    from openir.registry import build_qc
    from openir.registry.db import init_db
    from openir.report import render_qc_html as render_html

    engine = init_db(db)
    qc = build_qc(engine)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(qc), encoding="utf-8")
    if csv:
        qc.indicators.to_csv(csv, index=False)
    grades = {g: sum(r.grade == g for r in qc.ratings) for g in "ABC"}
    Console().print(f"[green]QC report[/green] {out} (ratings {grades})")


# DRG and cost (issue 22): the commands live in registry_drg.py
def _register_drg() -> None:
    from . import registry_drg

    app.command("import-costs")(registry_drg.import_costs)
    app.command("seed-costs")(registry_drg.seed_costs)
    app.command("drg")(registry_drg.drg)


_register_drg()
