"""The data plane: one implementation behind both the gRPC and the REST adapters.

A facade over the modules that do the work: the adapters queue each request here
(:meth:`DataPlane.submit_raw`: raw protobuf, raw JSON or decoded columns) and await a
future. The micro-batcher (:mod:`service.batcher`) bounds admission and hands the queued
requests, in arrival order, to :class:`~service.decide.Decider`, which parses
(:mod:`service.wire`), validates (:mod:`service.validation`), admits to the per-UE state
(:mod:`service.state`), decides (linkadapt encoder, OLLA fallback, ONNX student from
:mod:`service.registry`) and serializes. Outcome reports feed the per-cell KPIs
(:mod:`service.kpis`) and the shadow comparison of a candidate model
(:mod:`service.shadow`), which the admin calls load, promote and roll back. With
``state_handover_url``, :mod:`service.state_handover` hooks into the decider and the worker
(restore on a cell's first sight, snapshot on drain). Every refusal is a
:class:`~service.errors.RequestError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from service.batcher import MicroBatcher
from service.config import Settings
from service.decide import Decider, DecideResult
from service.errors import SHED_REASONS, FailedPrecondition, InvalidArgument
from service.kpis import KpiTracker
from service.metrics import ServiceMetrics
from service.outcomes import OutcomeFolder
from service.registry import LoadedModel, ModelRegistry
from service.shadow import Shadow
from service.state import UeStateTable
from service.state_handover import make_handover
from service.validation import RequestValidator
from service.wire import RequestKind, estimate_ues

log = logging.getLogger("service.dataplane")

INITIAL_UE_ROWS = 4096  # per-UE state rows allocated at start; grows to max_tracked_ues


class DataPlane:
    """Model registry + per-UE state + micro-batched inference + KPIs, with a lifecycle
    (``await start()`` … ``await stop()``) and readiness."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics | None = None) -> None:
        s = self.settings = settings
        self.validator = RequestValidator(s.mcs_table, s.max_batch_ues)
        m = self.metrics = metrics or ServiceMetrics(self.validator.n_mcs, s.max_kpi_cells)
        self.registry = ModelRegistry(
            s.model_dir,
            mcs_table=s.mcs_table,
            intra_op_threads=s.ort_intra_op_threads,
            inter_op_threads=s.ort_inter_op_threads,
            warmup_max=s.microbatch_max_ues,
            metrics=m,
        )
        self.state = UeStateTable(
            max_tracked=s.max_tracked_ues,
            ttl_seconds=s.ue_ttl_seconds,
            mcs_table=s.mcs_table,
            olla_bler_target=s.olla_bler_target,
            olla_delta_up_db=s.olla_delta_up_db,
            initial_capacity=min(s.max_tracked_ues, INITIAL_UE_ROWS),
            max_per_cell=s.max_ues_per_cell,
        )
        self.shadow = Shadow.from_settings(self.registry, m, s, self._request_promotion)
        self.decider = Decider(
            self.state,
            self.registry,
            self.validator,
            m,
            max_group_ues=s.microbatch_max_ues,
            max_slot_lag=s.max_slot_lag,
            shadow=self.shadow,
        )
        self._shed = {reason: m.shed_requests.labels(reason) for reason in SHED_REASONS}
        # per-cell state handover through Redis (None: off): restores in the decider's
        # admission, snapshots through the worker
        self.handover = make_handover(s, m)
        self.batcher = MicroBatcher(
            self.decider.process if self.handover is None else self.handover.attach(self.decider),
            max_ues=s.microbatch_max_ues,
            max_wait_s=s.microbatch_max_wait_us * 1e-6,
            max_queued_requests=s.max_queued_requests,
            max_queued_ues=s.max_queued_ues,
            inline=not s.inference_thread,
            count_shed=self.count_shed,
        )
        self.kpis = KpiTracker(
            m,
            max_cells=s.max_kpi_cells,
            window_slots=s.kpi_window_slots,
            ttl_seconds=s.ue_ttl_seconds,
            reference_kpis=self._reference_kpis,
            reference_scenario=s.reference_scenario,
        )
        # outcome reports: validated and folded in their own thread (service.outcomes)
        self.outcomes = OutcomeFolder(self.validator, self.kpis, self.shadow, self.count_shed)
        self.started = False
        self.draining = False
        # DecideStream accounting, kept by the gRPC adapter: messages read and not yet
        # answered (all streams), the largest such count one stream ever had, open streams
        self.stream_pending = 0
        self.stream_pending_peak = 0
        self.open_streams = 0
        self._ready_listeners: list[Callable[[bool], None]] = []
        self._published_ready = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._promotions: set[asyncio.Future[None]] = set()
        self._lat_total = m.latency["total"]
        # gauges read at scrape time: nothing on the hot path
        m.tracked_ues_limit.set(s.max_tracked_ues)
        m.queued_requests.set_function(lambda: self.batcher.in_flight)
        m.queued_ues.set_function(lambda: self.batcher.queued_ues)
        m.queue_limit.labels("requests").set(s.max_queued_requests)
        m.queue_limit.labels("ues").set(s.max_queued_ues)
        m.stream_pending.set_function(lambda: self.stream_pending)
        m.open_streams.set_function(lambda: self.open_streams)

    @property
    def in_flight(self) -> int:
        """Decide/release requests admitted and not yet answered."""
        return self.batcher.in_flight

    @property
    def queued_ues(self) -> int:
        """Estimated UEs of the requests in :attr:`in_flight`."""
        return self.batcher.queued_ues

    # ------------------------------------------------------------------ lifecycle
    @property
    def ready(self) -> bool:
        """Serving: started (model loaded or fallback confirmed, warmed up), not draining,
        and, with ``require_model``, a validated model loaded."""
        return self.readiness() == "ready"

    def readiness(self) -> str:
        """Readiness: "ready", "starting", "draining" or "no_model" (``require_model`` and
        no validated model: the OLLA fallback still answers, but this replica should get no
        traffic)."""
        if self.draining:
            return "draining"
        if not self.started:
            return "starting"
        if self.settings.require_model and self.registry.current is None:
            return "no_model"
        return "ready"

    def add_ready_listener(self, fn: Callable[[bool], None]) -> None:
        """Call ``fn(ready)`` on the event loop whenever readiness changes (gRPC health)."""
        self._ready_listeners.append(fn)

    def _update_ready(self) -> None:
        ready = self.ready
        self.metrics.ready.set(1 if ready else 0)
        if ready != self._published_ready:
            self._published_ready = ready
            for fn in self._ready_listeners:
                fn(ready)

    async def start(self) -> None:
        """Load the model (in a worker thread), warm up, start the worker and the TTL
        sweep / model poll tasks; then ready."""
        loop = self._loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.registry.reload)
        if self.settings.candidate_model_dir:  # a refused one is logged, counted, reported
            with contextlib.suppress(InvalidArgument):
                await self.admin(
                    self.shadow.load_candidate, self.settings.candidate_model_dir, from_api=False
                )
        self.decider.warm_up()
        self.batcher.start(loop)
        self._tasks.append(asyncio.create_task(self._ttl_loop(), name="ttl-sweep"))
        if self.settings.reload_poll_seconds > 0:
            self._tasks.append(asyncio.create_task(self._poll_loop(), name="model-poll"))
        self.started = True
        self._update_ready()
        log.info(
            "data plane started",
            extra={"model": self.registry.info()["version"] or None, "ready": self.readiness()},
        )

    def begin_drain(self) -> None:
        """Stop reporting ready (SIGTERM); requests in flight still complete. With state
        handover, the worker then writes every held cell to Redis (in order with the
        requests, never shed; :meth:`wait_idle` waits for it), and each cell it decides
        for while draining again before answering."""
        self.draining = True
        self._update_ready()
        if self.handover is not None and self.started:
            fut = self.batcher.submit("handover", None, 0, bounded=False)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight (bounded by ``timeout`` s); True if idle."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight == 0

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.batcher.stop()
        self.outcomes.stop()
        self.started = False
        self._update_ready()

    async def _ttl_loop(self) -> None:
        period = min(1.0, self.settings.ue_ttl_seconds / 2)
        while True:
            await asyncio.sleep(period)
            self.expire_idle()

    def expire_idle(self) -> int:
        """Forget idle UEs (and the per-cell state of cells left with none) and the KPI
        series of cells with no outcome report for ``ue_ttl_seconds``; returns the UEs."""
        now = time.monotonic()
        n = self.decider.expire(now)
        with self.decider.lock:  # the worker's admissions expire and evict too
            forgotten = self.state.take_forgotten()
        n_all = n + forgotten.pop("expired")
        if n_all:
            self.metrics.ues_expired.inc(n_all)
            log.info("expired idle UEs", extra={"count": n_all})
        for reason, k in forgotten.items():
            if k:
                self.metrics.ues_evicted.labels(reason).inc(k)
                log.info("evicted UEs", extra={"count": k, "reason": reason})
        self.metrics.tracked_ues.set(self.state.n_tracked)
        self.outcomes.expire(now)
        return n

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_poll_seconds)
            try:
                if self.registry.changed():
                    log.info("model files changed, reloading")
                    await self.reload_model()
            except Exception:  # never let the poller die
                log.exception("model poll failed")

    async def reload_model(self) -> tuple[bool, str]:
        """Reload the configured model directory (in a worker thread): (ok, error)."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, self.registry.reload)
        self._update_ready()
        return result

    # ------------------------------------------------------------------ shadow candidate
    async def admin(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a model admin operation (``shadow.load_candidate`` / ``unload_candidate`` /
        ``promote`` / ``rollback``) in a worker thread, then refresh readiness."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
        finally:
            self._update_ready()

    def _request_promotion(self, candidate: LoadedModel) -> None:
        """Inference worker: automatic promotion of ``candidate`` is due. It runs from the
        event loop in a worker thread, never in the inference worker (a swap waits for a
        reload in progress)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._start_promotion, candidate)

    def _start_promotion(self, candidate: LoadedModel) -> None:
        task = asyncio.ensure_future(self._auto_promote(candidate))
        self._promotions.add(task)  # keep a reference until done
        task.add_done_callback(self._promotions.discard)

    async def _auto_promote(self, candidate: LoadedModel) -> None:
        try:
            await self.admin(self.shadow.promote, "auto", candidate)
        except FailedPrecondition:  # replaced or unloaded meanwhile
            log.info("automatic promotion skipped: the candidate changed")

    def _reference_kpis(self) -> dict[str, dict[str, float]]:
        model = self.registry.current
        return model.reference_kpis if model is not None else {}

    def model_info(self) -> dict[str, Any]:
        """The serving model, the last reload outcome and the shadow candidate
        (``GetModel`` / ``GET /v1/model``)."""
        return {**self.registry.info(), "candidate": self.shadow.info()}

    # ------------------------------------------------------------------ requests
    def submit_raw(
        self,
        kind: RequestKind,
        payload: Any,
        deadline: float | None = None,
        cell_hint: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one decide (or release) request untouched (event-loop thread, cheap).

        Parsing, validation, admission, the decision and the response encoding happen in
        the inference worker, in arrival order; a refused request changes nothing.

        Input
        -----
        kind : "pb", "json", "cols" or "release"
            ``payload`` is a serialized ``DecideRequest``, a REST body, (cell_id, slot,
            mcs_table, columns) or (cell_id, ue_ids).
        payload : bytes or tuple
        deadline : float or None
            ``time.perf_counter()`` time (the gRPC deadline) after which a still-queued
            request is dropped.
        cell_hint : int or None
            The ``x-ran-cell-id`` the request was routed by (:mod:`service.cell_affinity`):
            the body's ``cell_id`` must equal it, else :class:`~service.errors.InvalidArgument`
            on ``cell_id`` (checked in the worker, before admission).

        Output
        ------
        future : asyncio.Future
            A :class:`~service.decide.DecideResult` (``mcs`` int32 [n], ``source`` uint8
            [n], ``wire`` the response bytes for "pb"/"json"); for "release" the number
            of UEs released.

        Raises
        ------
        RequestError
            On the future: :class:`~service.errors.InvalidArgument` naming the field,
            :class:`~service.errors.ResourceExhausted` (tracked-UE cap),
            :class:`~service.errors.Overloaded` (at once: admission bound),
            :class:`~service.errors.DeadlineExceeded`, :class:`~service.errors.Stale`,
            :class:`~service.errors.InternalError` (a bug; this request only).
        """
        return self.batcher.submit(kind, payload, estimate_ues(kind, payload), deadline, cell_hint)

    def check_admission(self, kind: RequestKind, payload: Any) -> None:
        """The admission check alone, for an adapter to run first thing in its handler:
        :class:`~service.errors.Overloaded` (counted as shed, "queue_full") when
        :meth:`submit_raw` would shed ``payload`` now. A shed request costs the server what
        gRPC / HTTP charge per call and nothing more: no metadata, deadline, authorization
        or body is looked at (REST passes ``b""`` before reading the body: refused only
        when the queue is full whatever the body's size)."""
        if self.batcher.full(estimate_ues(kind, payload)):
            raise self.batcher.shed()

    def submit(
        self, cell_id: int, slot: int, mcs_table: int, columns: dict[str, Any]
    ) -> asyncio.Future[Any]:
        """Queue the reports of the UEs of one cell for one slot (in-process caller).

        Input
        -----
        cell_id, slot : int
        mcs_table : int
            0 (the served table) or the served table.
        columns : dict[str, array-like of int]
            The :data:`~service.wire.DECIDE_COLUMNS`, each [n].

        Output
        ------
        future : asyncio.Future[DecideResult]
            ``mcs`` int32 [n] and ``source`` uint8 [n] in request order.

        Raises
        ------
        RequestError
            On the future, as :meth:`submit_raw`.
        """
        return self.submit_raw("cols", (cell_id, slot, mcs_table, columns))

    async def decide(
        self, cell_id: int, slot: int, mcs_table: int, columns: dict[str, Any]
    ) -> DecideResult:
        """:meth:`submit` and await the decisions."""
        result: DecideResult = await self.submit(cell_id, slot, mcs_table, columns)
        return result

    async def release(self, cell_id: Any, ue_ids: Any) -> int:
        """Forget UEs of one cell, in arrival order with the decide requests (the same
        queue: a release never overtakes a decision for the same UE sent before it).

        Input
        -----
        cell_id : int
        ue_ids : array-like of int [n]
            Distinct UEs tracked in ``cell_id``.

        Output
        ------
        released : int

        Raises
        ------
        RequestError
            :class:`~service.errors.InvalidArgument` naming ``cell_id`` / ``ue_id`` (bad,
            or not tracked: nothing changed), :class:`~service.errors.Overloaded`.
        """
        released: int = await self.submit_raw("release", (cell_id, ue_ids))
        return released

    def report_outcome(
        self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: Any = 0
    ) -> int:
        """Fold one slot's delivered bits / first-transmission ACKs into the cell's KPIs.

        Input
        -----
        cell_id, slot : int
        columns : dict[str, array-like of int]
            ``ue_id``, ``delivered_bits`` (bits), ``first_tx_ack`` (1 / 0 / -1), optional
            ``mcs``; each [n].
        slot_us : int
            Slot duration in µs (0: 500).

        Output
        ------
        accepted : int
            UEs in the report.

        Raises
        ------
        InvalidArgument
            Naming the first bad field; nothing is counted.
        """
        return self.outcomes.fold(cell_id, slot, columns, slot_us)

    async def report_outcome_async(
        self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: Any = 0
    ) -> int:
        """:meth:`report_outcome` in the outcome thread (what the adapters call; see
        :meth:`service.outcomes.OutcomeFolder.submit`)."""
        return await self.outcomes.submit(cell_id, slot, columns, slot_us)

    def count_shed(self, reason: str) -> None:
        """A request was dropped unprocessed (one of :data:`~service.errors.SHED_REASONS`)."""
        self._shed[reason].inc()

    def observe_total(self, seconds: float) -> None:
        """Adapters report the whole request time (parse → serialize)."""
        self._lat_total.observe(seconds)
