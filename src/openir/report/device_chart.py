"""Device zone-table charts (moved from ``openir.plan.figures``: plotting lives in report/)."""

from __future__ import annotations

from pathlib import Path

_X_AXIS = {"microwave": ("time_s", "time (min)", 60.0), "radiofrequency": ("time_s", "time (min)", 60.0),
           "cryo": ("time_s", "freeze time (min)", 60.0), "ire": ("spacing_mm", "electrode spacing (mm)", 1.0),
           "chemical": ("injected_ml", "injected volume (mL)", 1.0)}


_UNIT = {"power_w": "W", "time_s": "s", "isotherm_c": "C isotherm", "exposure_mm": "mm exposure",
         "spacing_mm": "mm spacing", "injected_ml": "mL"}


def device_chart(device, path: str | Path) -> Path:
    """PNG of a device's sourced rows: length (along) and diameter (across) against the main setting.

    One panel per evidence table; one line per other setting (power, isotherm, exposure), so a
    manufacturer chart and a clinical series of the same device can be compared at a glance.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openir.plan.devices import SETTING_AXES

    xname, xlabel, scale = _X_AXIS[device.modality]
    kinds = device.evidence_kinds
    fig, axes = plt.subplots(1, len(kinds), figsize=(max(7.0, 5.5 * len(kinds)), 4.6), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds, strict=True):
        rows = device.table(kind) if kind is not None else [r for r in device.usable_rows() if r.evidence is None]
        groups: dict[str, list] = {}
        others = [n for n, _ in SETTING_AXES[device.modality] if n != xname]
        for r in rows:
            parts = [f"{getattr(r, n):g} {_UNIT[n]}" for n in others if getattr(r, n) is not None]
            if r.tissue:
                parts.append(r.tissue.split(" (")[0])
            groups.setdefault(", ".join(parts) or "all", []).append(r)
        for i, (key, rs) in enumerate(sorted(groups.items())):
            rs = sorted(rs, key=lambda r: getattr(r, xname) or 0.0)
            x = [(getattr(r, xname) or 0.0) / scale for r in rs]
            colour = plt.cm.tab10(i % 10)
            ax.plot(x, [r.length_mm for r in rs], "o-", color=colour, label=f"{key}: length")
            ax.plot(x, [r.diameter_mm for r in rs], "s--", color=colour, label=f"{key}: diameter")
        ax.set_title(f"{device.id}: {kind or 'unspecified evidence'}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("zone extent (mm)")
    fig.suptitle(f"{device.name}\nsourced zone rows - solid: along the shaft, dashed: across it", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
