"""Seed ranges: which seeds train, which tune, which produce the numbers we report.

A policy tuned or selected on the seeds it is then scored on looks better than it is
(the winner of many noisy comparisons is partly the luckiest). So every seed used in
this project falls into one of three disjoint ranges:

============  =============================  ================================================
range         seeds                          used for
============  =============================  ================================================
TRAINING      0 – 4 999 and ≥ 100 000        ``--seed`` of training / distillation runs, and
                                             the env seeds derived from it
                                             (:func:`training_env_seed`, greedy-eval envs)
TUNING        5 000 – 9 999                  hyper-parameter tuning (``tune-olla``), model
                                             selection, the periodic gain-vs-OLLA check
EVALUATION    10 000 – 19 999                every reported number: ``ran-distill evaluate``,
                                             the benchmarks, manifests' reference KPIs
============  =============================  ================================================

Seeds 20 000 – 99 999 are unassigned. ``ran-distill sim --seed`` is free (ad hoc runs).
Because the simulator's random streams depend only on (scenario, seed), disjoint seeds
mean disjoint channel realizations.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import SupportsIndex

TRAINING_ENV_BASE = 100_000
MAX_WORKERS = 1_000  # workers per training seed in training_env_seed (no overlap between seeds)


@dataclass(frozen=True)
class SeedRange:
    """A named union of half-open intervals ``[start, stop)`` (``stop`` None: unbounded)."""

    name: str
    intervals: tuple[tuple[int, int | None], ...]

    def __contains__(self, seed: object) -> bool:
        if not isinstance(seed, SupportsIndex):  # int or numpy integer; not float, not str
            return False
        try:
            value = operator.index(seed)
        except TypeError:  # an __index__ that does not return an int
            return False
        return any(value >= lo and (hi is None or value < hi) for lo, hi in self.intervals)

    def first(self, k: int) -> list[int]:
        """The first ``k`` seeds of the range's first interval."""
        lo, hi = self.intervals[0]
        if k < 1:
            raise ValueError(f"need at least one {self.name} seed, got k={k}")
        if hi is not None and lo + k > hi:
            raise ValueError(f"{self.name} range has only {hi - lo} seeds, asked for {k}")
        return list(range(lo, lo + k))

    def describe(self) -> str:
        """E.g. ``0–4 999 and ≥ 100 000``."""

        def fmt(x: int) -> str:
            return f"{x:,}".replace(",", " ")

        parts = [
            f"≥ {fmt(lo)}" if hi is None else f"{fmt(lo)}–{fmt(hi - 1)}"
            for lo, hi in self.intervals
        ]
        return " and ".join(parts)


TRAINING = SeedRange("training", ((0, 5_000), (TRAINING_ENV_BASE, None)))
TUNING = SeedRange("tuning", ((5_000, 10_000),))
EVALUATION = SeedRange("evaluation", ((10_000, 20_000),))
RANGES: dict[str, SeedRange] = {r.name: r for r in (TRAINING, TUNING, EVALUATION)}


def evaluation_seeds(k: int) -> list[int]:
    """The first ``k`` evaluation seeds: 10 000 … 10 000 + k − 1."""
    return EVALUATION.first(k)


def tuning_seeds(k: int) -> list[int]:
    """The first ``k`` tuning seeds: 5 000 … 5 000 + k − 1."""
    return TUNING.first(k)


def training_env_seed(seed: int, worker: int) -> int:
    """Env seed of rollout ``worker`` of a training run seeded ``seed``.

    ``100 000 + 1 000 · seed + worker``: in the training range whatever ``seed`` is, and
    distinct for every (seed, worker) with ``0 ≤ worker < 1 000``.
    """
    if seed < 0:
        raise ValueError(f"training seed must be >= 0, got {seed}")
    if not 0 <= worker < MAX_WORKERS:
        raise ValueError(f"worker index must be in [0, {MAX_WORKERS}), got {worker}")
    return TRAINING_ENV_BASE + MAX_WORKERS * seed + worker


def check_range(seeds: Iterable[int], kind: str | SeedRange) -> list[int]:
    """``seeds`` as a list if all lie in range ``kind`` (training, tuning, evaluation);
    otherwise a ValueError naming the offending seeds and the range."""
    rng = kind if isinstance(kind, SeedRange) else RANGES.get(kind)
    if rng is None:
        raise ValueError(f"unknown seed range {kind!r}; expected one of {sorted(RANGES)}")
    seeds = [int(s) for s in seeds]
    bad = [s for s in seeds if s not in rng]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", …" if len(bad) > 5 else "")
        raise ValueError(
            f"seeds {shown} are outside the {rng.name} range "
            f"({rng.describe()}); see linkadapt.seeds"
        )
    return seeds


def parse_seeds(spec: str, kind: str = "evaluation") -> list[int]:
    """A CLI seed spec: ``"5"`` → the first 5 seeds of range ``kind``; ``"3,7,11"`` → that
    list as given (explicit lists are not range-checked here). ValueError if malformed."""
    spec = spec.strip()
    try:
        if "," in spec:
            seeds = [int(s) for s in spec.split(",") if s.strip()]
            if not seeds:
                raise ValueError
            return seeds
        n = int(spec)
    except ValueError:
        raise ValueError(f"seeds: expected a count or a comma list, got {spec!r}") from None
    if n < 1:
        raise ValueError("seeds: the count must be >= 1")
    return RANGES[kind].first(n)
