"""Dose charts (matplotlib PNG): distribution per procedure type against its DRL; monthly trend;
the dashboard's compact DRL box plot. :mod:`openir.dose` computes the levels; this module draws."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from openir.dose import METRIC_UNITS, ReferenceLevel  # noqa: E402


def distribution_chart(df: pd.DataFrame, levels: list[ReferenceLevel], path: str | Path,
                       metric: str = "kap_total_gy_cm2") -> Path:
    """Box plot of ``metric`` per procedure type (log scale) with each type's DRL and typical value."""
    d = df.dropna(subset=["procedure", metric])
    procs = sorted(d["procedure"].unique())
    fig, ax = plt.subplots(figsize=(max(5, 2.2 * len(procs)), 4), dpi=100)
    if procs:
        ax.boxplot([d.loc[d["procedure"] == p, metric].to_numpy() for p in procs], showfliers=True)
        lv = {lvl.procedure: lvl for lvl in levels}
        first = next((i for i, p in enumerate(procs, start=1) if p in lv), None)  # label once, on a drawn level
        for i, p in enumerate(procs, start=1):
            if p in lv:
                ax.hlines(lv[p].drl, i - 0.4, i + 0.4, colors="red", label="DRL (P75 of medians)" if i == first else None)
                ax.hlines(lv[p].typical_value, i - 0.4, i + 0.4, colors="orange", linestyles="--",
                          label="typical value (P50)" if i == first else None)
        ax.set_xticks(range(1, len(procs) + 1), [p if len(p) < 22 else p[:20] + "…" for p in procs], fontsize=8)
        ax.set_yscale("log")
        if first is not None:
            ax.legend(fontsize=8)
    ax.set_ylabel(f"{metric} [{METRIC_UNITS.get(metric, '')}]")
    ax.set_title("Dose per procedure type")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p


def trend_chart(df: pd.DataFrame, path: str | Path, metric: str = "kap_total_gy_cm2", freq: str = "MS") -> Path:
    """Monthly median of ``metric`` per procedure type."""
    d = df.dropna(subset=["procedure", metric, "performed_at"]).copy()
    d["performed_at"] = pd.to_datetime(d["performed_at"])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for proc, g in d.groupby("procedure"):
        s = g.set_index("performed_at")[metric].resample(freq).median().dropna()
        if len(s):
            ax.plot(s.index, s.to_numpy(), marker="o", label=str(proc))
    if len(d):
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_ylabel(f"monthly median {metric} [{METRIC_UNITS.get(metric, '')}]")
    ax.set_title("Dose trend")
    fig.autofmt_xdate()
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p


def drl_boxplot_png(df: pd.DataFrame, levels: list[ReferenceLevel], metric: str = "kap_total_gy_cm2") -> bytes:
    """Compact box plot (PNG bytes) of ``metric`` per procedure type with each type's DRL in red,
    for the dose dashboard; an empty frame gives an empty, labelled chart."""
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=90)
    if not df.empty and metric in df:
        by_proc = {lv.procedure: lv for lv in levels}
        procs = sorted(by_proc)
        ax.boxplot([df.loc[df["procedure"] == pr, metric].dropna().to_numpy() for pr in procs])
        for i, pr in enumerate(procs, start=1):
            ax.hlines(by_proc[pr].drl, i - 0.4, i + 0.4, colors="red", label="DRL (P75)" if i == 1 else None)
        ax.set_xticks(range(1, len(procs) + 1), [x[:18] for x in procs], fontsize=7)
        ax.set_yscale("log")
        if procs:
            ax.legend(fontsize=7)
    ax.set_ylabel(metric)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


__all__ = ["distribution_chart", "drl_boxplot_png", "trend_chart"]
