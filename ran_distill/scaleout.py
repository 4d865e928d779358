"""Scale-out checks: drive many cells through a cell-affine proxy and compare every
decision with a single reference replica fed the same reports (the proxy tests and
``benchmarks/service_scaleout.py`` share it).

A decision depends on the UE's history (HARQ/CQI ring buffers, ACK-rate averages, the OLLA
offset), so a replica that gets a cell without its history decides differently until the
history has rebuilt: :class:`Divergence` counts that, per group of cells.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from linkadapt.reports import ReportBatch

Decide = Callable[[ReportBatch, int, int], np.ndarray]  # (reports, cell, slot) -> MCS


class CellTraffic:
    """Deterministic, history-dependent reports for ``ues_per_cell`` UEs in each cell.

    Each UE has a slowly varying CQI (fresh every 4th slot, aged in between), HARQ
    feedback (85 % ACK, 10 % NACK, 5 % none; first transmissions) on the MCS the
    reference decided for it, rank and allocation of its own. Call :meth:`reports` for
    a (cell, slot), then :meth:`observe` with the reference's decisions for it.
    """

    def __init__(self, cells: Sequence[int], ues_per_cell: int, seed: int = 0) -> None:
        if ues_per_cell < 1 or not cells:
            raise ValueError("need at least one cell and one UE per cell")
        self.cells = list(cells)
        self.n = ues_per_cell
        self.rng = np.random.default_rng(seed)
        self.ue_ids = {
            c: np.arange(self.n, dtype=np.int64) + 1000 * (k + 1) for k, c in enumerate(self.cells)
        }
        self.base_cqi = {c: self.rng.integers(3, 15, self.n) for c in self.cells}
        self.rank = {c: self.rng.integers(1, 5, self.n) for c in self.cells}
        self.n_prb = {c: self.rng.integers(10, 273, self.n) for c in self.cells}
        self.last_mcs = {c: np.zeros(self.n, np.int64) for c in self.cells}
        self.cqi = {c: self.base_cqi[c].copy() for c in self.cells}

    def reports(self, cell: int, slot: int) -> ReportBatch:
        rng, n = self.rng, self.n
        age = slot % 4
        if age == 0:
            drift = rng.integers(-1, 2, n)
            self.cqi[cell] = np.clip(self.base_cqi[cell] + drift, 0, 15)
        u = rng.random(n)
        ack = np.where(u < 0.85, 1, np.where(u < 0.95, 0, -1))
        if slot == 0:
            ack[:] = -1
        return ReportBatch.from_arrays(
            cell_id=np.full(n, cell, np.int64),
            ue_id=self.ue_ids[cell],
            cqi=self.cqi[cell],
            cqi_age_slots=np.full(n, age),
            harq_ack=ack,
            harq_mcs=np.where(ack >= 0, self.last_mcs[cell], 0),
            rank=self.rank[cell],
            n_prb=self.n_prb[cell],
            n_symbols=np.full(n, 12),
            harq_tx_index=np.where(ack >= 0, 0, -1),
        )

    def observe(self, cell: int, mcs: np.ndarray) -> None:
        self.last_mcs[cell] = np.asarray(mcs, np.int64)


@dataclass
class Divergence:
    """Decisions compared with the reference, per group of cells."""

    decisions: dict[str, int] = field(default_factory=dict)
    differing: dict[str, int] = field(default_factory=dict)
    max_abs_delta: dict[str, int] = field(default_factory=dict)

    def add(self, group: str, got: np.ndarray, ref: np.ndarray) -> None:
        diff = np.abs(np.asarray(got, np.int64) - np.asarray(ref, np.int64))
        self.decisions[group] = self.decisions.get(group, 0) + int(diff.size)
        self.differing[group] = self.differing.get(group, 0) + int(np.count_nonzero(diff))
        top = int(diff.max()) if diff.size else 0
        self.max_abs_delta[group] = max(self.max_abs_delta.get(group, 0), top)

    def share(self, group: str) -> float:
        n = self.decisions.get(group, 0)
        return self.differing.get(group, 0) / n if n else 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            g: {
                "decisions": self.decisions[g],
                "differing": self.differing[g],
                "share": self.share(g),
                "max_abs_delta_mcs": self.max_abs_delta[g],
            }
            for g in sorted(self.decisions)
        }


def drive(
    traffic: CellTraffic,
    slots: Iterable[int],
    decide: Decide,
    reference: Decide,
    divergence: Divergence,
    group_of: Callable[[int, int], str],
) -> None:
    """For each slot and cell (in order): the same reports to ``decide`` (through the
    proxy) and ``reference``; the difference goes to ``divergence`` under
    ``group_of(cell, slot)``."""
    for slot in slots:
        for cell in traffic.cells:
            reports = traffic.reports(cell, slot)
            ref = reference(reports, cell, slot)
            got = decide(reports, cell, slot)
            traffic.observe(cell, ref)
            divergence.add(group_of(cell, slot), got, ref)


_CELL_SERIES = re.compile(r'^ran_distill_cell_mcs_count\{cell="(\d+)"\}', re.M)


def served_cells(http_base: str) -> set[int]:
    """Cells a replica has decided for (its per-cell MCS histogram series)."""
    with urllib.request.urlopen(f"{http_base}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {int(c) for c in _CELL_SERIES.findall(text)}
