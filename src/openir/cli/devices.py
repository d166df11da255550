"""`openir devices`: browse the ablation-device catalogue, look up a zone, plot a device's table.

Planners and physicists check a plan against the device table they know; these commands show
exactly which rows OpenIR holds, their evidence (manufacturer chart, clinical, animal, ex vivo),
their sources, and which devices still have no sourced rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openir.plan.devices import EVIDENCE_PREFERENCE, load_catalogue

app = typer.Typer(help="Ablation device catalogue: list, show, zone lookup, growth chart.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

_CATALOGUE_OPT = typer.Option(None, "--catalogue", help="catalogue YAML (default: the packaged one)")


def _mm(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


@app.command("list")
def list_devices(catalogue: Path | None = _CATALOGUE_OPT,
                 as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Every device with its modality and how many sourced zone rows (per evidence) it has."""
    cat = load_catalogue(catalogue)
    rows = []
    for d in cat.devices:
        usable = d.usable_rows()
        by_ev = {str(e or "unspecified"): sum(r.evidence == e for r in usable) for e in d.evidence_kinds}
        rows.append({"id": d.id, "name": d.name, "modality": d.modality, "gauge": d.gauge,
                     "usable_lengths_mm": d.usable_lengths_mm, "sourced_rows": len(usable),
                     "unsourced_rows": len(d.zones) - len(usable), "evidence": by_ev})
    if as_json:
        typer.echo(json.dumps({"catalogue_version": cat.catalogue_version, "devices": rows}, indent=2))
        return
    t = Table(title=f"OpenIR device catalogue {cat.catalogue_version}")
    for col in ("id", "modality", "name", "gauge", "sourced rows", "evidence", "unsourced"):
        t.add_column(col, no_wrap=col in ("id", "gauge", "sourced rows", "unsourced"))
    for r in rows:
        style = None if r["sourced_rows"] else "dim"
        ev = ", ".join(f"{k} {v}" for k, v in r["evidence"].items()) or "-"
        t.add_row(r["id"], r["modality"], r["name"], _mm(r["gauge"]), str(r["sourced_rows"]), ev,
                  str(r["unsourced_rows"]), style=style)
    Console(width=max(Console().width, 140)).print(t)


@app.command("show")
def show(device: str = typer.Argument(..., help="device id (see `openir devices list`)"),
         catalogue: Path | None = _CATALOGUE_OPT,
         all_rows: bool = typer.Option(False, "--all", help="also list unsourced rows (the known gaps)")) -> None:
    """A device's zone rows with evidence, tissue and source."""
    cat = load_catalogue(catalogue)
    d = cat.get(device)
    con = Console(width=max(Console().width, 120))
    con.print(f"[bold]{d.name}[/bold] ({d.id}) - {d.manufacturer}, {d.modality}; gauge {_mm(d.gauge)}, "
              f"usable lengths {', '.join(f'{x:g}' for x in d.usable_lengths_mm) or '-'} mm")
    con.print(f"  device data source: {d.spec_source}")
    t = Table()
    for col in ("#", "setting", "evidence", "tissue", "length", "diam.", "diam.2", "centre", "src"):
        t.add_column(col, no_wrap=col in ("#", "length", "diam.", "diam.2", "centre", "src"))
    sources: list[str] = []
    for i, r in enumerate(d.zones):
        if not r.usable and not all_rows:
            continue
        text = ("unsourced: " + (r.note or "").strip()) if not r.usable else (
            r.source.strip() + ("" if r.verified else " (not verified in the primary document)"))
        if text not in sources:
            sources.append(text)
        t.add_row(str(i), r.label(), str(r.evidence or "-"), r.tissue or "-", _mm(r.length_mm),
                  _mm(r.diameter_mm), _mm(r.diameter2_mm), _mm(r.centre_offset_mm),
                  f"[{sources.index(text) + 1}]", style=None if r.usable else "dim")
    con.print(t)
    con.print("  lengths along the shaft, diameters across it, centre = tip to zone centre (mm)")
    for k, text in enumerate(sources, 1):
        con.print(f"  [{k}] {text}", markup=False, highlight=False)
    kinds = d.evidence_kinds
    if kinds:
        con.print(f"  default table: {kinds[0] or 'unspecified'} (preference {', '.join(str(e) for e in EVIDENCE_PREFERENCE if e)})")
    else:
        con.print("  [red]no sourced rows: this device cannot be used for zone prediction[/red]")


@app.command("zone")
def zone(device: str = typer.Argument(..., help="device id"),
         power_w: float | None = typer.Option(None, "--power", help="W (microwave, RF)"),
         time_s: float | None = typer.Option(None, "--time", help="ablation / freeze time, s"),
         minutes: float | None = typer.Option(None, "--minutes", help="the same in minutes"),
         isotherm_c: float | None = typer.Option(None, "--isotherm", help="cryo isotherm, C"),
         exposure_mm: float | None = typer.Option(None, "--exposure", help="RF/IRE exposed tip, mm"),
         spacing_mm: float | None = typer.Option(None, "--spacing", help="IRE electrode spacing, mm"),
         injected_ml: float | None = typer.Option(None, "--volume", help="ethanol injected, mL"),
         evidence: str | None = typer.Option(None, "--evidence", help="which table (default: preferred)"),
         tissue: str | None = typer.Option(None, "--tissue", help="rows measured in this tissue, e.g. liver"),
         catalogue: Path | None = _CATALOGUE_OPT,
         as_json: bool = typer.Option(False, "--json")) -> None:
    """The predicted zone for one setting (interpolated between sourced rows, never extrapolated)."""
    import math

    from openir.plan.zones import zone_dimensions

    if minutes is not None:
        time_s = minutes * 60.0
    d = load_catalogue(catalogue).get(device)
    dims, used = zone_dimensions(d, power_w=power_w, time_s=time_s, isotherm_c=isotherm_c,
                                 exposure_mm=exposure_mm, spacing_mm=spacing_mm, injected_ml=injected_ml,
                                 evidence=evidence, tissue=tissue)
    vol = math.pi / 6 * dims["length_mm"] * dims["diameter_mm"] * dims["diameter2_mm"] / 1000
    out = {"device": d.id, **{k: (round(v, 2) if v is not None else None) for k, v in dims.items()},
           "ellipsoid_volume_ml": round(vol, 2), "evidence": used[0].evidence,
           "interpolated": len(used) > 1, "rows": [r.label() for r in used],
           "sources": sorted({r.source.strip() for r in used})}
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    con = Console()
    off = dims["tip_to_centre_mm"]
    off_txt = "unknown (no sourced value)" if off is None else f"{off:.1f} mm"
    con.print(f"{d.id}: {dims['length_mm']:.1f} x {dims['diameter_mm']:.1f} x {dims['diameter2_mm']:.1f} mm "
              f"(along x across x across), {vol:.1f} mL; tip to centre {off_txt}")
    con.print(f"  {'interpolated between' if len(used) > 1 else 'row'}: {'; '.join(out['rows'])} "
              f"[{used[0].evidence or 'unspecified'}]")
    for s in out["sources"]:
        con.print(f"  source: {s}")


@app.command("chart")
def chart(device: str = typer.Argument(..., help="device id"),
          out: Path = typer.Option(Path("zone_chart.png"), "--out", "-o", help="PNG to write"),
          catalogue: Path | None = _CATALOGUE_OPT) -> None:
    """Plot a device's sourced rows: zone length and diameter against the main setting, per table."""
    from openir.report.device_chart import device_chart

    d = load_catalogue(catalogue).get(device)
    if not d.usable_rows():
        from openir.core.errors import InputError

        raise InputError(f"device {d.id!r} has no sourced zone rows to plot", field="device")
    device_chart(d, out)
    Console().print(f"written {out}")
