"""``ran-distill evaluate``: resolve policies, run the paired-seed core, print and plot.

The statistics (per-seed KPIs, mean ± 95 % CI, paired differences against OLLA and
the genie) come from :mod:`linkadapt.evaluation`; this module only resolves policy
specs (:mod:`training.policies`), loops over scenarios and presents the results.
Importing it does not import torch (ONNX and baseline policies need none).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkadapt.evaluation import KPIS, EvaluationResult, evaluate
from training.policies import policy_name, resolve_policy


@dataclass
class EvaluationReport:
    """Results of several policies on several scenarios (same seeds everywhere)."""

    policies: list[str]
    seeds: list[int]
    results: dict[str, EvaluationResult]  # scenario -> result

    def summary(self) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
        """``{scenario: {policy: {kpi: (mean, ci95)}}}`` incl. ``throughput_vs_<ref>_pct``."""
        return {sc: res.summary() for sc, res in self.results.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"policies": self.policies, "seeds": self.seeds,
                "scenarios": {sc: res.to_json() for sc, res in self.results.items()}}

    def plot(self, path: str | Path) -> Path | None:
        """Bar chart of throughput and BLER (needs matplotlib; ``None`` without it)."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return None
        from training.report import plot_kpi_bars

        return plot_kpi_bars(self.summary(), path, kpis=("throughput_mbps", "bler"))


def _unique_names(specs: Sequence[str]) -> list[str]:
    names: list[str] = []
    for spec in specs:
        base = policy_name(spec)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def run_evaluation(specs: Sequence[str], scenarios: Sequence[str], seeds: Sequence[int], *,
                   n_ues: int = 200, n_slots: int = 1000, names: Sequence[str] | None = None,
                   progress: Callable[[str, str, int], None] | None = None,
                   torch_threads: int | None = 1) -> EvaluationReport:
    """Evaluate policy ``specs`` on every scenario with the same ``seeds``.

    Args:
        specs: baseline names, model directories or ONNX files (see training.policies).
        scenarios: simulator presets (or scenario files) to run.
        seeds: paired seeds; every policy sees the same channel for a given seed.
        n_ues, n_slots: simulation size per (policy, seed).
        names: display names (default: derived from the specs, made unique).
        progress: called with (scenario, policy, seed) after each simulation.
        torch_threads: intra-op threads for torch policies (None: leave torch's default).
            Per-slot batches are tiny; extra threads only spin and, on a shared machine,
            slowed evaluations several-fold.
    """
    if not specs:
        raise ValueError("give at least one --policy")
    if not scenarios:
        raise ValueError("give at least one --scenario")
    names = list(names) if names is not None else _unique_names(specs)
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique: {names}")
    factories = {name: resolve_policy(spec) for name, spec in zip(names, specs, strict=True)}
    if torch_threads is not None and "torch" in sys.modules:  # only if a torch model loaded
        sys.modules["torch"].set_num_threads(torch_threads)
    results: dict[str, EvaluationResult] = {}
    for sc in scenarios:
        cb = None if progress is None else (lambda p, s, sc=sc: progress(sc, p, s))
        results[sc] = evaluate(factories, sc, list(seeds), n_ues, n_slots, progress=cb)
    return EvaluationReport(names, list(seeds), results)


def _fmt(cell: tuple[float, float] | None, digits: int = 2, pct: bool = False) -> str:
    if cell is None:
        return "-"
    mean, ci = cell
    sign = "+" if pct and mean >= 0 else ""
    unit = " %" if pct else ""
    return f"{sign}{mean:.{digits}f} ± {ci:.{digits}f}{unit}"


def print_report(report: EvaluationReport, console=None) -> None:
    """One rich table per scenario: KPIs (mean ± 95 % CI) and paired gains vs OLLA / genie."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for sc, res in report.results.items():
        summary = res.summary()
        table = Table(title=f"{sc}: {len(res.seeds)} paired seeds, {res.n_ues} UEs × "
                            f"{res.n_slots} slots (mean ± 95 % CI)")
        table.add_column("policy")
        table.add_column("throughput Mbit/s", justify="right")
        table.add_column("vs OLLA", justify="right")
        table.add_column("vs genie", justify="right")
        for kpi in KPIS[1:]:
            table.add_column(kpi, justify="right")
        for policy, row in summary.items():
            table.add_row(
                policy, _fmt(row["throughput_mbps"]),
                _fmt(row.get("throughput_vs_olla_pct"), 1, pct=True),
                _fmt(row.get("throughput_vs_genie_pct"), 1, pct=True),
                *(_fmt(row[k], 3) for k in KPIS[1:]),
            )
        console.print(table)
