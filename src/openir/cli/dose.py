"""``openir dose``: import dose reports, run the DICOM receiver, report doses, alerts and DRLs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

app = typer.Typer(help="Radiation dose monitoring: RDSR import, DICOM receiver, alerts, reference levels.",
                  no_args_is_help=True)

DB = typer.Option(None, "--db", help="SQLAlchemy URL (default: the OpenIR database under $OPENIR_HOME)")
ROOT = typer.Option(None, "--root", help="folder for original and quarantined files (default $OPENIR_STORAGE/dose, else $OPENIR_HOME/dose)")


def _store(db: str | None, root: Path | None, alert_log: Path | None = None):
    from openir.dose.alerts import jsonl_hook
    from openir.dose.store import DoseStore

    hooks = [jsonl_hook(alert_log)] if alert_log else []
    return DoseStore(db, root, hooks=hooks)


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="an RDSR file or a folder of them"),
    db: str | None = DB,
    root: Path | None = ROOT,
    alert_log: Path | None = typer.Option(None, help="append alerts as JSON lines to this file"),
) -> None:
    """Import dose reports; bad files are quarantined with the reason, duplicates skipped."""
    from openir.core.errors import InputError

    if not path.exists():
        raise InputError("no such file or folder", source=path)
    store = _store(db, root, alert_log)
    files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
    console = Console()
    counts: dict[str, int] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(files))
        for f in files:
            r = store.import_file(f)
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.status == "quarantined":
                console.print(f"[yellow]quarantined[/yellow] {r.message}", highlight=False)
            for a in r.alerts:
                console.print(f"[bold red]ALERT[/bold red] {a.patient_id}: {a.message}", highlight=False)
            progress.advance(task)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to import")
    if counts.get("quarantined"):
        # the rest is stored; a non-zero exit tells scripts that some input needs a look
        console.print(f"{counts['quarantined']} file(s) quarantined under {store.root / 'quarantine'}", highlight=False)
        raise typer.Exit(code=2)


@app.command()
def listen(
    port: int = typer.Option(11112, help="TCP port"),
    host: str = typer.Option("127.0.0.1", help="address to bind (0.0.0.0 for all interfaces)"),
    ae_title: str = typer.Option("OPENIR_DOSE", help="our AE title"),
    db: str | None = DB,
    root: Path | None = ROOT,
    alert_log: Path | None = typer.Option(None, help="append alerts as JSON lines to this file"),
) -> None:
    """Run a DICOM C-STORE receiver for dose reports until interrupted."""
    import logging

    from openir.dose.receiver import DoseReceiver

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    store = _store(db, root, alert_log)
    rx = DoseReceiver(store, ae_title=ae_title)
    Console(stderr=True).print(f"listening as {ae_title} on {host}:{port} (Ctrl+C to stop)")
    rx.serve_forever(host, port)


@app.command()
def report(
    db: str | None = DB,
    root: Path | None = ROOT,
    out: Path | None = typer.Option(None, "--out", "-o", help="folder for JSON and charts"),
    group: str = typer.Option("facility", help="group whose medians give the DRL: facility or room"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Summarise stored doses: per procedure, alerts, reference levels and room comparison."""
    from openir.dose.reference_levels import compare, reference_levels
    from openir.report import distribution_chart, trend_chart

    store = _store(db, root)
    df = store.summary_frame()
    df = df[df["kind"] == "projection"] if len(df) else df
    levels = reference_levels(df, group=group, level="national" if group == "facility" else "local") if len(df) else []
    rooms = compare(df, levels, by="room") if levels else []
    alerts = store.alerts()
    quarantine = store.quarantined()
    result = {
        "reports": int(len(df)),
        "reference_levels": [lv.model_dump() for lv in levels],
        "rooms": [c.model_dump() for c in rooms],
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "quarantined": quarantine,
    }
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "dose_report.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        if len(df):
            distribution_chart(df, levels, out / "dose_distribution.png")
            trend_chart(df, out / "dose_trend.png")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    console = Console()
    t = Table(title=f"Dose reports ({len(df)} current)")
    for c in ("procedure", "room", "patient", "KAP Gy·cm²", "Ka,r Gy", "fluoro min", "events", "PSD Gy"):
        t.add_column(c)
    for _, r in df.iterrows():
        f = lambda v, fmt="{:.3g}": "-" if v is None or v != v else fmt.format(v)  # noqa: E731
        t.add_row(str(r["procedure"]), str(r["room"]), str(r["patient_id"]), f(r["kap_total_gy_cm2"]),
                  f(r["dose_rp_total_gy"]), f(r["fluoro_time_s"] / 60 if r["fluoro_time_s"] == r["fluoro_time_s"] and r["fluoro_time_s"] is not None else None),
                  str(r["n_events"]), f(r["peak_skin_dose_gy"]))
    console.print(t)
    if levels:
        lt = Table(title="Reference levels (ICRP 135: DRL = P75 of medians, typical = P50)")
        for c in ("procedure", "groups", "procedures", "DRL", "typical"):
            lt.add_column(c)
        for lv in levels:
            lt.add_row(lv.procedure, str(lv.n_groups), str(lv.n_procedures), f"{lv.drl:.3g} {lv.unit}",
                       f"{lv.typical_value:.3g} {lv.unit}")
        console.print(lt)
    for a in alerts:
        console.print(f"[bold red]ALERT[/bold red] {a.scope} {a.patient_id}: {a.message}", highlight=False)
    for q in quarantine:
        console.print(f"[yellow]quarantined[/yellow] {q['name']}: {q['reason']}", highlight=False)


if __name__ == "__main__":
    app()
