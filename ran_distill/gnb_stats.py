"""What the simulated gNB measures: decision latency, deadline misses, fallbacks, and the
per-cell outcome totals it reported to the xApp.

Everything here is fixed-size whatever the run length: latencies go into a log-spaced
histogram (1 % wide bins), per-cell tallies are arrays over the scenario's cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Latency histogram: bins 1 % wide from 1 µs; everything above ~100 s lands in the last bin.
_LAT_MIN_S = 1e-6
_LAT_RATIO = 1.01
_LAT_BINS = int(math.ceil(math.log(1e8) / math.log(_LAT_RATIO))) + 1
_LOG_RATIO = math.log(_LAT_RATIO)


class LatencyHistogram:
    """Decision latencies, log-spaced bins 1 % wide: percentiles within 1 %, bounded memory."""

    def __init__(self) -> None:
        self.counts = np.zeros(_LAT_BINS, np.int64)
        self.count = 0
        self.total_s = 0.0
        self.max_s = 0.0

    def add(self, seconds: float) -> None:
        b = 0 if seconds <= _LAT_MIN_S else int(math.log(seconds / _LAT_MIN_S) / _LOG_RATIO) + 1
        self.counts[min(b, _LAT_BINS - 1)] += 1
        self.count += 1
        self.total_s += seconds
        self.max_s = max(self.max_s, seconds)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in seconds (bin's geometric centre); NaN if empty."""
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile {q} outside [0, 100]")
        if self.count == 0:
            return float("nan")
        rank = max(1, math.ceil(q / 100.0 * self.count))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        if b == 0:
            return _LAT_MIN_S
        centre = _LAT_MIN_S * _LAT_RATIO ** (b - 0.5)
        return min(centre, self.max_s)

    def summary_ms(self) -> dict[str, float]:
        """p50 / p99 / p99.9 / mean / max in milliseconds, and the sample count."""
        return {
            "mean_ms": 1e3 * self.total_s / self.count if self.count else float("nan"),
            "p50_ms": 1e3 * self.percentile(50),
            "p99_ms": 1e3 * self.percentile(99),
            "p99_9_ms": 1e3 * self.percentile(99.9),
            "max_ms": 1e3 * self.max_s if self.count else float("nan"),
            "count": float(self.count),
        }


@dataclass
class CellTally:
    """What the gNB reported in ``ReportOutcome`` per cell (arrays indexed by sim cell)."""

    n_cells: int
    n_ues: int
    bits: np.ndarray = field(init=False)
    first_tx: np.ndarray = field(init=False)
    nacks: np.ndarray = field(init=False)
    first_slot: np.ndarray = field(init=False)
    last_slot: np.ndarray = field(init=False)
    seen: np.ndarray = field(init=False)  # bool [cells, ues]: UE appeared in the cell's reports

    def __post_init__(self) -> None:
        c = self.n_cells
        self.bits = np.zeros(c, np.int64)
        self.first_tx = np.zeros(c, np.int64)
        self.nacks = np.zeros(c, np.int64)
        self.first_slot = np.full(c, -1, np.int64)
        self.last_slot = np.full(c, -1, np.int64)
        self.seen = np.zeros((c, self.n_ues), bool)

    def add(
        self, cell: int, slot: int, ues: np.ndarray, bits: np.ndarray, first_ack: np.ndarray
    ) -> None:
        self.bits[cell] += int(bits.sum())
        self.first_tx[cell] += int(np.count_nonzero(first_ack >= 0))
        self.nacks[cell] += int(np.count_nonzero(first_ack == 0))
        if self.first_slot[cell] < 0:
            self.first_slot[cell] = slot
        self.last_slot[cell] = slot
        self.seen[cell, ues] = True

    def per_cell(self, slot_seconds: float) -> list[dict[str, float]]:
        """Per reporting cell: mean per-UE throughput over the cell's reported slots (the
        xApp's formula: bits / span / distinct UEs), first-tx BLER, and the raw totals."""
        out = []
        for c in range(self.n_cells):
            if self.first_slot[c] < 0:
                continue
            span = int(self.last_slot[c] - self.first_slot[c] + 1)
            ues = max(1, int(self.seen[c].sum()))
            out.append(
                {
                    "cell": float(c),
                    "ue_throughput_mbps": self.bits[c] / (span * slot_seconds) / ues / 1e6,
                    "first_tx_bler": (
                        self.nacks[c] / self.first_tx[c] if self.first_tx[c] else float("nan")
                    ),
                    "delivered_bits": float(self.bits[c]),
                    "first_tx": float(self.first_tx[c]),
                    "nacks": float(self.nacks[c]),
                    "slots": float(span),
                    "ues": float(ues),
                }
            )
        return out


@dataclass
class GnbStats:
    """Counters of one gNB run. "cell-slot" = one cell's message for one slot."""

    slots: int = 0
    cell_slots: int = 0
    answered_cell_slots: int = 0  # the xApp's answer arrived before the deadline
    late_cell_slots: int = 0  # connected, but the answer missed the deadline
    disconnected_cell_slots: int = 0  # no stream to the xApp: decided locally at once
    rejected_cell_slots: int = 0  # in-stream error (overload, stale, ...): decided locally
    deadline_missed_slots: int = 0  # slots where at least one cell's answer was late
    fallback_cell_slots: int = 0  # cell-slots decided by the gNB's own OLLA
    fallback_slots: int = 0  # slots where at least one cell was decided by the gNB's OLLA
    behind_schedule_slots: int = 0  # --realtime: the slot started after its due time
    decisions: int = 0  # new transmissions (MCS applied)
    decisions_xapp_model: int = 0
    decisions_xapp_fallback: int = 0  # the xApp answered with its own OLLA (no model)
    decisions_gnb_fallback: int = 0
    skew_checked: int = 0  # xApp model decisions compared with the in-process model
    skew_mismatches: int = 0
    outcomes_sent: int = 0
    outcomes_failed: int = 0
    outcomes_dropped: int = 0  # queue full while the xApp was unreachable
    releases_failed: int = 0
    reconnects: int = 0  # streams opened after the first one of their cell
    errors: dict[str, int] = field(default_factory=dict)  # in-stream errors by code
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def count_error(self, code: int) -> None:
        key = str(code)
        self.errors[key] = self.errors.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v for k, v in vars(self).items() if k not in ("latency", "errors")
        }
        out["errors"] = dict(self.errors)
        out["latency"] = self.latency.summary_ms()
        return out
