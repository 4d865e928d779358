"""Outcome reports off the event loop: validated and folded into the per-cell KPIs
(:mod:`service.kpis`) and the shadow comparison (:mod:`service.shadow`) in one thread of
their own, in arrival order. Validation and folding are O(UEs) numpy work that used to run
on the event loop, in between the gRPC/REST I/O of every other request.

Bound: at most ``max_pending`` reports accepted and not yet folded in; beyond that a
report is shed at once (:class:`~service.errors.Overloaded`, counted as
``shed_requests_total{reason="queue_full"}``: gRPC RESOURCE_EXHAUSTED, HTTP 503). A report
stays counted until folded in, even if its caller gave up.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service.errors import Overloaded
from service.kpis import KpiTracker
from service.shadow import Shadow
from service.validation import RequestValidator

MAX_PENDING_OUTCOMES = 64


class OutcomeFolder:
    """The outcome thread, its bound, and the lock the KPI state shares with the TTL
    sweep (event loop)."""

    def __init__(
        self,
        validator: RequestValidator,
        kpis: KpiTracker,
        shadow: Shadow,
        count_shed: Callable[[str], None],
        max_pending: int = MAX_PENDING_OUTCOMES,
    ) -> None:
        self.validator, self.kpis, self.shadow = validator, kpis, shadow
        self.count_shed = count_shed
        self.max_pending = max_pending
        self.pending = 0  # accepted, not yet folded in (event-loop thread only)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="outcomes")
        self._kpi_lock = threading.Lock()

    def fold(self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: Any) -> int:
        """Validate one report and fold it in (any thread); returns its UEs.

        Raises :class:`~service.errors.InvalidArgument` naming the first bad field;
        nothing is counted then."""
        cols = self.validator.outcome(cell_id, slot, columns, slot_us)
        with self._kpi_lock:
            self.kpis.fold(cell_id, slot, cols, slot_us)
        self.shadow.fold_outcome(cell_id, slot, cols)  # thread-safe (its own lock)
        return int(cols["ue_id"].shape[0])

    async def submit(self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: Any) -> int:
        """:meth:`fold` in the outcome thread (event loop: only queues it)."""
        if self.pending >= self.max_pending:
            self.count_shed("queue_full")
            raise Overloaded(
                "request",
                f"overloaded: {self.pending} outcome reports pending "
                f"(max {self.max_pending}); retry later",
                "queue_full",
            )
        loop = asyncio.get_running_loop()
        self.pending += 1
        job = self._thread.submit(self.fold, cell_id, slot, columns, slot_us)
        # freed when folded in (outcome thread → event loop), not when the caller stops
        # waiting
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done))
        accepted: int = await asyncio.wrap_future(job)
        return accepted

    def _done(self) -> None:
        self.pending -= 1

    def expire(self, now: float) -> None:
        """The TTL sweep's part: KPI series of cells silent for ``ue_ttl_seconds``."""
        with self._kpi_lock:
            self.kpis.expire(now)

    def stop(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
