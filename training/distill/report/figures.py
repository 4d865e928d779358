"""The report's PNGs, drawn from stage results (matplotlib, Agg). Each function returns the
file it wrote, or ``None`` when its stage has nothing to draw."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    from training.plots import _pyplot

    return _pyplot()


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def mean_vs_teacher(row: dict[str, Any]) -> float:
    """Mean over evaluated scenarios of the student's throughput change vs its teacher (%)."""
    values = [
        s["vs_teacher"]["throughput_pct"][0]
        for s in row.get("scenarios", {}).values()
        if s.get("vs_teacher")
    ]
    return float(np.mean(values)) if values else math.nan


def agreement_bars(rows: dict[str, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Held-out argmax agreement and ±1 agreement per variant."""
    if not rows:
        return None
    plt = _plt()
    names = list(rows)
    agree = [rows[n]["validation"]["argmax_agreement"] for n in names]
    within = [rows[n]["validation"]["within_1"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.4))
    ax.bar(x - 0.2, agree, 0.4, label="argmax agreement")
    ax.bar(x + 0.2, within, 0.4, label="within ±1 action")
    ax.set_xticks(x, names, rotation=15, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out share")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def tau_sweep(rows: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Held-out agreement and KL against τ (log axis)."""
    if not rows:
        return None
    plt = _plt()
    taus = sorted(rows, key=float)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(
        [float(t) for t in taus], [rows[t]["validation"]["argmax_agreement"] for t in taus], "o-"
    )
    ax.set_xscale("log")
    ax.set_xlabel("τ (teacher softmax temperature)")
    ax.set_ylabel("held-out argmax agreement")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def mcs_histograms(hists: dict[str, list[int]], path: Path) -> Path | None:
    """Share of first transmissions per MCS, one line per policy."""
    hists = {k: v for k, v in hists.items() if v and sum(v) > 0}
    if not hists:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, h in hists.items():
        h = np.asarray(h, float)
        ax.plot(np.arange(len(h)), h / h.sum(), drawstyle="steps-mid", label=name)
    ax.set_xlabel("MCS index (38.214 Table 5.1.3.1-2)")
    ax.set_ylabel("share of transmissions")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def cartpole_curves(
    runs: dict[str, list[dict[str, Any]]], target: float, path: Path
) -> Path | None:
    """100-episode average training return against episodes, seed 0 of every agent."""
    if not runs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, rows in runs.items():
        curve = rows[0].get("curve") or []
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], label=name)
    ax.axhline(target, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("episodes")
    ax.set_ylabel("100-episode average return")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pareto(rows: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Parameters against mean throughput change vs the teacher; the front joined."""
    points = [(r["parameters"], mean_vs_teacher(r), a) for a, r in rows.items()]
    points = [p for p in points if not math.isnan(p[1])]
    if not points:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for n, loss, arch in points:
        ax.scatter(n, loss)
        ax.annotate(arch, (n, loss), fontsize=7)
    front = pareto_front([(n, loss) for n, loss, _ in points])
    ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("student parameters")
    ax.set_ylabel("throughput vs teacher (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (parameters, throughput change) points no other point beats on both: fewer or
    equal parameters and a higher or equal change, one of them strictly."""
    front = []
    best = -math.inf
    for n, value in sorted(points, key=lambda p: (p[0], -p[1])):
        if value > best:
            front.append((n, value))
            best = value
    return front
