"""Figures of the bioheat stage: how the lethal zone grows over the treatment."""

from __future__ import annotations

from pathlib import Path

from openir.physics import SimulationResult


def plot_zone_growth(result: SimulationResult, path: Path) -> None:
    """Length, width and volume of the lethal zone against time, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [z.time_s / 60 for z in result.zones]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(t, [z.length_mm for z in result.zones], "o-", label="length along shaft (mm)")
    ax.plot(t, [z.width_mm for z in result.zones], "s-", label="width across shaft (mm)")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("mm")
    ax2 = ax.twinx()
    ax2.plot(t, [z.volume_ml for z in result.zones], "^--", color="tab:red", label="volume (ml)")
    ax2.set_ylabel("ml")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.set_title(f"Lethal zone growth ({result.criterion})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
