"""Demo stage: MR thermometry monitoring of a synthetic ablation (physics-heated, known truth).

With a plan from the plan stage, the demo patient is imaged on a few MR-like slices through the
planned zones of the first tumour planned with a thermal modality (microwave, RF, laser), heated
there, and monitored with the plan's target (tumour + margin) and organs at risk, as
`openir thermo watch --plan` does. A plan with no thermal tumour (cryo, IRE) is not monitored by
MR thermometry: the stage says how those are followed instead (the physics stage shows them).
Without a plan (``--stages monitor``) a small built-in synthetic patient is heated instead. The
MR phase images that heating implies (noise, field drift, breathing) are processed frame by frame
as during a procedure. The page shows the final temperature/dose view, coverage over time, the
event log (alerts, time to stop) and how close the measured temperature and lethal zone are to the truth.
"""

from __future__ import annotations

import base64
import html
import json
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from .runner import DemoContext

THERMAL = ("microwave", "radiofrequency", "laser")  # what PRF thermometry monitors
POWER_W = 45.0  # absorbed power of the synthetic heating (illustrative: sized to cover a ~4 cm target in 6 min)
SOURCE_SIGMA_MM = 12.0  # width of each Gaussian heat source (illustrative)


def _mr_grid(centre_lps, *, n_inplane: int, inplane_mm: float, n_slices: int, slice_mm: float):
    """An axial MR slab centred on ``centre_lps`` (same patient frame as the CT)."""
    from openir.core.volume import Grid, make_affine

    c = np.asarray(centre_lps, float)
    sp = (inplane_mm, inplane_mm, slice_mm)
    origin = c - np.array([(n_inplane - 1) / 2 * inplane_mm, (n_inplane - 1) / 2 * inplane_mm,
                           (n_slices - 1) / 2 * slice_mm])
    return Grid((n_slices, n_inplane, n_inplane), make_affine(sp, tuple(origin)))


def _monitor_and_score(ctx: DemoContext, s, structures, points: dict) -> tuple:
    """Run the monitoring session over the synthetic series and compare it with the true temperatures.

    Returns the session, the temperature RMSE in the heated region (> 40 °C), the number of lethal-zone
    voxels more than one voxel from the true zone, and the median processing time per frame (ms).
    """
    from openir.monitor import MRFrame, run_monitoring
    from openir.physics import cem43
    from openir.report.monitor_view import write_live_view

    frames = (MRFrame(s.magnitude[f], s.phase[f], s.grid, s.te_ms, s.b0_t, float(s.times_s[f]), f)
              for f in range(len(s.times_s)))
    sq, n = [0.0], [0]

    def score(res) -> None:
        i = res.summary.frame
        hot = (s.true_temperature_c[i] > 40.0) & res.valid
        sq[0] += float(np.sum((res.temperature_c[hot] - s.true_temperature_c[i][hot]) ** 2))
        n[0] += int(hot.sum())

    sess = run_monitoring(frames, n_baselines=s.n_baselines, out=ctx.out / "monitor", structures=structures,
                          live=write_live_view,
                          live_every=0, on_frame=score, points=points)
    rmse = (sq[0] / max(n[0], 1)) ** 0.5
    hist = np.concatenate([np.full((1, *s.grid.shape), 37.0), s.true_temperature_c])
    true_lethal = cem43(hist, s.meta["frame_period_s"]) >= 240.0
    est = sess.lethal
    outside = int((est & ~ndimage.binary_dilation(true_lethal)).sum() + (true_lethal & ~ndimage.binary_dilation(est)).sum())
    ms = float(np.median([x.processing_ms for x in sess.summaries]))
    return sess, rmse, outside, ms


def _run_planned(ctx: DemoContext, patient, plan) -> None:
    from openir.core.resample import resample
    from openir.monitor.plan_input import structures_from_ablation_plan
    from openir.monitor.synthetic_series import HeatingSeriesSpec, make_heating_series
    from openir.plan import body_from_ct

    pf = plan
    thermal = [t for t in pf.targets if t.modality in THERMAL and any(p.tumour == t.tumour for p in pf.probes)]
    if not thermal:
        _not_thermal(ctx, pf)
        return
    tumour = thermal[0].tumour
    probes = sorted((p for p in pf.probes if p.tumour == tumour), key=lambda p: p.order)
    probe = probes[0]
    # slab through the tumour's zones (the first probe's zone is one of them), 8 slices of 5 mm
    sources = [p.zone_centre_lps or p.tip_lps for p in probes]
    centre = np.mean(np.asarray(sources, float), axis=0)
    grid = _mr_grid(centre, n_inplane=48, inplane_mm=3.0, n_slices=8, slice_mm=5.0)
    anatomy = resample(patient.labels, grid)  # the "MR" sees the same anatomy: identity registration
    # every zone of this tumour heats at once (a probe cluster; sequential zones compressed in time)
    spec = HeatingSeriesSpec(seed=ctx.seed, frame_period_s=3.0, heat_s=360.0, cool_s=30.0, power_w=POWER_W,
                             source_sigma_mm=SOURCE_SIGMA_MM)
    s = make_heating_series(spec, anatomy=anatomy, source_lps=sources)
    ps = structures_from_ablation_plan(pf, patient.labels, grid, tumours=[tumour],
                                       body_mask=body_from_ct(patient.ct.array, patient.labels.array))
    out = ctx.out / "monitor"
    points = dict(list(ps.points.items())[:4])  # a readable plot
    sess, rmse, outside, ms = _monitor_and_score(ctx, s, ps.structures, points)
    stop = next((e for e in sess.events if e.kind == "target_covered"), None)
    alerts = [e for e in sess.events if e.kind == "limit_exceeded"]
    times = [x.time_s for x in sess.summaries]
    cov = [x.target_coverage for x in sess.summaries]
    ctx.results["monitor"] = {"rmse_c": rmse, "lethal_voxels_beyond_1_voxel": outside, "events": sess.events,
                              "median_ms_per_frame": ms, "tumour": tumour,
                              "time_to_stop_s": stop.time_s if stop else None,
                              "final_coverage": cov[-1] if cov else 0.0, "alerts": len(alerts),
                              "structures": [i.model_dump() for i in ps.info]}
    (out / "structures.json").write_text(json.dumps({"plan": "plan/plan.json", "structures": ctx.results["monitor"]
                                                     ["structures"], "notes": ps.notes}, indent=1))
    png = (out / "live.png").read_bytes()
    rows = "".join(f"<tr><td>{e.time_s:.0f}</td><td>{html.escape(e.kind)}</td><td>{html.escape(e.message)}</td></tr>"
                   for e in sess.events)
    srows = "".join(f"<tr><td>{html.escape(i.role)}</td><td>{html.escape(i.name)}</td><td>{i.voxels}</td>"
                    f"<td>{_limit_text(i)}</td><td>{html.escape(i.note)}</td></tr>" for i in ps.info)
    notes = "".join(f"<li>{html.escape(x)}</li>" for x in ps.notes)
    g = s.grid.describe()
    modality = thermal[0].modality
    intro = f"<p>The planned {html.escape(modality)} ablation of <b>{html.escape(tumour)}</b> ({len(probes)} zone(s), heated together)"
    ctx.add_section(
        "MR thermometry monitoring",
        f"{intro} watched on MR-like slices through its zones (first probe P{probe.order}) ({g}; identity registration: CT and MR share "
        f"the patient frame). Synthetic heating (homogeneous liver, {POWER_W:g} W absorbed, no vessel cooling) for "
        f"{s.meta['heat_s']:g} s, {len(s.heated_times_s)} frames every {s.meta['frame_period_s']:g} s after "
        f"{s.n_baselines} baselines; 3 T, TE {s.te_ms:g} ms, SNR {s.snr:g}, field drift, breathing. Target and "
        f"organs at risk come from the plan (<code>monitor/structures.json</code>).</p>"
        f"<p><b>{'Time to stop: ' + format(stop.time_s, '.0f') + ' s' if stop else 'Target not fully covered'}"
        f"</b> (target coverage {100 * (cov[-1] if cov else 0):.1f} % at the end); {len(alerts)} organ-at-risk "
        f"alert(s). Temperature RMSE in the heated region (&gt;40 °C): <b>{rmse:.2f} °C</b>; lethal-zone voxels "
        f"more than 1 voxel from the true zone: <b>{outside}</b>; median processing {ms:.1f} ms/frame.</p>"
        f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' alt='thermometry'>"
        f"{_coverage_png(times, cov, stop.time_s if stop else None)}"
        f"<table><tr><th>role</th><th>structure</th><th>MR voxels</th><th>limit</th><th>note</th></tr>{srows}</table>"
        f"<ul>{notes}</ul>"
        f"<table><tr><th>t (s)</th><th>event</th><th>message</th></tr>{rows}</table>",
    )


def _not_thermal(ctx: DemoContext, plan) -> None:
    """No tumour of this plan is heated: MR thermometry has nothing to follow; say how it is monitored."""
    how = {"cryo": "the ice ball is followed on intermittent CT (it is visible as a hypodense region) and the "
                   "temperature at the organs at risk is predicted by the physics stage (coldest temperature per "
                   "structure, see 'Physics of the plan')",
           "ire": "electroporation has no thermometry; the field and its Joule heating are predicted by the physics "
                  "stage (see 'Physics of the plan') and the zone is checked on contrast CT afterwards"}
    items = "".join(f"<li><b>{html.escape(t.tumour)}</b>: {html.escape(t.modality)} - "
                    f"{html.escape(how.get(t.modality, 'not monitored by MR thermometry'))}</li>" for t in plan.targets)
    ctx.results["monitor"] = None
    ctx.add_section(
        "MR thermometry monitoring",
        "<p>No tumour of this plan is treated with a thermal modality (microwave, radiofrequency, laser), so "
        "MR thermometry (PRF shift), which measures heating, is not used; no synthetic heating is shown.</p>"
        f"<ul>{items}</ul>")


def _limit_text(i) -> str:
    return "" if i.max_c is None else f"{i.max_c:g} °C ({html.escape(i.kind or '')})"


def _coverage_png(times: list[float], cov: list[float], stop_s: float | None) -> str:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.4), dpi=90)
    ax.plot(times, [100 * c for c in cov], color="tab:red")
    if stop_s is not None:
        ax.axvline(stop_s, color="k", ls="--", lw=1)
        ax.text(stop_s, 5, " time to stop", fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("target coverage (%)")
    ax.set_ylim(0, 105)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}' alt='coverage over time'>"


def run(ctx: DemoContext) -> None:
    patient, plan = ctx.results.get("patient"), ctx.results.get("plan")
    if patient is not None and plan is not None and plan.targets and plan.probes:
        _run_planned(ctx, patient, plan)
    else:
        _run_standalone(ctx)


def _run_standalone(ctx: DemoContext) -> None:
    from openir.monitor import (
        MonitorStructures,
        OrganLimit,
        add_margin,
        load_thermometry,
    )
    from openir.monitor.synthetic_series import HeatingSeriesSpec, make_heating_series

    s = make_heating_series(HeatingSeriesSpec(seed=ctx.seed))
    sp = s.grid.spacing
    skji = (float(sp[2]), float(sp[1]), float(sp[0]))
    far = ndimage.distance_transform_edt(~s.mask("tumour"), sampling=skji) > 30.0
    nerve = load_thermometry().limit("nerve")
    st = MonitorStructures(target=add_margin(s.mask("tumour"), s.target_margin_mm, skji),
                           organs=[OrganLimit("organ_at_risk", s.mask("organ_at_risk"), nerve.max_c, nerve.source)],
                           reference=s.mask("liver") & far, fat=s.mask("fat"))
    out = ctx.out / "monitor"
    sess, rmse, outside, ms = _monitor_and_score(ctx, s, st, {"tumour centre": s.tip_lps})
    ctx.results["monitor"] = {"rmse_c": rmse, "lethal_voxels_beyond_1_voxel": outside, "events": sess.events,
                              "median_ms_per_frame": float(ms)}
    png = (out / "live.png").read_bytes()
    rows = "".join(f"<tr><td>{e.time_s:.0f}</td><td>{html.escape(e.kind)}</td><td>{html.escape(e.message)}</td></tr>"
                   for e in sess.events)
    g = s.grid.describe()
    ctx.add_section(
        "MR thermometry monitoring",
        f"<p>Synthetic series ({g}; {len(s.times_s)} frames every {s.meta['frame_period_s']:g} s, {s.n_baselines} "
        f"baselines; 3 T, TE {s.te_ms:g} ms, SNR {s.snr:g}, field drift, breathing). Temperature RMSE in the heated "
        f"region (&gt;40 °C): <b>{rmse:.2f} °C</b>; lethal-zone voxels more than 1 voxel from the true zone: "
        f"<b>{outside}</b>; median processing {ms:.1f} ms/frame. Files: <code>monitor/live.html</code>, "
        f"<code>monitor/events.jsonl</code>, <code>monitor/summary.json</code>.</p>"
        f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' alt='thermometry'>"
        f"<table><tr><th>t (s)</th><th>event</th><th>message</th></tr>{rows}</table>",
    )
