"""``openir registry import-costs`` and ``openir registry drg``: cost data and the DRG analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openir.core.errors import InputError

URL = typer.Option(None, "--db", help="database URL (default: OPENIR_DATABASE_URL or SQLite in OPENIR_HOME)")
CONFIG = typer.Option(None, "--config", help="YAML with your region's 'payment:' block (weights, base rate); "
                      "default: the EXAMPLE configuration of drg.yaml")


def import_costs(path: Path = typer.Argument(..., help="CSV or Excel file: one row per cost item, keyed by procedure UID"),
                 db: str | None = URL, actor: str = typer.Option("import", help="who is importing (audit log)"),
                 encoding: str | None = typer.Option(None, help="CSV text encoding (default: detect UTF-8 / BOM / GB18030)"),
                 config: Path | None = CONFIG) -> None:
    """Import cost items (DRG code, stay, consumables with origin, drugs, imaging, bed days); the whole
    file is checked first, nothing is stored if any row is bad; re-importing replaces a procedure's costs.

    Example: openir registry import-costs 费用明细.csv --encoding gb18030
    """
    from openir.registry.costs import import_costs as run
    from openir.registry.db import init_db
    from openir.registry.drg import load_drg_config
    from openir.registry.importer import ImportValidationError

    cfg = load_drg_config(config)
    engine = init_db(db)
    try:
        report = run(engine, path, actor=actor, encoding=encoding, config=cfg)
    except ImportValidationError as exc:
        Console(stderr=True).print(exc.report.text(), highlight=False)
        raise
    Console().print(f"[green]imported[/green] {report.stored}")


def seed_costs(db: str | None = URL, seed_: int = typer.Option(0, "--seed", help="random seed")) -> None:
    """Generate synthetic cost data for every stored procedure (after `openir registry seed`)."""
    import pandas as pd
    from sqlalchemy import select

    from openir.phantom.registry_costs import generate_costs
    from openir.registry.costs import store_cost_dataset
    from openir.registry.db import init_db
    from openir.registry.models import Hospital, Outcome, Procedure

    engine = init_db(db)
    q = (select(Procedure.uid, Hospital.code.label("hospital_code"), Procedure.technique, Outcome.died)
         .join(Hospital, Hospital.id == Procedure.hospital_id).outerjoin(Outcome, Outcome.procedure_id == Procedure.id))
    with engine.connect() as conn:
        procs = pd.read_sql(q, conn)
    if procs.empty:
        raise InputError("no procedures stored; run `openir registry seed` first")
    ds = generate_costs(procs, seed=seed_)
    counts = store_cost_dataset(engine, ds.headers, ds.items)
    Console().print(f"stored {counts}; planted: {json.dumps(ds.truth)}")


def _fmt(v: object, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def drg(db: str | None = URL, group: str | None = typer.Option(None, "--group", "-g", help="one DRG code, e.g. RD15"),
        hospital: str | None = typer.Option(None, "--hospital", help="one hospital code"),
        as_json: bool = typer.Option(False, "--json", help="print the analysis as JSON"),
        csv: Path | None = typer.Option(None, "--csv", help="write the summary table as CSV"),
        funnel: Path | None = typer.Option(None, "--funnel", help="write the cost funnel plot (PNG) of --group "
                                           "(default: the group with most cases)"),
        config: Path | None = CONFIG) -> None:
    """DRG analysis per group and hospital: cases, cost per case, stay, complications, technical
    success, domestic consumables, payment minus cost; cost outliers by funnel.

    Example: openir registry drg --group RD15 --funnel rd15.png
    """
    from openir.registry.db import init_db
    from openir.registry.drg import analyse_drg, load_drg_config

    cfg = load_drg_config(config)
    engine = init_db(db)
    res = analyse_drg(engine, config=cfg, group=group, hospital=hospital)
    if res.summary.empty:
        raise InputError("no cost data" + (f" for group {group!r}" if group else "") +
                         (f" at hospital {hospital!r}" if hospital else "") + "; import it with `openir registry import-costs`")
    if csv:
        res.summary.to_csv(csv, index=False)
    if funnel:
        from openir.report import drg_funnel_png

        g = group or str(res.summary.groupby("drg_code")["cases"].sum().idxmax())
        funnel.parent.mkdir(parents=True, exist_ok=True)
        funnel.write_bytes(drg_funnel_png(res.funnel, g, highlight=hospital))
    if as_json:
        typer.echo(json.dumps(res.to_json(), ensure_ascii=False, default=str, indent=1))
        return
    pay = res.payment
    note = " [yellow](example only: give your region's weights and base rate with --config)[/yellow]" if pay.example else ""
    t = Table(title=f"DRG cost analysis — payment: {pay.region}, base rate {pay.base_rate_cny:,.0f} CNY{note}")
    for c in ("DRG", "hospital", "cases", "cost mean", "cost median", "LOS mean", "complications", "tech. success",
              "domestic (cost)", "domestic (count)", "payment − cost", "funnel"):
        t.add_column(c, justify="left" if c in ("DRG", "hospital", "funnel") else "right")
    status = {(r.drg_code, r.hospital_code): r.status for r in res.funnel.itertuples(index=False)}
    for r in res.summary.itertuples(index=False):
        st = status.get((r.drg_code, r.hospital_code), "")
        colour = {"alarm": "red", "alert": "yellow", "better": "cyan"}.get(st, "")
        t.add_row(r.drg_code, r.hospital_code, str(r.cases), _fmt(r.cost_mean), _fmt(r.cost_median), _fmt(r.los_mean, 1),
                  _fmt(r.complication_rate * 100, 1) + " %", _fmt(r.technical_success_rate * 100, 1) + " %",
                  _fmt(r.domestic_share_cost * 100, 1) + " %", _fmt(r.domestic_share_count * 100, 1) + " %",
                  _fmt(r.margin_mean), f"[{colour}]{st}[/{colour}]" if colour else st)
    console = Console()
    console.print(t)
    for path in (csv, funnel):
        if path:
            console.print(f"[green]written[/green] {path}")
