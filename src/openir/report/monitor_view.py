"""Live view: temperature over the magnitude image, lethal-dose and structure contours, point curves.

`render_png` draws one frame through the frame's affine in the radiological convention (patient's
right on the image left, anterior up, orientation letters and a scale bar); `write_live_html` writes a
self-contained page (PNG inlined, event log, meta refresh) that a browser reloads while
`openir thermo watch` runs; `write_live_view` is the writer `run_monitoring` calls. Writes go to a
temporary file first and are renamed, so a reloading browser never sees half a file. (The monitor
computes; this module draws: plotting lives in report/.)
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from openir.core import Grid, Volume
from openir.monitor import Event, FrameResult, FrameSummary, MonitorSession, PointCurve

from .slices import decorate, radiological_slice


def render_png(
    magnitude: np.ndarray,
    temperature_c: np.ndarray,
    lethal: np.ndarray,
    *,
    grid: Grid,
    target: np.ndarray | None = None,
    organs: dict[str, np.ndarray] | None = None,
    curves: list[PointCurve] | None = None,
    summary: FrameSummary | None = None,
    t_range_c: tuple[float, float] = (37.0, 90.0),
) -> bytes:
    """PNG of the axial plane through the hottest voxel, temperature over magnitude, and the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.nan_to_num(temperature_c, nan=-np.inf)
    hot = np.unravel_index(np.argmax(t), t.shape) if np.isfinite(t).any() else tuple(n // 2 for n in t.shape)
    centre = grid.index_to_world(np.array([hot[::-1]], float))[0]

    def view(arr: np.ndarray, order: int = 0, cval: float = 0.0):
        return radiological_slice(Volume(np.asarray(arr), grid.affine), "axial", centre, order=order, cval=cval)

    ncol = 2 if curves else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 4.6), dpi=90, squeeze=False)
    ax = axes[0, 0]
    mag = view(magnitude.astype(np.float32), order=1)
    ax.imshow(mag.pixels, cmap="gray", extent=mag.extent, interpolation="nearest")
    temp = view(np.where(np.isfinite(temperature_c), temperature_c, np.nan).astype(np.float32), cval=np.nan)
    tt = np.ma.masked_where(~np.isfinite(temp.pixels) | (temp.pixels < t_range_c[0] + 2), temp.pixels)
    im = ax.imshow(tt, cmap="inferno", vmin=t_range_c[0], vmax=t_range_c[1], alpha=0.75, extent=temp.extent,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, label="°C")
    outlines = [("lethal dose", lethal, "cyan", "solid")]
    if target is not None:
        outlines.append(("target", target, "lime", "dashed"))
    outlines += [(name, m, "deepskyblue", "solid") for name, m in (organs or {}).items()]
    for name, mask, colour, style in outlines:
        v = view(mask.astype(np.uint8))
        if v.pixels.any():
            ax.contour(v.pixels.astype(float), [0.5], colors=colour, linewidths=1.1, linestyles=style,
                       extent=v.extent, origin="upper")
            if colour == "deepskyblue":
                rr, cc = np.nonzero(v.pixels)
                x0, x1, y0, y1 = v.extent
                ax.text(x0 + (cc.mean() + 0.5) * (x1 - x0) / v.pixels.shape[1],
                        y1 + (rr.mean() + 0.5) * (y0 - y1) / v.pixels.shape[0], name, color=colour, fontsize=7)
    decorate(ax, mag)
    title = f"axial through the hottest voxel (z = {centre[2]:.0f} mm)"
    if summary is not None:
        cov = "" if summary.target_coverage is None else f", coverage {100 * summary.target_coverage:.0f} %"
        title = f"t = {summary.time_s:.0f} s, z = {centre[2]:.0f} mm: Tmax {summary.max_temperature_c:.1f} °C{cov}"
    ax.set_title(title, fontsize=9)
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


def write_live_view(out: Path, session: MonitorSession, res: FrameResult, magnitude: np.ndarray,
                    finished: bool) -> None:
    """``live.png`` and ``live.html`` of the latest frame (the writer `run_monitoring` is given)."""
    st = session.structures
    png = render_png(magnitude, res.temperature_c, res.lethal, grid=session.grid, target=st.target,
                     organs={o.name: o.mask for o in st.organs}, curves=list(session.curves.values()),
                     summary=res.summary)
    write_live_html(Path(out) / "live.html", png, session.events, res.summary, finished=finished)
