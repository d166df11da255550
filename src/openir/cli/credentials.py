"""``openir registry credentials``: who is due for what (refresher training, tier volumes, CUSUM
alarms), and ``openir registry credentials import`` of refresher-training records."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openir.core.errors import InputError

app = typer.Typer(help="Operator credentials: cases per technique and tier, CUSUM, volumes, refresher training.",
                  invoke_without_command=True)
URL = typer.Option(None, "--db", help="database URL (default: OPENIR_DATABASE_URL or SQLite in OPENIR_HOME)")


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    from openir.registry.dates import parse_date

    try:
        return parse_date(text)
    except ValueError as exc:
        raise InputError(str(exc), field="--as-of") from None


@app.callback()
def report(ctx: typer.Context, db: str | None = URL,
           hospital: str | None = typer.Option(None, "--hospital", help="one hospital's operators (code)"),
           due: bool = typer.Option(False, "--due", help="only operators due for something"),
           as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
           as_of: str | None = typer.Option(None, "--as-of", help="report date (default today), e.g. 2025-12-31")) -> None:
    """Per operator: primary / assisted cases per tier, RA-CUSUM (alarm, cases to competence), volume
    progress, last refresher training, and what is due.

    Example: openir registry credentials --hospital H001 --due
    """
    if ctx.invoked_subcommand:
        return
    from openir.registry.credentials import credentials_report
    from openir.registry.db import init_db

    rows = credentials_report(init_db(db), hospital=hospital, as_of=_date(as_of), due_only=due)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=1))
        return
    t = Table(title=f"Operator credentials ({len(rows)} operators{', due only' if due else ''})")
    for c in ("operator", "hospital", "credential", "primary by tier", "assisted", "competence", "last refresher", "due"):
        t.add_column(c)
    for r in rows:
        comp = ", ".join(f"{c.technique}:{c.cases_to_competence or '-'}" for c in r.curves)
        t.add_row(r.operator, r.hospital, r.credential,
                  " ".join(f"{k}={v}" for k, v in sorted(r.primary_by_tier.items())),
                  str(sum(r.assisted_by_tier.values())), comp,
                  r.last_training.isoformat() if r.last_training else "none",
                  "; ".join(d.message for d in r.due) or "[green]nothing[/green]")
    Console().print(t)


@app.command("import")
def import_(path: Path = typer.Argument(..., help="CSV/Excel: operator, date, course, hours, provider, certificate_id"),
            db: str | None = URL, encoding: str | None = typer.Option(None, help="file encoding (default: detected)")) -> None:
    """Import refresher-training records (all or nothing; rows already stored are skipped)."""
    from openir.registry.credentials import import_training
    from openir.registry.db import init_db

    res = import_training(init_db(db), path, encoding=encoding)
    Console().print(f"[green]imported[/green] {res['imported']} training records ({res['skipped']} already stored)")
