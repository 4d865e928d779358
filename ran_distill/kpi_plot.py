"""The demo's figure: live KPIs per cell against the model's reference, their deviation,
decision latency and decisions per second over time (from :mod:`ran_distill.kpi_series`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ran_distill.kpi_series import KpiSeries

LATENCY_STAGES = ("total", "inference")


def plot_kpis(
    series: KpiSeries, out: Path, *, title: str, source: str, reference: str = "model"
) -> Path:
    """Write the six-panel PNG to ``out``; ``source`` names where the data came from,
    ``reference`` the manifest scenario the live KPIs are compared with."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(13, 11), sharex=True)
    colors = plt.get_cmap("tab10")

    def per_cell(ax: Any, live: str, ref: str | None, ylabel: str) -> None:
        for i, s in enumerate(series.get(live, [])):
            ax.plot(s.t, s.v, color=colors(i % 10), label=s.label, lw=1.4)
        # every cell is compared with the same scenario's reference: one black dashed line
        for j, r in enumerate(series.get(ref, []) if ref else []):
            label = f"reference ({reference})" if j == 0 else None
            ax.plot(r.t, r.v, color="k", ls="--", lw=1.0, label=label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    per_cell(axes[0, 0], "throughput", "throughput_ref", "mean UE throughput (Mbit/s)")
    axes[0, 0].set_title("mean UE throughput per cell vs the model's reference")
    per_cell(axes[0, 1], "bler", "bler_ref", "first-tx BLER")
    axes[0, 1].set_title("first-tx BLER per cell vs the model's reference")
    per_cell(axes[1, 0], "throughput_dev", None, "deviation (%)")
    axes[1, 0].set_title("throughput deviation from reference")
    per_cell(axes[1, 1], "bler_dev", None, "deviation (percentage points)")
    axes[1, 1].set_title("first-tx BLER deviation from reference")
    for ax in (axes[1, 0], axes[1, 1]):
        ax.axhline(0.0, color="k", lw=0.8)
    for ax in (axes[0, 0], axes[0, 1]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2, loc="best")

    ax = axes[2, 0]
    for key, ls in (("latency_p50", "-"), ("latency_p99", "--")):
        for i, stage in enumerate(LATENCY_STAGES):
            for s in series.get(key, []):
                if s.label == stage:
                    q = key.split("_")[1]
                    ax.plot(s.t, s.v, ls=ls, color=colors(i), label=f"{q} {stage}")
    ax.set_yscale("log")
    ax.set_ylabel("server latency (ms)")
    ax.set_title("decision latency per request (xApp histogram)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)

    ax = axes[2, 1]
    for i, s in enumerate(series.get("decisions", [])):
        ax.plot(s.t, s.v, color=colors(i), label=s.label)
    ax.set_ylabel("UE decisions / s")
    ax.set_title("decisions by source")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    for ax in axes[2]:
        ax.set_xlabel("time since the gNB started (s)")
    fig.suptitle(f"{title}\n(data: {source})", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
