"""Live view: temperature over the magnitude image, lethal-dose and structure contours, point curves.

`render_png` draws one frame; `write_live_html` writes a self-contained page (PNG inlined, event
log, meta refresh) that a browser reloads while `openir thermo watch` runs. Writes go to a
temporary file first and are renamed, so a reloading browser never sees half a file.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from .models import Event, FrameSummary, PointCurve


def render_png(
    magnitude: np.ndarray,
    temperature_c: np.ndarray,
    lethal: np.ndarray,
    *,
    target: np.ndarray | None = None,
    organs: dict[str, np.ndarray] | None = None,
    curves: list[PointCurve] | None = None,
    summary: FrameSummary | None = None,
    slice_k: int | None = None,
    t_range_c: tuple[float, float] = (37.0, 90.0),
) -> bytes:
    """PNG of one slice (default: the hottest) with a temperature overlay and the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if slice_k is None:
        t = np.nan_to_num(temperature_c, nan=-np.inf)
        slice_k = int(np.unravel_index(np.argmax(t), t.shape)[0]) if np.isfinite(t).any() else temperature_c.shape[0] // 2
    ncol = 2 if curves else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 4.6), dpi=90, squeeze=False)
    ax = axes[0, 0]
    ax.imshow(magnitude[slice_k], cmap="gray", interpolation="nearest")
    tt = np.ma.masked_where(~np.isfinite(temperature_c[slice_k]) | (temperature_c[slice_k] < t_range_c[0] + 2),
                            temperature_c[slice_k])
    im = ax.imshow(tt, cmap="inferno", vmin=t_range_c[0], vmax=t_range_c[1], alpha=0.75, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, label="°C")
    if lethal[slice_k].any():
        ax.contour(lethal[slice_k].astype(float), [0.5], colors="cyan", linewidths=1.2)
    if target is not None and target[slice_k].any():
        ax.contour(target[slice_k].astype(float), [0.5], colors="lime", linewidths=1.0, linestyles="--")
    for name, m in (organs or {}).items():
        if m[slice_k].any():
            ax.contour(m[slice_k].astype(float), [0.5], colors="deepskyblue", linewidths=1.0)
            jj, ii = np.nonzero(m[slice_k])
            ax.text(ii.mean(), jj.mean(), name, color="deepskyblue", fontsize=7)
    title = f"slice {slice_k}"
    if summary is not None:
        cov = "" if summary.target_coverage is None else f", coverage {100 * summary.target_coverage:.0f} %"
        title = f"t = {summary.time_s:.0f} s, slice {slice_k}: Tmax {summary.max_temperature_c:.1f} °C{cov}"
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    if curves:
        ax2 = axes[0, 1]
        for c in curves:
            if c.times_s:
                ax2.plot(c.times_s, c.temperature_c, label=c.name)
        ax2.set_xlabel("time (s)")
        ax2.set_ylabel("temperature (°C)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
        ax2.set_title("temperature at chosen points (cyan: lethal dose, green: target)", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_live_html(path: str | Path, png: bytes, events: list[Event], summary: FrameSummary | None,
                    *, refresh_s: int = 2, finished: bool = False) -> Path:
    """Self-contained live page: the frame PNG, key figures and the event log (newest first)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(p.with_suffix(".png"), png)
    refresh = "" if finished else f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
    rows = "".join(
        f"<tr class='{e.severity}'><td>{e.time_s:.0f}</td><td>{e.frame}</td><td>{html.escape(e.kind)}</td>"
        f"<td>{html.escape(e.message)}</td></tr>" for e in reversed(events)
    )
    figs = ""
    if summary is not None:
        cov = ("no target given: no coverage" if summary.target_coverage is None
               else f"target coverage {100 * summary.target_coverage:.1f} %")
        figs = (f"<p>frame {summary.frame}, t = {summary.time_s:.0f} s · max {summary.max_temperature_c:.1f} °C · "
                f"{cov} · lethal volume {summary.lethal_volume_ml:.2f} mL"
                f" · median σ {summary.median_sigma_c:.2f} °C · {summary.processing_ms:.0f} ms/frame</p>")
    status = "finished" if finished else "live"
    doc = f"""<!doctype html><html><head><meta charset="utf-8">{refresh}<title>OpenIR thermometry ({status})</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 6px}}
tr.critical{{background:#fdd}}tr.warning{{background:#ffd}}</style></head><body>
<h2>MR thermometry ({status})</h2>{figs}
<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="temperature map">
<h3>Events</h3><table><tr><td>t (s)</td><td>frame</td><td>kind</td><td>message</td></tr>{rows}</table>
<p><small>Research software, not a medical device. Limits and sources: monitor/data/thermometry.yaml.</small></p>
</body></html>"""
    _atomic_write(p, doc.encode("utf-8"))
    return p
