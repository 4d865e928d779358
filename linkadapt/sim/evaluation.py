"""Paired-seed evaluation: every policy runs on the same channel realizations.

For each seed, each policy gets a fresh :class:`~linkadapt.sim.Simulator` built from
(scenario, seed): the simulator's random streams do not depend on decisions, so all
policies see the same drops, fading, interference and traffic (paired samples). The
summary reports mean ± 95 % confidence half-width (Student t over seeds) per KPI
(:data:`KPIS`: mean and cell throughput, cell-edge throughput and zero-UE share, BLERs,
spectral efficiency), and paired differences against the reference policies
(:data:`REFERENCES`: ``olla``, ``olla-tuned``, ``genie``, whichever ran) with their own
CI, much tighter than comparing two unpaired means:

- ``throughput_vs_<ref>_pct``: mean over seeds of (policy / reference − 1) of the mean
  UE throughput, in %;
- ``throughput_p5_vs_<ref>_mbps``: the same pairing for the 5th-percentile UE
  throughput as a difference in Mbit/s (always defined);
- ``throughput_p5_vs_<ref>_pct``: the p5 ratio in %, only when the reference's p5 is
  > 0 on every seed (a starved cell edge has p5 = 0 and no meaningful ratio).

Which seeds to use is :mod:`linkadapt.seeds`' business: reported numbers come from
evaluation seeds, tuning from tuning seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from linkadapt.baselines import GeniePolicy, OllaPolicy, TunedOllaPolicy, make_baseline
from linkadapt.policy import Policy, PolicyFactory
from linkadapt.sim import ScenarioConfig, Simulator, load_scenario

KPIS = (
    "throughput_mbps",
    "cell_throughput_mbps",
    "throughput_p5_mbps",
    "zero_ue_share",
    "bler",
    "residual_bler",
    "spectral_efficiency",
)
REFERENCES = (OllaPolicy.name, TunedOllaPolicy.name, GeniePolicy.name)


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
        """``{policy: {kpi: (mean, ci95)}}`` plus the paired gains of the module doc."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for policy in self.per_seed:
            row = {kpi: mean_ci95(self.values(policy, kpi)) for kpi in KPIS}
            for ref in REFERENCES:
                if ref in self.per_seed and ref != policy:
                    row.update(self.paired_gains(policy, ref))
            out[policy] = row
        return out

    def paired_gains(self, policy: str, reference: str) -> dict[str, tuple[float, float]]:
        """The ``throughput[_p5]_vs_<reference>_*`` entries of :meth:`summary`."""
        p5 = "throughput_p5_mbps"
        row = {
            f"throughput_vs_{reference}_pct": self.paired_gain_pct(policy, reference),
            f"throughput_p5_vs_{reference}_mbps": self.paired_diff(policy, reference, p5),
        }
        if np.all(self.values(reference, p5) > 0):
            row[f"throughput_p5_vs_{reference}_pct"] = self.paired_gain_pct(policy, reference, p5)
        return row

    def paired_gain_pct(
        self, policy: str, reference: str, kpi: str = "throughput_mbps"
    ) -> tuple[float, float]:
        """Paired relative difference (policy / reference − 1) of ``kpi`` in %, mean ± CI."""
        ours = self.values(policy, kpi)
        ref = self.values(reference, kpi)
        return mean_ci95(100.0 * (ours / np.maximum(ref, 1e-12) - 1.0))

    def paired_diff(self, policy: str, reference: str, kpi: str) -> tuple[float, float]:
        """Paired difference (policy − reference) of ``kpi`` in its unit, mean ± CI."""
        return mean_ci95(self.values(policy, kpi) - self.values(reference, kpi))

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "seeds": self.seeds,
            "n_ues": self.n_ues,
            "n_slots": self.n_slots,
            "summary": {
                p: {k: {"mean": m, "ci95": c} for k, (m, c) in row.items()}
                for p, row in self.summary().items()
            },
            "per_seed": {p: {str(s): v for s, v in d.items()} for p, d in self.per_seed.items()},
            "mcs_histograms": {
                p: {str(s): h for s, h in d.items()} for p, d in self.mcs_histograms.items()
            },
        }


@dataclass(frozen=True)
class BaselineFactory:
    """Factory of a named baseline; :func:`evaluate` binds it to the scenario it runs.

    ``scenario`` (a scenario name) picks ``olla-tuned``'s entry and ``mcs_table`` the MCS
    table; left None they come from the scenario when bound (unbound: ``mimo``'s entry,
    table 2).
    """

    name: str
    mcs_table: int | None = None
    scenario: str | None = None

    def __call__(self, n_ues: int) -> Policy:
        return make_baseline(
            self.name, n_ues, mcs_table=self.mcs_table or 2, scenario=self.scenario
        )

    def for_scenario(self, cfg: ScenarioConfig) -> BaselineFactory:
        """This factory with the unset fields taken from ``cfg``."""
        return dataclasses.replace(
            self, mcs_table=self.mcs_table or cfg.mcs_table, scenario=self.scenario or cfg.name
        )


def baseline_factory(
    name: str, mcs_table: int | None = None, scenario: str | None = None
) -> BaselineFactory:
    """Factory of a named baseline (:data:`linkadapt.baselines.BASELINE_NAMES`)."""
    return BaselineFactory(name, mcs_table, scenario)


def evaluate(
    policies: Mapping[str, PolicyFactory],
    scenario: str | ScenarioConfig,
    seeds: Iterable[int],
    n_ues: int = 200,
    n_slots: int = 1000,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> EvaluationResult:
    """Run every policy on every seed of ``scenario``; see module doc.

    Factories with a ``for_scenario(cfg)`` method (:class:`BaselineFactory`) are bound to
    the scenario first, so ``olla-tuned`` uses the entry of ``cfg.name``.
    """
    cfg = load_scenario(scenario)
    seeds = [int(s) for s in seeds]
    result = EvaluationResult(cfg.name, seeds, n_ues, n_slots)
    for name, factory in policies.items():
        bind = getattr(factory, "for_scenario", None)
        factory = bind(cfg) if bind is not None else factory
        result.per_seed[name] = {}
        result.mcs_histograms[name] = {}
        for seed in seeds:
            sim = Simulator(cfg, n_ues, seed)
            result.per_seed[name][seed] = sim.run(factory(n_ues), n_slots)
            result.mcs_histograms[name][seed] = sim.kpi.mcs_hist.tolist()
            if progress is not None:
                progress(name, seed)
    return result
