"""Demo stage: MR thermometry monitoring of a synthetic ablation (physics-heated, known truth).

A small synthetic patient is heated by the bioheat solver; the MR phase images that heating implies
(noise, field drift, breathing) are processed frame by frame as during a procedure. The page shows
the final temperature/dose view, the event log and how close the measured temperature and lethal
zone are to the truth.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from .runner import DemoContext


def run(ctx: DemoContext) -> None:
    from openir.monitor import (
        MonitorStructures,
        MRFrame,
        OrganLimit,
        add_margin,
        load_thermometry,
        run_monitoring,
    )
    from openir.monitor.synthetic_series import make_heating_series
    from openir.physics import cem43

    s = make_heating_series(seed=ctx.seed)
    sp = s.grid.spacing
    skji = (float(sp[2]), float(sp[1]), float(sp[0]))
    far = ndimage.distance_transform_edt(~s.mask("tumour"), sampling=skji) > 30.0
    nerve = load_thermometry().limit("nerve")
    st = MonitorStructures(target=add_margin(s.mask("tumour"), s.target_margin_mm, skji),
                           organs=[OrganLimit("organ_at_risk", s.mask("organ_at_risk"), nerve.max_c, nerve.source)],
                           reference=s.mask("liver") & far, fat=s.mask("fat"))
    frames = (MRFrame(s.magnitude[f], s.phase[f], s.grid, s.te_ms, s.b0_t, float(s.times_s[f]), f)
              for f in range(len(s.times_s)))
    sq, n = [0.0], [0]

    def score(res) -> None:
        i = res.summary.frame
        hot = (s.true_temperature_c[i] > 40.0) & res.valid
        sq[0] += float(np.sum((res.temperature_c[hot] - s.true_temperature_c[i][hot]) ** 2))
        n[0] += int(hot.sum())

    out = ctx.out / "monitor"
    sess = run_monitoring(frames, n_baselines=s.n_baselines, out=out, structures=st, live_every=0, on_frame=score,
                          points={"tumour centre": s.tip_lps})
    rmse = (sq[0] / max(n[0], 1)) ** 0.5
    hist = np.concatenate([np.full((1, *s.grid.shape), 37.0), s.true_temperature_c])
    true_lethal = cem43(hist, s.meta["frame_period_s"]) >= 240.0
    est = sess.lethal
    outside = int((est & ~ndimage.binary_dilation(true_lethal)).sum() + (true_lethal & ~ndimage.binary_dilation(est)).sum())
    ms = np.median([x.processing_ms for x in sess.summaries])
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
