"""Paired-seed evaluation: every policy runs on the same channel realizations.

For each seed, each policy gets a fresh :class:`~linkadapt.sim.Simulator` built from
(scenario, seed): the simulator's random streams do not depend on decisions, so all
policies see the same drops, fading, interference and traffic (paired samples). The
summary reports mean ± 95 % confidence half-width (Student t over seeds) per KPI, and
the paired relative throughput difference against reference policies (``olla``,
``genie``) with its own CI, which is much tighter than comparing two unpaired means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from linkadapt.baselines import make_baseline
from linkadapt.policy import Policy
from linkadapt.sim import ScenarioConfig, Simulator, load_scenario

PolicyFactory = Callable[[int], Policy]
KPIS = ("throughput_mbps", "bler", "residual_bler", "spectral_efficiency")
REFERENCES = ("olla", "genie")


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """(mean, 95 % CI half-width) with Student's t; half-width 0 for one sample."""
    x = np.asarray(list(values), dtype=np.float64)
    if x.size < 2:
        return float(x.mean()) if x.size else float("nan"), 0.0
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


@dataclass
class EvaluationResult:
    """Per-seed KPIs: ``per_seed[policy][seed] = {kpi: value}``."""

    scenario: str
    seeds: list[int]
    n_ues: int
    n_slots: int
    per_seed: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    mcs_histograms: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    def values(self, policy: str, kpi: str) -> np.ndarray:
        return np.array([self.per_seed[policy][s][kpi] for s in self.seeds])

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """``{policy: {kpi: (mean, ci95)}}`` plus paired ``throughput_vs_<ref>_pct``."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for policy in self.per_seed:
            row = {kpi: mean_ci95(self.values(policy, kpi)) for kpi in KPIS}
            for ref in REFERENCES:
                if ref in self.per_seed and ref != policy:
                    row[f"throughput_vs_{ref}_pct"] = self.paired_gain_pct(policy, ref)
            out[policy] = row
        return out

    def paired_gain_pct(self, policy: str, reference: str) -> tuple[float, float]:
        """Paired relative throughput difference (policy / reference − 1) in %, mean ± CI."""
        ours = self.values(policy, "throughput_mbps")
        ref = self.values(reference, "throughput_mbps")
        return mean_ci95(100.0 * (ours / np.maximum(ref, 1e-12) - 1.0))

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "seeds": self.seeds, "n_ues": self.n_ues,
                "n_slots": self.n_slots,
                "summary": {p: {k: {"mean": m, "ci95": c} for k, (m, c) in row.items()}
                            for p, row in self.summary().items()},
                "per_seed": {p: {str(s): v for s, v in d.items()}
                             for p, d in self.per_seed.items()}}


def baseline_factory(name: str, mcs_table: int = 2) -> PolicyFactory:
    """Factory of a named baseline (olla, illa, fixed, genie)."""
    return lambda n_ues: make_baseline(name, n_ues, mcs_table=mcs_table)


def evaluate(policies: dict[str, PolicyFactory], scenario: str | ScenarioConfig,
             seeds: Iterable[int], n_ues: int = 200, n_slots: int = 1000, *,
             progress: Callable[[str, int], None] | None = None) -> EvaluationResult:
    """Run every policy on every seed of ``scenario``; see module doc."""
    cfg = load_scenario(scenario)
    seeds = [int(s) for s in seeds]
    result = EvaluationResult(cfg.name, seeds, n_ues, n_slots)
    for name, factory in policies.items():
        result.per_seed[name] = {}
        result.mcs_histograms[name] = {}
        for seed in seeds:
            sim = Simulator(cfg, n_ues, seed)
            result.per_seed[name][seed] = sim.run(factory(n_ues), n_slots)
            result.mcs_histograms[name][seed] = sim.kpi.mcs_hist.tolist()
            if progress is not None:
                progress(name, seed)
    return result
