"""``openir sop``: show a technique's SOP and check a patient's pre-procedure values against it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Standard operating procedures: show a technique's SOP, check a patient's values against it.",
                  no_args_is_help=True)

LANG = typer.Option("en", "--lang", help="en or zh-CN")


def _zh(lang: str) -> bool:
    if lang not in ("en", "zh-CN"):
        from openir.core.errors import InputError

        raise InputError(f"unknown language {lang!r}; en or zh-CN", field="--lang")
    return lang == "zh-CN"


def print_deviations(console: Console, check, lang: str = "en") -> None:  # noqa: ANN001 - an openir.sop.SOPCheck
    """Each deviation on its own line with its source (``sop check`` and ``plan --patient-values``)."""
    zh = lang == "zh-CN"
    console.print(f"[bold]{'SOP 核查' if zh else 'SOP check'} {check.technique}[/bold] (v{check.sop_version})")
    for d in check.deviations:
        style = "red" if d.severity == "block" else "yellow"
        label = {"block": "阻断", "warn": "警示"}[d.severity] if zh else d.severity.upper()
        console.print(f"[{style}]{label:6}[/{style}] {d.message(lang)}")
        console.print(f"       [dim]{'来源' if zh else 'source'}: {d.source}[/dim]")


def summary_line(check, lang: str = "en") -> str:  # noqa: ANN001
    if not check.deviations:
        return "符合SOP：无偏离" if lang == "zh-CN" else "within the SOP: no deviation"
    if lang == "zh-CN":
        return f"{check.n_block} 项阻断级、{check.n_warn} 项警示级偏离" + ("（须记录理由方可继续）" if check.blocked else "")
    return f"{check.n_block} block, {check.n_warn} warning deviation(s)" + (
        " (a recorded override reason is needed to proceed)" if check.blocked else "")


@app.command("check")
def check(
    technique: str = typer.Argument(..., help="technique code of the catalogue, e.g. liver_mwa"),
    values: Path = typer.Option(..., "--values", help="patient values as YAML or JSON (inr, platelets, egfr, ...)"),
    as_json: bool = typer.Option(False, "--json", help="print the check as JSON"),
    out: Path | None = typer.Option(None, "--out", "-o", help="also write the check as JSON to this file"),
    lang: str = LANG,
) -> None:
    """Check a patient's pre-procedure values against the technique's SOP; every deviation with its source.

    Exit 0 when there is no block-level deviation, 1 when there is (the procedure needs a recorded
    override reason), 2 for bad input.

    Example: openir sop check liver_mwa --values labs.yaml
    """
    from openir.sop import check_patient, read_values

    _zh(lang)
    result = check_patient(technique, read_values(values))
    text = result.model_dump_json(indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    if as_json:
        print(text)
    else:
        console = Console()
        print_deviations(console, result, lang)
        console.print(summary_line(result, lang))
    raise typer.Exit(1 if result.blocked else 0)


@app.command("show")
def show(
    technique: str = typer.Argument(..., help="technique code of the catalogue, e.g. tace"),
    lang: str = LANG,
    as_json: bool = typer.Option(False, "--json", help="print the SOP as JSON"),
) -> None:
    """Show a technique's SOP: bleeding-risk class, checks that apply, indications, contraindications,
    consent, steps, observation and complications, each with its source.

    Example: openir sop show liver_mwa --lang zh-CN
    """
    from openir.sop import load_checks, load_sop

    zh = _zh(lang)
    sop = load_sop(technique)
    if as_json:
        print(json.dumps(sop.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
        return
    console = Console()
    name = sop.name["zh"] if zh else sop.name["en"]
    console.print(f"[bold]{name}[/bold] ({sop.technique}, v{sop.version}, {sop.status})")
    risk = {"low": "低", "high": "高"}[sop.bleeding_risk.class_] if zh else sop.bleeding_risk.class_
    console.print(("出血风险分级：" if zh else "bleeding-risk class: ") + risk + f"  [dim]{sop.bleeding_risk.source}[/dim]")
    t = Table(title="术前核查" if zh else "pre-procedure checks")
    for h in (("项目", "阻断", "警示", "缺失", "来源") if zh else ("check", "block", "warn", "if missing", "source")):
        t.add_column(h, overflow="fold")
    from openir.sop.check import _fmt, applies, technique_context
    from openir.sop.models import PatientValues

    ctx = technique_context(sop, PatientValues())
    variants = [ctx, {**ctx, "access_site": "radial"}] + (
        [{**ctx, "contrast": "iodinated"}] if sop.contrast.agent == "optional" else [])
    for r in load_checks().checks:
        if not any(applies(r, v) for v in variants):
            continue
        unit = f" {r.unit}" if r.unit not in ("", "1") else ""
        t.add_row(r.zh if zh else r.en, _fmt(r.block) + unit if r.block else "", _fmt(r.warn) + unit if r.warn else "",
                  r.missing or "", r.source)
    console.print(t)
    sections = (("indications", "适应证"), ("contraindications", "禁忌证"), ("consent", "知情同意要点"),
                ("steps", "关键步骤"), ("observation", "术后观察"), ("complications", "需关注的并发症"))
    for key, title_zh in sections:
        console.print(f"\n[bold]{title_zh if zh else key}[/bold]")
        for item in getattr(sop, key):
            code = getattr(item, "code", None) or (f"{item.field} = {item.eq}" if getattr(item, "field", None) else "")
            label = item.zh if zh else item.en
            grading = f" ({item.grading})" if getattr(item, "grading", None) else ""
            console.print(f"  • {code + ' ' if code else ''}{label}{grading}  [dim]{item.source}[/dim]")
