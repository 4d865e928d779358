"""Plots: learning curves of training runs and evaluation bar charts (matplotlib, Agg)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curve(
    rows: Sequence[Mapping[str, float]], path: str | Path, title: str = "learning curve"
) -> Path:
    """PNG of a training curve (rows as in ``curve.csv``) against stored transitions.

    Panels: training and greedy-evaluation reward per decision (or episode return for
    episodic tasks), throughput in Mbit/s when the env reports it, and the TD loss.
    """
    plt = _pyplot()
    path = Path(path)
    x = [r["transitions"] for r in rows]

    def series(key: str) -> list[float]:
        return [r.get(key, math.nan) for r in rows]

    def has(key: str) -> bool:
        return any(not math.isnan(v) for v in series(key))

    episodic = has("eval_return") and not has("train_throughput_mbps")
    panels = (
        ["reward"]
        + (["tput"] if has("train_throughput_mbps") or has("eval_throughput_mbps") else [])
        + (["gain"] if has("eval_gain_vs_olla_pct") else [])
        + ["loss"]
    )
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), sharex=True)
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "reward":
            if episodic:
                ax.plot(x, series("train_episode_return"), label="train (ε-greedy)")
                ax.plot(x, series("eval_return"), "o-", label="greedy eval")
                ax.set_ylabel("episode return")
            else:
                ax.plot(x, series("train_reward_per_decision"), label="train (ε-greedy)")
                ax.plot(x, series("eval_reward_per_decision"), "o-", label="greedy eval")
                ax.set_ylabel("reward / decision")
        elif panel == "tput":
            ax.plot(x, series("train_throughput_mbps"), label="train (ε-greedy)")
            ax.plot(x, series("eval_throughput_mbps"), "o-", label="greedy eval")
            ax.set_ylabel("throughput / UE (Mbit/s)")
        elif panel == "gain":
            ax.plot(
                x,
                series("eval_gain_vs_olla_pct"),
                "o-",
                color="tab:green",
                label="greedy vs OLLA, paired seeds",
            )
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_ylabel("throughput gain (%)")
        else:
            ax.plot(x, series("loss"), color="tab:red")
            ax.set_ylabel("Huber TD loss")
            ax.set_yscale("log") if has("loss") and min(
                v for v in series("loss") if not math.isnan(v)
            ) > 0 else None
        if panel != "loss":
            ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("stored transitions (decisions)")
    axes[0].set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_kpi_bars(
    summary: Mapping[str, Mapping[str, Mapping[str, tuple[float, float]]]],
    path: str | Path,
    kpis: Sequence[str] = ("throughput_mbps", "bler"),
) -> Path:
    """Grouped bar chart: one panel per KPI, scenarios on the x axis, one bar per policy.

    Args:
        summary: ``{scenario: {policy: {kpi: (mean, ci95_halfwidth)}}}``.
        path: PNG to write.
        kpis: which KPIs get a panel.
    """
    plt = _pyplot()
    path = Path(path)
    scenarios = list(summary)
    policies: list[str] = []
    for sc in scenarios:
        for p in summary[sc]:
            if p not in policies:
                policies.append(p)
    width = 0.8 / max(1, len(policies))
    fig, axes = plt.subplots(
        1, len(kpis), figsize=(max(6, 1.6 * len(scenarios)) * len(kpis) / 1.5, 3.8), squeeze=False
    )
    for ax, kpi in zip(axes[0], kpis, strict=True):
        for j, pol in enumerate(policies):
            means, errs, xs = [], [], []
            for i, sc in enumerate(scenarios):
                cell = summary[sc].get(pol, {}).get(kpi)
                if cell is None:
                    continue
                xs.append(i + (j - (len(policies) - 1) / 2) * width)
                means.append(cell[0])
                errs.append(cell[1])
            ax.bar(xs, means, width, yerr=errs, capsize=3, label=pol)
        ax.set_xticks(range(len(scenarios)), scenarios, rotation=20)
        ax.set_ylabel(kpi)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("mean ± 95 % CI over paired seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
