"""``ran-distill evaluate``: resolve policies, run the paired-seed core, print and plot.

The statistics (per-seed KPIs incl. cell-edge throughput and zero-UE share, mean ± 95 %
CI, paired differences of the mean and of the 5th-percentile UE throughput against
``olla``, ``olla-tuned`` and the genie) come from :mod:`linkadapt.sim.evaluation`; this
module only resolves policy specs (:mod:`training.policies`), loops over scenarios
(optionally replaying a drive-test trace) and presents the results. Importing it does
not import torch (ONNX and baseline policies need none).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkadapt.sim import load_scenario
from linkadapt.sim.evaluation import REFERENCES, EvaluationResult, evaluate
from linkadapt.sim.trace import with_trace
from training.policies import policy_name, resolve_policy

PLOT_KPIS = ("throughput_mbps", "throughput_p5_mbps", "bler", "residual_bler")


@dataclass
class EvaluationReport:
    """Results of several policies on several scenarios (same seeds everywhere)."""

    policies: list[str]
    seeds: list[int]
    results: dict[str, EvaluationResult]  # scenario -> result
    trace: str | None = None  # drive-test CSV replayed in every scenario

    def summary(self) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
        """``{scenario: {policy: {kpi: (mean, ci95)}}}`` incl. the paired gains
        ``throughput[_p5]_vs_<ref>_*`` (see :mod:`linkadapt.sim.evaluation`)."""
        return {sc: res.summary() for sc, res in self.results.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "policies": self.policies,
            "seeds": self.seeds,
            "trace": self.trace,
            "scenarios": {sc: res.to_json() for sc, res in self.results.items()},
        }

    def plot(self, path: str | Path) -> Path | None:
        """Bar chart of mean and p5 UE throughput and the BLERs (needs matplotlib; ``None``
        without it)."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return None
        from training.plots import plot_kpi_bars

        return plot_kpi_bars(self.summary(), path, kpis=PLOT_KPIS)


def _unique_names(specs: Sequence[str]) -> list[str]:
    names: list[str] = []
    for spec in specs:
        base = policy_name(spec)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def run_evaluation(
    specs: Sequence[str],
    scenarios: Sequence[str],
    seeds: Sequence[int],
    *,
    n_ues: int,
    n_slots: int,
    names: Sequence[str] | None = None,
    progress: Callable[[str, str, int], None] | None = None,
    torch_threads: int | None = 1,
    trace: str | Path | None = None,
) -> EvaluationReport:
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
        trace: drive-test CSV (:mod:`linkadapt.sim.trace`) replayed as every UE's
            large-scale SINR in each scenario; ValueError if it has < 2 usable rows.
    """
    if not specs:
        raise ValueError("give at least one --policy")
    if not scenarios:
        raise ValueError("give at least one --scenario")
    names = list(names) if names is not None else _unique_names(specs)
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique: {names}")
    configs = {sc: load_scenario(sc) for sc in scenarios}
    if trace is not None:
        configs = {sc: with_trace(cfg, trace) for sc, cfg in configs.items()}
    factories = {name: resolve_policy(spec) for name, spec in zip(names, specs, strict=True)}
    if torch_threads is not None and "torch" in sys.modules:  # only if a torch model loaded
        sys.modules["torch"].set_num_threads(torch_threads)
    results: dict[str, EvaluationResult] = {}
    for sc, cfg in configs.items():
        cb = None if progress is None else (lambda p, s, sc=sc: progress(sc, p, s))
        results[sc] = evaluate(factories, cfg, list(seeds), n_ues, n_slots, progress=cb)
    return EvaluationReport(names, list(seeds), results, None if trace is None else str(trace))


def _fmt(
    cell: tuple[float, float] | None, digits: int = 2, pct: bool = False, signed: bool = False
) -> str:
    """``mean±ci`` (compact: the table has one column per policy), ``-`` when missing."""
    if cell is None:
        return "-"
    mean, ci = cell
    sign = "+" if (pct or signed) and mean >= 0 else ""
    unit = "%" if pct else ""
    return f"{sign}{mean:.{digits}f}±{ci:.{digits}f}{unit}"


REF_LABELS = {"olla": "OLLA", "olla-tuned": "OLLA-tuned", "genie": "genie"}


def _rows(
    summary: dict[str, dict[str, tuple[float, float]]], refs: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """``(label, cell per policy)`` rows of the report table (see :func:`print_report`)."""

    def kpi(key: str, digits: int) -> list[str]:
        return [_fmt(row[key], digits) for row in summary.values()]

    def gain(key: str, mbps_key: str | None = None) -> list[str]:
        cells = []
        for row in summary.values():
            if key in row:
                cells.append(_fmt(row[key], 1, pct=True))
            elif mbps_key and mbps_key in row:  # reference p5 is 0 on some seed: no ratio
                cells.append(_fmt(row[mbps_key], 2, signed=True) + " Mb/s")
            else:
                cells.append("-")
        return cells

    rows = [
        ("throughput Mbit/s", kpi("throughput_mbps", 2)),
        ("p5 UE Mbit/s", kpi("throughput_p5_mbps", 2)),
        ("zero-UE share", kpi("zero_ue_share", 3)),
    ]
    for ref in refs:
        rows += [
            (f"vs {REF_LABELS.get(ref, ref)}", gain(f"throughput_vs_{ref}_pct")),
            (
                f"p5 vs {REF_LABELS.get(ref, ref)}",
                gain(f"throughput_p5_vs_{ref}_pct", f"throughput_p5_vs_{ref}_mbps"),
            ),
        ]
    rows += [
        ("BLER", kpi("bler", 3)),
        ("residual BLER", kpi("residual_bler", 4)),
        ("SE bit/s/Hz", kpi("spectral_efficiency", 2)),
    ]
    return rows


def print_report(report: EvaluationReport, console=None) -> None:
    """One rich table per scenario, one column per policy (mean ± 95 % CI): mean and p5 UE
    throughput, zero-UE share, the paired gains of mean and p5 throughput vs each
    reference that ran (OLLA, OLLA-tuned, genie), BLERs and spectral efficiency."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for sc, res in report.results.items():
        summary = res.summary()
        refs = [r for r in REFERENCES if r in summary]
        trace = f", trace {Path(report.trace).name}" if report.trace else ""
        table = Table(
            title=f"{sc}{trace}: {len(res.seeds)} paired seeds, {res.n_ues} UEs × "
            f"{res.n_slots} slots (mean ± 95 % CI)"
        )
        table.add_column("")
        for policy in summary:
            table.add_column(policy, justify="right")
        for label, cells in _rows(summary, refs):
            table.add_row(label, *cells)
        console.print(table)
