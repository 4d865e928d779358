"""Live per-cell KPIs from outcome reports, and their deviation from the model's promise.

Each cell's state is fixed-size (counters, the current ``kpi_window_slots`` window, at
most :data:`KPI_MAX_UES` UE ids) and there are at most ``max_kpi_cells`` cells: the cap is
checked before any labelled series exists, so a flood of made-up cell ids costs one
counter increment each. Cells silent for ``ue_ttl_seconds`` lose their series.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.metrics import ServiceMetrics

DEFAULT_SLOT_US = 500  # slot duration when a report leaves it 0 (30 kHz SCS)
# Distinct UEs remembered per cell and KPI window (for the per-UE throughput): the count
# saturates there, so a report flood with fresh UE ids cannot grow memory.
KPI_MAX_UES = 1024
_NO_UES = np.zeros(0, dtype=np.int64)

# {scenario: {kpi: value}} of the serving model (empty: no model or no reference)
ReferenceKpis = Callable[[], dict[str, dict[str, float]]]


@dataclass
class CellKpi:
    """One cell's live-KPI state: fixed size, whatever the reports repeat or contain."""

    counters: tuple[Any, Any, Any]  # delivered bytes, first tx, first-tx NACK (children)
    last_seen: float = 0.0  # monotonic time of the last report (idle cells are forgotten)
    start_slot: int = -1
    last_slot: int = -1
    bits: int = 0
    first_tx: int = 0
    nacks: int = 0
    slot_us: int = DEFAULT_SLOT_US
    ues: np.ndarray = field(default_factory=lambda: _NO_UES)  # sorted, unique
    scenarios: set[str] = field(default_factory=set)  # deviation series set for this cell

    def new_window(self) -> None:
        self.start_slot = self.last_slot = -1
        self.bits = self.first_tx = self.nacks = 0
        self.ues = _NO_UES


class KpiTracker:
    """Per-cell outcome KPIs, published as Prometheus series.

    Parameters
    ----------
    metrics : ServiceMetrics
        Where the per-cell series live.
    max_cells : int
        Cells with series at most (``max_kpi_cells``).
    window_slots : int
        Slots per KPI window (``kpi_window_slots``).
    ttl_seconds : float
        A cell with no report for this long loses its series.
    reference_kpis : Callable[[], dict[str, dict[str, float]]]
        The serving model's simulator KPIs per scenario (read at each window's end).
    reference_scenario : str
        Scenario compared with (``""``: the first one).
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        max_cells: int,
        window_slots: int,
        ttl_seconds: float,
        reference_kpis: ReferenceKpis,
        reference_scenario: str = "",
    ) -> None:
        self.metrics = metrics
        self.max_cells = max_cells
        self.window_slots = window_slots
        self.ttl_seconds = ttl_seconds
        self.reference_kpis = reference_kpis
        self.reference_scenario = reference_scenario
        self.cells: dict[int, CellKpi] = {}  # at most max_cells entries
        metrics.kpi_cells.set_function(lambda: len(self.cells))

    def fold(self, cell_id: int, slot: int, cols: dict[str, np.ndarray], slot_us: int) -> None:
        """Add one validated outcome report to its cell's window; publish a full window.

        Input
        -----
        cell_id, slot : int
        cols : dict[str, np.ndarray]
            ``ue_id``, ``delivered_bits`` (bits) and ``first_tx_ack`` (1 / 0 / -1), int64 [n].
        slot_us : int
            Slot duration in µs; 0 means :data:`DEFAULT_SLOT_US`.
        """
        m = self.metrics
        k = self.cells.get(cell_id)
        if k is None:
            # the cap is checked before any labelled series exists
            if len(self.cells) >= self.max_cells:
                m.kpi_cells_dropped.inc()
                return
            label = str(cell_id)
            k = self.cells[cell_id] = CellKpi(
                (
                    m.cell_delivered_bytes.labels(label),
                    m.cell_first_tx.labels(label),
                    m.cell_first_tx_nack.labels(label),
                )
            )
        k.last_seen = time.monotonic()
        bits = int(cols["delivered_bits"].sum())
        ack = cols["first_tx_ack"]
        first = int(np.count_nonzero(ack >= 0))
        nacks = int(np.count_nonzero(ack == 0))
        c_bytes, c_first, c_nack = k.counters
        c_bytes.inc(bits / 8)
        c_first.inc(first)
        c_nack.inc(nacks)
        if k.start_slot < 0:
            k.start_slot = slot
        k.start_slot = min(k.start_slot, slot)
        k.last_slot = max(k.last_slot, slot)
        k.bits += bits
        k.first_tx += first
        k.nacks += nacks
        k.slot_us = slot_us or DEFAULT_SLOT_US
        if k.ues.shape[0] < KPI_MAX_UES:
            k.ues = np.union1d(k.ues, cols["ue_id"])[:KPI_MAX_UES]
        span = k.last_slot - k.start_slot + 1
        if span >= self.window_slots:
            self._publish(cell_id, k, span)
            k.new_window()

    def _publish(self, cell_id: int, k: CellKpi, span: int) -> None:
        m = self.metrics
        label = str(cell_id)
        seconds = span * k.slot_us * 1e-6
        cell_bps = k.bits / seconds
        ue_bps = cell_bps / max(1, int(k.ues.shape[0]))
        m.cell_throughput.labels(label).set(cell_bps / 8)
        m.cell_ue_throughput.labels(label).set(ue_bps / 8)
        bler = k.nacks / k.first_tx if k.first_tx else None
        if bler is not None:
            m.cell_bler.labels(label).set(bler)
        reference = self.reference_kpis()
        if not reference:
            return
        scenario = self.reference_scenario or next(iter(reference))
        ref = reference.get(scenario)
        if not ref:
            return
        ref_tput = ref.get("throughput_mbps")
        if ref_tput:
            m.cell_throughput_deviation.labels(label, scenario).set(ue_bps / 1e6 / ref_tput - 1.0)
            k.scenarios.add(scenario)
        ref_bler = ref.get("bler", ref.get("first_tx_bler"))
        if ref_bler is not None and bler is not None:
            m.cell_bler_deviation.labels(label, scenario).set(bler - ref_bler)
            k.scenarios.add(scenario)

    def expire(self, now: float) -> int:
        """Remove the series of cells with no outcome report for ``ttl_seconds`` before
        ``now`` (monotonic), so their places free up again (a counter that comes back
        later restarts from 0, which Prometheus' rate() treats as a reset). Returns how
        many cells went."""
        idle = [c for c, k in self.cells.items() if k.last_seen < now - self.ttl_seconds]
        m = self.metrics
        for cell in idle:
            k = self.cells.pop(cell)
            label = str(cell)
            for metric in (
                m.cell_delivered_bytes,
                m.cell_first_tx,
                m.cell_first_tx_nack,
                m.cell_throughput,
                m.cell_ue_throughput,
                m.cell_bler,
            ):
                with contextlib.suppress(KeyError):
                    metric.remove(label)
            for scenario in k.scenarios:
                for metric in (m.cell_throughput_deviation, m.cell_bler_deviation):
                    with contextlib.suppress(KeyError):
                        metric.remove(label, scenario)
        return len(idle)
