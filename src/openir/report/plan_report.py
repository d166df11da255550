"""One-page HTML plan report: summary tables, slices through each tumour with target, uncertainty
band and planned zones, a 3D view of probes and zones, and a coverage plot (self-contained HTML)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from openir.core import LabelMap, Volume
from openir.plan import Plan, zone_mesh

from .figures import figure_png
from .html import page, table
from .views import Needle, Outline, ViewSpec, views_figure


def _png(fig) -> str:
    fig.set_layout_engine("tight")
    return base64.b64encode(figure_png(fig, dpi=90)).decode()


def plan_view_spec(plan: Plan, labels: LabelMap, tumour: str, ct: Volume | None = None,
                   target: np.ndarray | None = None) -> ViewSpec:
    """The plan report's views of one tumour: zone (filled, bottom), physics zone, target, tumour
    (top), heat-sink vessels, the tumour's needles with entries; centred on the tumour."""
    g = labels.grid
    tm = labels.mask(tumour)
    c = g.index_to_world(np.argwhere(tm).mean(axis=0)[::-1])
    phys = plan.physics_zone_mask(g, tumour=tumour) if plan.physics and plan.physics.zones else None
    sinks = sorted({v for z in (plan.physics.zones if plan.physics else []) if z.tumour == tumour for v in z.vessels})
    outlines = [Outline("table zone (catalogue)", plan.zone_mask(g, tumour=tumour), "lime", fill=True)]
    if phys is not None:
        crit = plan.physics.criterion.upper() if plan.physics else ""
        outlines.append(Outline(f"physics lethal zone ({crit})", phys, "cyan", style="dashed"))
    if sinks:
        outlines.append(Outline("heat-sink vessel (" + ", ".join(sinks) + ")", labels.mask(*sinks), "magenta", width=1.0))
    if target is not None:
        outlines.append(Outline("target (tumour + margin)", target, "orange", width=1.2))
    outlines.append(Outline("tumour", tm, "red", width=1.8))
    needles = [Needle(p.entry_lps, p.tip_lps, f"P{p.order} {p.device}", "yellow") for p in plan.probes
               if p.tumour == tumour]
    return ViewSpec(labels=labels, centre_lps=c, ct=ct if ct is not None and ct.shape == labels.shape else None,
                    outlines=outlines, needles=needles,
                    structures=[n for n in labels.names if not n.lower().startswith(("skin", "fat", "muscle"))
                                and n != tumour])


def _slices(ct: Volume | None, labels: LabelMap, plan: Plan, tumour: str, target: np.ndarray | None) -> str:
    return _png(views_figure(plan_view_spec(plan, labels, tumour, ct, target), title=f"{tumour}"))


def _view3d(plan: Plan) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    for z in plan.zones:
        v, f = zone_mesh(z, 10, 20)
        ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=f, alpha=0.25, color="lime", linewidth=0)
    for p in plan.probes:
        e, t = np.asarray(p.entry_lps), np.asarray(p.tip_lps)
        ax.plot(*zip(e, t, strict=True), lw=1.5)
        ax.text(*t, f"P{p.order}", fontsize=7)
    ax.set_xlabel("L (mm)")
    ax.set_ylabel("P (mm)")
    ax.set_zlabel("S (mm)")
    ax.set_title("probes and predicted zones (3D)", fontsize=9)
    return _png(fig)


def _coverage_plot(plan: Plan) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    names = [t.tumour for t in plan.targets]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [t.tumour_coverage_pct for t in plan.targets], 0.4, label="tumour")
    ax.bar(x + 0.2, [t.target_coverage_pct for t in plan.targets], 0.4, label="tumour + margin")
    ax.axhline(99.0, color="k", ls="--", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_ylim(min(90.0, min([t.target_coverage_pct for t in plan.targets], default=90) - 5), 100.5)
    ax.set_ylabel("predicted coverage (%)")
    ax.legend(fontsize=8)
    return _png(fig)


def plan_physics_table(plan: Plan) -> str:
    """Table zone vs physics lethal zone, per probe and per tumour (zone_model 'both' or 'physics')."""
    ph = plan.physics
    assert ph is not None
    crit = f"{ph.criterion.upper()} >= {ph.zones[0].threshold:g}" if ph.zones else ph.criterion
    rows = [(z.probe_order, z.tumour, z.device, f"{z.power_w:g} W / {z.time_s:g} s",
             f"{z.table_length_mm:.0f} x {z.table_width_mm:.0f}" if z.table_length_mm is not None else "-",
             f"{z.length_mm:.1f} x {z.width_mm:.1f}",
             f"{z.table_volume_ml:.1f}" if z.table_volume_ml is not None else "-", f"{z.volume_ml:.1f}",
             f"{z.homogeneous_volume_ml:.1f}", f"{z.volume_shrinkage_pct:.0f}",
             f"{min(z.radii_mm, default=0):.1f} / {max(z.radii_mm, default=0):.1f}", ", ".join(z.vessels) or "-")
            for z in ph.zones]
    out = [f"<h3>Table zone vs physics zone (zone model: {html.escape(ph.zone_model)}; {html.escape(crit)}, "
           f"{ph.spacing_mm:g} mm simulation)</h3>",
           table(["probe", "tumour", "device", "setting", "table L x W mm", "physics L x W mm", "table mL",
                  "physics mL", "physics, homogeneous liver mL", "shrinkage %", "radius min / max mm",
                  "heat-sink vessels"], rows)]
    out.append(table(["tumour", "tumour cov. % (table)", "tumour cov. % (physics)", "target cov. % (table)",
                      "target cov. % (physics)", "min margin mm (table)", "min margin mm (physics)",
                      "full coverage (physics)"],
                     [(o.tumour, f"{o.table_tumour_coverage_pct:.1f}", f"{o.tumour_coverage_pct:.1f}",
                       f"{o.table_target_coverage_pct:.1f}", f"{o.target_coverage_pct:.1f}",
                       f"{o.table_min_margin_mm:.1f}", f"{o.min_margin_mm:.1f}", "yes" if o.full_coverage else "NO")
                      for o in ph.targets]))
    notes = list(ph.notes) + sorted({n for z in ph.zones for n in z.notes if "heat sink" in n or "shifted" in n
                                     or "edge" in n or "nearest calibrated" in n})
    out.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    return "".join(out)


_IMG = '<img alt="{a}" style="max-width:100%" src="data:image/png;base64,{b}">'


def plan_figures(plan: Plan, labels: LabelMap, ct: Volume | None = None,
                 targets: dict[str, np.ndarray] | None = None) -> list[str]:
    """The report's pictures as <img> tags: slices per tumour, the 3D view and the coverage plot."""
    figs = []
    for t in plan.targets:
        tg = targets.get(t.tumour) if targets else None
        figs.append(_IMG.format(a=f"slices {t.tumour}", b=_slices(ct, labels, plan, t.tumour, tg)))
    if plan.zones:
        figs.append(_IMG.format(a="3D view", b=_view3d(plan)))
    figs.append(_IMG.format(a="coverage", b=_coverage_plot(plan)))
    return figs


def _probe_time(p) -> str:
    """Activation time of a probe: a cryo freeze-thaw-freeze schedule, else its time setting."""
    sched = getattr(p, "schedule", None)
    if sched:
        return "-".join(f"{st.duration_s / 60:g}" for st in sched) + " min (freeze-thaw-freeze)"
    return f"{p.time_s / 60:g} min" if p.time_s else "-"


def plan_report_html(plan: Plan, labels: LabelMap, ct: Volume | None = None,
                     targets: dict[str, np.ndarray] | None = None,
                     extra_sections: list[tuple[str, str]] | None = None) -> str:
    """The one-page plan report as an HTML string (images embedded); ``extra_sections`` (title, HTML
    fragment) are appended after the plan, e.g. the pre-procedure SOP check the CLI ran."""
    rows = [(t.tumour, t.modality, t.n_probes, t.n_tracks, f"{t.tumour_coverage_pct:.1f}",
             f"{t.target_coverage_pct:.1f}", f"{t.min_margin_mm:.1f}", f"{t.ablated_healthy_ml:.1f}",
             "yes" if t.full_coverage else "NO", ", ".join(f"{k} {v:.1f} mL" for k, v in t.structures_touched_ml.items()))
            for t in plan.targets]
    parts = [table(["tumour", "modality", "probes", "tracks", "tumour cov. %", "target cov. %", "min margin mm",
                     "healthy ablated mL", "full coverage", "structures in zone"], rows)]
    parts.append(table(["#", "group", "track", "tumour", "device", "setting", "time", "entry LPS", "tip LPS", "path mm",
                        "tip beyond zone centre mm"],
                        [(p.order, p.group, p.track, p.tumour, p.device, p.setting, _probe_time(p),
                          ", ".join(f"{v:.0f}" for v in p.entry_lps), ", ".join(f"{v:.0f}" for v in p.tip_lps),
                          f"{p.path_length_mm:.0f}",
                          f"{p.tip_offset_mm:g}" + ("" if p.tip_offset_sourced else " (UNSOURCED)"))
                         for p in plan.probes]))
    if plan.physics is not None:
        parts.append(plan_physics_table(plan))
    if plan.warnings:
        parts.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in plan.warnings) + "</ul>")
    for t in plan.targets:
        rk = t.recommendation
        parts.append(f"<h3>{html.escape(t.tumour)}: modality ranking</h3>" + table(
            ["rank", "modality", "score", "plannable", "reasons"],
            [(m.rank, m.modality, f"{m.score:g}", "yes" if m.plannable else "no", " | ".join(m.reasons))
             for m in rk.ranking]))
        if t.modality_options:
            parts.append(f"<h3>{html.escape(t.tumour)}: modalities planned and weighed</h3>" + table(
                ["modality", "chosen", "score", "target cov. %", "probes", "configuration", "evidence", "reasons"],
                [(m.modality, "yes" if m.chosen else "", f"{m.score:g}" if m.planned else "-",
                  f"{m.target_coverage_pct:.1f}" if m.planned else "-", m.n_probes if m.planned else "-",
                  m.configuration, m.evidence, " | ".join(m.reasons)) for m in t.modality_options]))
        ev = "".join(f"; with the {html.escape(e.evidence)} table the same probes would cover "
                     + (f"{e.target_coverage_pct:.1f}% of tumour + margin (tumour {e.tumour_coverage_pct:.1f}%)"
                        if e.target_coverage_pct is not None else html.escape(e.note))
                     for e in t.evidence_comparison)
        parts.append(f"<p>Configuration: {html.escape(t.configuration)}. Zone evidence used: "
                     f"<b>{html.escape(t.evidence_used or '-')}</b>{ev}.</p>")
        offs = sorted({(p.device, p.tip_offset_mm, p.tip_offset_source) for p in plan.probes
                       if p.tumour == t.tumour and p.tip_offset_sourced})
        if offs:
            parts.append("<p>Tip beyond the zone centre: " + "; ".join(
                f"{html.escape(d)} {o:g} mm [{html.escape(src[:160])}]" for d, o, src in offs) + ".</p>")
        unsourced = sorted({f"{p.device} ({p.setting})" for p in plan.probes
                            if p.tumour == t.tumour and not p.tip_offset_sourced})
        if unsourced:
            parts.append("<p><b>Warning:</b> tip-to-zone-centre offset unsourced for "
                         f"{html.escape(', '.join(unsourced))}: check the device IFU before use.</p>")
        if t.limits:
            parts.append("<details><summary>Configuration limits applied</summary><ul>"
                         + "".join(f"<li>{html.escape(x)}</li>" for x in t.limits) + "</ul></details>")
        if t.alternatives:
            parts.append("<p>Not covered within the limits; alternatives to discuss:</p><ul>"
                         + "".join(f"<li>{html.escape(x)}</li>" for x in t.alternatives) + "</ul>")
        parts.append(f"<p>Target: tumour + {t.target.margin_mm:g} mm ({html.escape(t.target.margin_source[:120])}); "
                     f"uncertainty band {t.target.uncertainty_mm:g} mm shown separately "
                     f"({t.target.uncertainty_band_ml:.1f} mL). Excluded: "
                     f"{html.escape(str(t.target.excluded_ml) or '-')}. Blocked: {html.escape(str(t.blocked_ml))}.</p>")
        if t.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in t.notes) + "</ul>")
    parts.extend(plan_figures(plan, labels, ct, targets))
    pv = plan.provenance
    parts.append(f"<p style='font-size:80%'>Catalogue {pv.catalogue_version}, rules {pv.rules_version}, margins "
                 f"{pv.margins_version}, trajectory policy {pv.policy_version}, OpenIR {pv.openir_version}, "
                 f"{pv.created}. Zone sizes are the catalogue's published values"
                 f"{' (physics zones: bioheat simulation, see the table above)' if plan.physics else ''}; cryo and IRE arrays "
                 "use the physics model's zone of the whole array; synergy between heating antennas is not "
                 "modelled (union = conservative). Not for clinical use without review.</p>")
    return page("Ablation plan", f"{plan.case.case_id} · {plan.case.grid}", [("Plan", "".join(parts)), *(extra_sections or [])],
                footer="OpenIR · synthetic or research use; not for clinical use without review")


def write_plan_report(path: str | Path, plan: Plan, labels: LabelMap, ct: Volume | None = None,
                      targets: dict[str, np.ndarray] | None = None,
                      extra_sections: list[tuple[str, str]] | None = None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(plan_report_html(plan, labels, ct, targets, extra_sections), encoding="utf-8")
    return p
