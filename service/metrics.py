"""All Prometheus metrics of the xApp, in one registry per service instance.

Conventions: prefix ``ran_distill_``, base units (seconds, bytes), ``_total`` counters,
``_info`` for the model, latency buckets 10 µs … 100 ms, and never a UE id as a label
(cells are bounded, UEs are not). Hot-path updates are one call per request, never per
UE: per-UE quantities (the MCS histogram) are accumulated with numpy and exposed by a
custom collector at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "ran_distill"
LATENCY_BUCKETS = (
    10e-6,
    20e-6,
    50e-6,
    100e-6,
    200e-6,
    500e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    20e-3,
    50e-3,
    100e-3,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
STAGES = ("queue_wait", "state_features", "inference", "shadow", "total")
# ran_distill_shadow_window{quantity}: the windowed shadow-comparison values
SHADOW_WINDOW_QUANTITIES = (
    "agreement",
    "agreement_within_one",
    "mean_mcs_difference",
    "predicted_throughput_change",
    "predicted_first_tx_bler_change",
)
# Cells with per-cell series (the MCS histogram, outcome KPIs): bounds label cardinality.
# The default of the ``max_kpi_cells`` setting.
MAX_KPI_CELLS = 4096
CONTENT_TYPE = CONTENT_TYPE_LATEST

# `_created` series double the exposition and carry no information for this service.
disable_created_metrics()


class _CellMcsCollector:
    """Per-cell histogram of decided MCS indices, accumulated with ``np.bincount``."""

    def __init__(self, n_mcs: int, max_cells: int) -> None:
        self.n_mcs = n_mcs
        self.max_cells = max_cells
        self._counts: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def add(self, cell_id: int, mcs: np.ndarray) -> None:
        counts = np.bincount(mcs, minlength=self.n_mcs)[: self.n_mcs]
        with self._lock:
            acc = self._counts.get(cell_id)
            if acc is None:
                if len(self._counts) >= self.max_cells:
                    return  # bounded label cardinality (max_kpi_cells)
                self._counts[cell_id] = counts.astype(np.int64)
            else:
                acc += counts

    def retain(self, cells: Any) -> None:
        """Drop the histograms of cells not in ``cells`` (cells left with no tracked UE),
        so the ``max_cells`` places free up again."""
        with self._lock:
            for cell in [c for c in self._counts if c not in cells]:
                del self._counts[cell]

    def collect(self) -> Iterator[Metric]:
        fam = HistogramMetricFamily(
            f"{PREFIX}_cell_mcs",
            "MCS index decided per UE and slot, per cell (le = highest MCS index in bucket)",
            labels=["cell"],
        )
        with self._lock:
            items = [(c, v.copy()) for c, v in sorted(self._counts.items())]
        for cell, counts in items:
            cum = np.cumsum(counts)
            buckets = [(str(float(i)), float(cum[i])) for i in range(self.n_mcs)]
            buckets.append(("+Inf", float(cum[-1])))
            total = float(np.dot(counts, np.arange(self.n_mcs)))
            fam.add_metric([str(cell)], buckets, total)
        yield fam


class ServiceMetrics:
    """The xApp's metrics; create one per service instance (own registry)."""

    def __init__(self, n_mcs: int = 28, max_cells: int = MAX_KPI_CELLS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        p = PREFIX
        self.decisions = Counter(
            f"{p}_decisions",
            "UE MCS decisions by the policy that produced them",
            ["source"],
            registry=r,
        )
        self.decisions_model = self.decisions.labels("model")
        self.decisions_fallback = self.decisions.labels("fallback")
        self.requests = Counter(
            f"{p}_requests", "Requests received", ["protocol", "method"], registry=r
        )
        self.invalid_requests = Counter(
            f"{p}_invalid_requests",
            "Requests rejected, by protocol, reason and offending field",
            ["protocol", "reason", "field"],
            registry=r,
        )
        self.batch_size = Histogram(
            f"{p}_batch_size_ues", "UEs per decide request", buckets=BATCH_BUCKETS, registry=r
        )
        self.microbatch_size = Histogram(
            f"{p}_inference_batch_size_ues",
            "UEs per onnxruntime call (after micro-batching)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.microbatch_requests = Histogram(
            f"{p}_inference_batch_requests",
            "Requests coalesced per onnxruntime call",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
            registry=r,
        )
        latency = Histogram(
            f"{p}_stage_latency_seconds",
            "Server-side latency per decide request, by stage "
            "(queue_wait: micro-batch wait; state_features: validation, history update, "
            "encoding, OLLA; inference: onnxruntime; total: whole request; shadow, per "
            "inference group with a candidate: its onnxruntime call and the comparison)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = {stage: latency.labels(stage) for stage in STAGES}
        self.tracked_ues = Gauge(f"{p}_tracked_ues", "UEs with per-UE state", registry=r)
        self.tracked_ues_limit = Gauge(
            f"{p}_tracked_ues_limit", "Hard cap on tracked UEs (max_tracked_ues)", registry=r
        )
        self.ue_capacity_rejections = Counter(
            f"{p}_ue_capacity_rejections",
            "Decide requests refused because they alone carry more UEs than max_ues_per_cell",
            registry=r,
        )
        self.ues_expired = Counter(f"{p}_ues_expired", "UEs forgotten after idle TTL", registry=r)
        self.ues_evicted = Counter(
            f"{p}_ues_evicted",
            "Least recently seen UEs forgotten to admit new ones; reason cell_quota: their "
            "cell was at max_ues_per_cell, capacity: the table was at max_tracked_ues",
            ["reason"],
            registry=r,
        )
        for reason in ("cell_quota", "capacity"):
            self.ues_evicted.labels(reason)
        self.ues_released = Counter(f"{p}_ues_released", "UEs released by the gNB", registry=r)
        self.model_info = Info(f"{p}_model", "Serving model (version '' = none)", registry=r)
        self.model_parameters = Gauge(
            f"{p}_model_parameters", "Parameter count of the serving model", registry=r
        )
        self.model_loaded = Gauge(
            f"{p}_model_loaded", "1 when a validated model serves, 0 in fallback", registry=r
        )
        self.reloads = Counter(
            f"{p}_model_reloads", "Model (re)load attempts by result", ["result"], registry=r
        )
        self.inference_errors = Counter(
            f"{p}_inference_errors", "onnxruntime failures (decisions fell back)", registry=r
        )
        self.ready = Gauge(f"{p}_ready", "1 when ready to serve", registry=r)
        # overload (docs/service.md "Limits and overload")
        self.shed_requests = Counter(
            f"{p}_shed_requests",
            "Requests dropped without being processed, by reason (queue_full: admission "
            "bound reached; deadline: gRPC deadline passed while queued; stale: slot more "
            "than max_slot_lag behind the cell's newest)",
            ["reason"],
            registry=r,
        )
        self.queued_requests = Gauge(
            f"{p}_queued_requests",
            "Decide/release requests admitted, not yet answered",
            registry=r,
        )
        self.queued_ues = Gauge(
            f"{p}_queued_ues",
            "UEs (estimated) in requests admitted, not yet answered",
            registry=r,
        )
        self.queue_limit = Gauge(
            f"{p}_queue_limit",
            "Admission bounds (max_queued_requests, max_queued_ues)",
            ["resource"],
            registry=r,
        )
        self.stream_pending = Gauge(
            f"{p}_stream_pending_messages",
            "DecideStream messages read and not yet answered, all streams "
            "(each stream holds at most stream_max_in_flight)",
            registry=r,
        )
        self.open_streams = Gauge(f"{p}_open_streams", "Open DecideStream calls", registry=r)
        self.kpi_cells = Gauge(
            f"{p}_kpi_cells",
            "Cells with per-cell outcome KPI series (max_kpi_cells)",
            registry=r,
        )
        # per-cell KPIs from outcome reports
        self.cell_delivered_bytes = Counter(
            f"{p}_cell_delivered_bytes",
            "Bytes delivered (outcome reports; bits / 8)",
            ["cell"],
            registry=r,
        )
        self.cell_first_tx = Counter(
            f"{p}_cell_first_transmissions",
            "First HARQ transmissions reported",
            ["cell"],
            registry=r,
        )
        self.cell_first_tx_nack = Counter(
            f"{p}_cell_first_transmission_nacks",
            "First HARQ transmissions reported NACK",
            ["cell"],
            registry=r,
        )
        self.cell_throughput = Gauge(
            f"{p}_cell_throughput_bytes_per_second",
            "Cell throughput over the last KPI window (slots-based time)",
            ["cell"],
            registry=r,
        )
        self.cell_ue_throughput = Gauge(
            f"{p}_cell_ue_throughput_bytes_per_second",
            "Mean per-UE throughput over the last KPI window",
            ["cell"],
            registry=r,
        )
        self.cell_bler = Gauge(
            f"{p}_cell_first_tx_bler_ratio",
            "First-transmission BLER over the last KPI window",
            ["cell"],
            registry=r,
        )
        self.cell_throughput_deviation = Gauge(
            f"{p}_cell_throughput_deviation_ratio",
            "Live mean per-UE throughput / manifest reference - 1, per scenario",
            ["cell", "scenario"],
            registry=r,
        )
        self.cell_bler_deviation = Gauge(
            f"{p}_cell_first_tx_bler_deviation_ratio",
            "Live first-tx BLER minus the manifest reference BLER (absolute), per scenario",
            ["cell", "scenario"],
            registry=r,
        )
        self.kpi_cells_dropped = Counter(
            f"{p}_kpi_cells_dropped",
            "Outcome reports of cells beyond the per-cell series cap (max_kpi_cells)",
            registry=r,
        )
        self._shadow_metrics(r)
        self.cell_mcs = _CellMcsCollector(n_mcs, max_cells)
        r.register(self.cell_mcs)
        self.started = Gauge(f"{p}_start_time_seconds", "Unix time the service started", registry=r)
        self.started.set(time.time())

    def _shadow_metrics(self, r: CollectorRegistry) -> None:
        """The candidate, its shadow comparison with the active model, promotions."""
        p = PREFIX
        self.candidate_info = Info(
            f"{p}_candidate", "Shadow candidate model (version '' = none)", registry=r
        )
        self.candidate_loaded = Gauge(
            f"{p}_candidate_loaded", "1 while a candidate model runs in shadow", registry=r
        )
        self.candidate_loads = Counter(
            f"{p}_candidate_loads", "Candidate load attempts by result", ["result"], registry=r
        )
        self.promotions = Counter(
            f"{p}_model_promotions",
            "Candidates made active, by trigger (admin call or automatic)",
            ["trigger"],
            registry=r,
        )
        self.rollbacks = Counter(
            f"{p}_model_rollbacks", "Rollbacks to the previous model", registry=r
        )
        self.shadow_decisions = Counter(
            f"{p}_shadow_decisions",
            "UE decisions the candidate made in shadow (compared with the active model's)",
            registry=r,
        )
        self.shadow_agreements = Counter(
            f"{p}_shadow_agreeing_decisions",
            "Shadow decisions agreeing with the active model's, by tolerance "
            "(exact: same MCS; one_mcs: within +-1 MCS)",
            ["tolerance"],
            registry=r,
        )
        self.shadow_inference_errors = Counter(
            f"{p}_shadow_inference_errors",
            "Candidate inference failures (non-finite rows or raised; decisions unaffected)",
            registry=r,
        )
        self.shadow_outcomes = Counter(
            f"{p}_shadow_outcomes",
            "Outcome rows (first transmissions) checked against shadowed decisions, by result "
            "(matched; unmatched: no shadowed decision of that cell, slot and UE; "
            "not_followed: the gNB sent another MCS than the active model's)",
            ["result"],
            registry=r,
        )
        window = Gauge(
            f"{p}_shadow_window",
            "Shadow comparison over the last full window of shadow_window_slots cell-slots "
            "(agreement, agreement_within_one: ratios; mean_mcs_difference: candidate - active; "
            "predicted_throughput_change: relative; predicted_first_tx_bler_change: absolute)",
            ["quantity"],
            registry=r,
        )
        self.shadow_window = {q: window.labels(q) for q in SHADOW_WINDOW_QUANTITIES}
        self.shadow_streak = Gauge(
            f"{p}_shadow_promotion_streak_slots",
            "Cell-slots of consecutive shadow windows inside the automatic-promotion bounds",
            registry=r,
        )

    def exposition(self) -> bytes:
        """Text exposition format (what ``/metrics`` returns)."""
        return generate_latest(self.registry)
