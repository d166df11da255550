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


def _store(db: str | None, root: Path | None, alert_log: Path | None = None, qa_rules: Path | None = None):
    from openir.dose.alerts import jsonl_hook
    from openir.dose.qa import load_qa_rules
    from openir.dose.store import DoseStore

    hooks = [jsonl_hook(alert_log)] if alert_log else []
    return DoseStore(db, root, hooks=hooks, qa_rules=load_qa_rules(qa_rules) if qa_rules else None)


def _skippable(f: Path) -> tuple[str, ...]:
    """What a file met in a folder may be skipped for: never 'not DICOM' when its name says DICOM."""
    if f.suffix.lower() in (".dcm", ".dicom"):
        return ("not_dose_report",)
    return ("not_dicom", "not_dose_report")


QA_RULES = typer.Option(None, "--qa-rules", help="YAML of QA/phantom patterns (default: the packaged rules)")


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="an RDSR file or a folder of them"),
    db: str | None = DB,
    root: Path | None = ROOT,
    alert_log: Path | None = typer.Option(None, help="append alerts as JSON lines to this file"),
    qa_rules: Path | None = QA_RULES,
) -> None:
    """Import dose reports; bad files are quarantined with the reason, duplicates skipped.

    In a folder, files that are not DICOM (a LICENSE, a README) or DICOM that is not a dose report
    (images) are listed and skipped; a file named .dcm that is not DICOM is damaged and quarantined.
    Exit 2 when a file was quarantined (the rest is stored).

    Example: openir dose import /data/rdsr --db sqlite:///dose.db
    """
    from openir.core.errors import InputError

    if not path.exists():
        raise InputError("no such file or folder", source=path)
    store = _store(db, root, alert_log, qa_rules)
    import gc

    gc.freeze()  # the libraries loaded so far are never garbage: keep collections during the import short
    folder = path.is_dir()
    files = sorted(q for q in path.rglob("*") if q.is_file()) if folder else [path]
    console = Console()
    counts: dict[str, int] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(files))
        for f in files:
            r = store.import_file(f, skip=_skippable(f) if folder else ())
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.status == "quarantined":
                console.print(f"[yellow]quarantined[/yellow] {r.message}", highlight=False)
            elif r.status == "skipped":
                why = "not DICOM" if "(not_dicom)" in r.message else "not a dose report"
                console.print(f"[dim]skipped[/dim] {f} ({why})", highlight=False, soft_wrap=True)
            for a in r.alerts:
                console.print(f"[bold red]ALERT[/bold red] {a.patient_id}: {a.message}", highlight=False)
            progress.advance(task)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to import")
    if counts.get("quarantined"):
        # the rest is stored; a non-zero exit tells scripts that some input needs a look
        console.print(f"{counts['quarantined']} file(s) quarantined under {store.root / 'quarantine'}", highlight=False)
        raise typer.Exit(code=2)


@app.command()
def qa(
    sop_instance_uid: str = typer.Argument(..., help="the report's SOP Instance UID"),
    exclude: bool = typer.Option(True, "--exclude/--include",
                                 help="--exclude: a QA/phantom study, kept out of reference levels; --include: a patient"),
    reason: str = typer.Option("set by hand", help="why (kept with the report)"),
    db: str | None = DB,
    root: Path | None = ROOT,
) -> None:
    """Override the QA/phantom rule for one stored report.

    Example: openir dose qa 1.2.826.0.1.3680043.8.498.1 --exclude --reason "monthly phantom"
    """
    from openir.core.errors import InputError

    store = _store(db, root)
    if not store.mark_qa(sop_instance_uid, exclude, reason):
        raise InputError("no stored dose report with this SOP Instance UID", field=sop_instance_uid)
    Console().print(f"{sop_instance_uid}: {'QA/phantom, excluded from' if exclude else 'patient, included in'} "
                    "reference levels", highlight=False)


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


def _fmt(v, scale: float = 1.0) -> str:
    """A number for a table cell: 4 significant digits, never 'nan'."""
    if v is None or v != v:
        return "-"
    return f"{float(v) * scale:.4g}"


def _name(v) -> str:
    return "(not named)" if v is None or v != v or not str(v).strip() else str(v)


@app.command()
def report(
    db: str | None = DB,
    root: Path | None = ROOT,
    out: Path | None = typer.Option(None, "--out", "-o", help="folder for JSON, CSV and charts"),
    group: str = typer.Option("facility", help="group whose medians give the DRL: facility or room"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
    csv: Path | None = typer.Option(None, "--csv", help="write every current report, full precision, to this CSV"),
) -> None:
    """Summarise stored doses: X-ray and CT reports, alerts, reference levels and room comparison.

    Fluoroscopy levels use KAP, CT levels CTDIvol and DLP (ICRP 135); QA/phantom studies are
    listed but left out of the levels. Tables fit an 80-column terminal; --csv has every digit.

    Example: openir dose report --db sqlite:///dose.db --csv doses.csv
    """
    from openir.core.errors import InputError
    from openir.dose.reference_levels import CT_METRICS, compare, patient_rows, reference_levels
    from openir.report import distribution_chart, trend_chart

    if group not in ("facility", "room"):
        raise InputError("--group must be facility or room", field="group")
    store = _store(db, root)
    df = store.summary_frame()
    if len(df):
        df["procedure"] = df["procedure"].map(_name)
    xr = df[df["kind"] == "projection"] if len(df) else df
    ct = df[df["kind"] == "ct"] if len(df) else df
    level = "national" if group == "facility" else "local"
    levels = []
    if len(xr):
        levels += reference_levels(xr, "kap_total_gy_cm2", group=group, level=level)
    for m in CT_METRICS:
        if len(ct):
            levels += reference_levels(ct, m, group=group, level=level)
    rooms = []
    for m in sorted({lv.metric for lv in levels}):
        frame = ct if m in CT_METRICS else xr
        rooms += compare(frame, [lv for lv in levels if lv.metric == m], by="room")
    alerts = store.alerts()
    quarantine = store.quarantined()
    result = {
        "reports": int(len(df)),
        "projection_reports": int(len(xr)),
        "ct_reports": int(len(ct)),
        "qa_reports": int(df["qa_reason"].notna().sum()) if len(df) else 0,
        "reference_levels": [lv.model_dump() for lv in levels],
        "rooms": [c.model_dump() for c in rooms],
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "quarantined": quarantine,
    }
    if csv:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False, float_format="%.10g")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "dose_report.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        if len(xr):
            distribution_chart(patient_rows(xr), [lv for lv in levels if lv.metric == "kap_total_gy_cm2"],
                               out / "dose_distribution.png")
            trend_chart(patient_rows(xr), out / "dose_trend.png")
        if len(ct):
            distribution_chart(patient_rows(ct), [lv for lv in levels if lv.metric == "dlp_total_mgy_cm"],
                               out / "dose_distribution_ct_dlp.png", metric="dlp_total_mgy_cm")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    _print_tables(Console(), xr, ct, levels, alerts, quarantine)


def _table(title: str, columns: list[tuple[str, bool]]) -> Table:
    """A table whose number columns never wrap or truncate; text columns fold onto more lines."""
    t = Table(title=title, title_justify="left", pad_edge=False, collapse_padding=True)
    for name, numeric in columns:
        if numeric:
            t.add_column(name, justify="right", no_wrap=True)
        else:
            t.add_column(name, overflow="fold")
    return t


def _print_tables(console: Console, xr, ct, levels, alerts, quarantine) -> None:
    if len(xr):
        t = _table(f"X-ray dose reports ({len(xr)} current)",
                   [("procedure", False), ("room", False), ("KAP\nGy·cm²", True), ("Ka,r\nGy", True),
                    ("fluoro\nmin", True), ("PSD\nGy", True), ("QA", False)])
        for _, r in xr.iterrows():
            t.add_row(str(r["procedure"]), _name(r["room"]), _fmt(r["kap_total_gy_cm2"]), _fmt(r["dose_rp_total_gy"]),
                      _fmt(r["fluoro_time_s"], 1 / 60), _fmt(r["peak_skin_dose_gy"]), "QA" if r["qa_reason"] else "")
        console.print(t)
    if len(ct):
        t = _table(f"CT dose reports ({len(ct)} current)",
                   [("procedure", False), ("room", False), ("CTDIvol\nmGy", True), ("DLP\nmGy·cm", True),
                    ("acq.", True), ("QA", False)])
        for _, r in ct.iterrows():
            t.add_row(str(r["procedure"]), _name(r["room"]), _fmt(r["ctdivol_mgy"]), _fmt(r["dlp_total_mgy_cm"]),
                      str(int(r["n_events"])), "QA" if r["qa_reason"] else "")
        console.print(t)
    if not len(xr) and not len(ct):
        console.print("no dose reports stored")
    if levels:
        lt = _table("Reference levels (ICRP 135: DRL = P75 of group medians, typical = P50)",
                    [("procedure", False), ("metric", False), ("DRL", True), ("typical", True), ("unit", False),
                     ("groups", True), ("n", True)])
        short = {"kap_total_gy_cm2": "KAP", "ctdivol_mgy": "CTDIvol", "dlp_total_mgy_cm": "DLP"}
        for lv in levels:
            lt.add_row(lv.procedure + (" *" if lv.provisional else ""), short.get(lv.metric, lv.metric), _fmt(lv.drl),
                       _fmt(lv.typical_value), lv.unit, str(lv.n_groups), str(lv.n_procedures))
        console.print(lt)
        for lv in levels:
            if lv.warning:
                console.print(f"[yellow]warning[/yellow] {lv.procedure} ({lv.metric}): {lv.warning}"
                              + (" (marked *)" if lv.provisional else ""), highlight=False)
    for a in alerts:
        console.print(f"[bold red]ALERT[/bold red] {a.scope} {a.patient_id}: {a.message}", highlight=False)
    for q in quarantine:
        console.print(f"[yellow]quarantined[/yellow] {q['name']}: {q['reason']}", highlight=False)


if __name__ == "__main__":
    app()
