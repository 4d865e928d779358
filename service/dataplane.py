"""The data plane: one implementation behind both the gRPC and the REST adapters.

The adapters only move bytes: they queue each decide request (raw protobuf, raw JSON or
decoded columns) with :meth:`DataPlane.submit_raw` and await a future. An inference worker
thread (or the event loop itself with ``inference_thread=false``) takes the queued requests
in arrival order and, per micro-batch (bounded by ``microbatch_max_ues`` and
``microbatch_max_wait_us``):

1. parses each request and validates it as a whole (nothing is touched before it passes;
   a refusal is a :class:`RequestError` naming the field, on that request's future only);
2. maps (cell, UE) to rows of the per-UE state (:mod:`service.state`);
3. folds all reports into the shared :class:`linkadapt.features.FeatureHistory`, encodes
   the observations with the linkadapt encoder, steps the OLLA fallback (always warm), runs
   the ONNX student once, and splits the decisions back per request, each saying whether
   the model or the fallback produced it;
4. serializes each response in its request's format.

Overload: admission is bounded (``max_queued_requests`` requests and ``max_queued_ues``
UEs admitted and not yet answered); beyond that a request is shed at once, before it is
queued. Requests whose gRPC deadline passed while queued, and decide requests more than
``max_slot_lag`` slots behind the newest slot seen for their cell, are dropped before
processing. Every shed request is counted in ``shed_requests_total{reason}``.

Errors carry a transport-neutral ``code`` that the adapters map to gRPC status codes /
HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from google.protobuf.message import DecodeError

from linkadapt.policy import DecisionBatch
from linkadapt.reports import (
    FIELD_RANGES,
    OPTIONAL_DEFAULTS,
    REPORT_DTYPES,
    ReportBatch,
    ReportError,
)
from service.cell_affinity import mismatch_message
from service.config import Settings
from service.metrics import ServiceMetrics
from service.proto_gen import link_adaptation_pb2 as pb
from service.registry import ModelRegistry, n_mcs_for_table
from service.state import CapacityError, UeStateTable, UnknownUeError
from service.state_handover import make_handover
from service.wire import encode_decide_response, request_columns

log = logging.getLogger("service.dataplane")

SOURCE_MODEL = 1  # == linkadapt.v1.DECISION_SOURCE_MODEL
SOURCE_FALLBACK = 2  # == linkadapt.v1.DECISION_SOURCE_FALLBACK
SOURCE_NAMES = {SOURCE_MODEL: "MODEL", SOURCE_FALLBACK: "FALLBACK"}

INVALID_ARGUMENT = "invalid_argument"
RESOURCE_EXHAUSTED = "resource_exhausted"
UNAVAILABLE = "unavailable"
UNAUTHENTICATED = "unauthenticated"
PERMISSION_DENIED = "permission_denied"
OVERLOADED = "overloaded"  # admission bound reached: gRPC RESOURCE_EXHAUSTED, HTTP 503
DEADLINE_EXCEEDED = "deadline_exceeded"  # the gRPC deadline passed while queued
STALE = "stale"  # slot too far behind its cell's newest: gRPC DEADLINE_EXCEEDED, HTTP 409
PAYLOAD_TOO_LARGE = "payload_too_large"  # REST body above http_max_body_bytes: HTTP 413
# refusals that say nothing about the request's content: counted as shed, not invalid
SHED_CODES = frozenset({OVERLOADED, DEADLINE_EXCEEDED, STALE})
SHED_REASONS = ("queue_full", "deadline", "stale", "cancelled")
RETRY_AFTER_SECONDS = 1  # REST Retry-After of a shed request

# columns of a decide request besides cell_id (which is per request)
DECIDE_COLUMNS = tuple(k for k in REPORT_DTYPES if k != "cell_id")
# optional columns (absent, null or empty → the default for every UE, see linkadapt.reports)
OPTIONAL_COLUMNS = tuple(OPTIONAL_DEFAULTS)
OUTCOME_COLUMNS = ("ue_id", "delivered_bits", "first_tx_ack", "mcs")
DEFAULT_SLOT_US = 500
_EMPTY_ROWS = np.zeros(0, dtype=np.int64)
# DecideRequest columns that must all have ue_id's length (the optional ones may be empty)
_LEN_CHECKED = ("cqi", "cqi_age_slots", "harq_ack", "harq_mcs", "rank", "n_prb", "n_symbols")
# A slot this far behind its cell's newest slot is taken as a restarted slot counter (a
# gNB restart), not as a late request: accepted, and the newest slot follows it. So a
# restart makes a cell's requests stale for at most about this many slots.
SLOT_RESET_LAG = 1024
# Distinct UEs remembered per cell and KPI window (for the per-UE throughput): the count
# saturates there, so a report flood with fresh UE ids cannot grow memory.
KPI_MAX_UES = 1024


class RequestError(Exception):
    """A request was refused; ``code`` is one of the module constants, ``field`` names the
    offending request field, ``reason`` is the metric label."""

    def __init__(self, code: str, field: str, message: str, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.code = code
        self.field = field
        self.message = message
        self.reason = reason or code


@dataclass
class DecideResult:
    """Decisions for one request, in request order."""

    cell_id: int
    slot: int
    mcs: np.ndarray  # int32 [n]
    source: np.ndarray  # uint8 [n], SOURCE_*
    model_version: str
    queue_wait: float = 0.0
    state_features: float = 0.0
    inference: float = 0.0
    wire: bytes | None = None  # the serialized DecideResponse, for protobuf requests


@dataclass
class _Request:
    """A decide request as received: ``kind`` "pb" (serialized ``DecideRequest``) or
    "json" (REST body), both parsed and answered in their format by the data plane, or
    "cols" ((cell_id, slot, mcs_table, columns) already decoded by the caller)."""

    kind: str
    payload: Any
    fut: asyncio.Future[DecideResult]
    t_submit: float
    deadline: float | None = None  # perf_counter() time after which nobody waits for it
    ues: int = 0  # estimated UEs, counted in DataPlane.queued_ues until answered
    cell_hint: int | None = None  # the routing header's cell id: must equal the body's


@dataclass
class _Item:
    cell_id: int
    slot: int
    reports: ReportBatch
    rows: np.ndarray
    new_rows: np.ndarray
    seq: int
    fut: asyncio.Future[DecideResult]
    t_submit: float
    kind: str = "cols"
    base: ReportBatch | None = None  # merged batch this item's reports are a slice of
    lo: int = 0
    hi: int = 0


@dataclass
class _CellKpi:
    """One cell's live-KPI state: fixed size (counters, the current window, at most
    :data:`KPI_MAX_UES` UE ids), whatever the reports repeat or contain."""

    counters: tuple[Any, Any, Any]  # delivered bytes, first tx, first-tx NACK (children)
    last_seen: float = 0.0  # monotonic time of the last report (idle cells are forgotten)
    start_slot: int = -1
    last_slot: int = -1
    bits: int = 0
    first_tx: int = 0
    nacks: int = 0
    slot_us: int = DEFAULT_SLOT_US
    ues: np.ndarray = field(default_factory=lambda: _EMPTY_ROWS)  # sorted, unique
    scenarios: set[str] = field(default_factory=set)  # deviation series set for this cell

    def new_window(self) -> None:
        self.start_slot = self.last_slot = -1
        self.bits = self.first_tx = self.nacks = 0
        self.ues = _EMPTY_ROWS


def as_int_column(name: str, value: Any) -> np.ndarray:
    """A JSON/protobuf value as a 1-D numpy array; :class:`ReportError` naming ``name``."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ReportError(name, f"not a 1-D array of integers ({exc})") from None
    if arr.ndim != 1:
        raise ReportError(name, "must be a 1-D array of integers")
    if arr.size and arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "b":
            raise ReportError(name, "must be integers, got booleans")
        raise ReportError(name, f"must be integers, got {arr.dtype}")
    return arr


_FAST_NAMES = tuple(k for k in REPORT_DTYPES if k != "cell_id")
_FAST_LO = np.array([[np.iinfo(REPORT_DTYPES[k]).min] for k in _FAST_NAMES], dtype=np.int64)
_FAST_HI = np.array([[np.iinfo(REPORT_DTYPES[k]).max] for k in _FAST_NAMES], dtype=np.int64)
_I64_MAX = int(np.iinfo(np.int64).max)
# ReportBatch.validate()'s ranges (harq_mcs: n_mcs - 1, per call)
_SEM_BOUNDS = FIELD_RANGES
_SEM_LO = np.array([[_SEM_BOUNDS[k][0]] for k in _FAST_NAMES], dtype=np.int64)
_CQI, _AGE = _FAST_NAMES.index("cqi"), _FAST_NAMES.index("cqi_age_slots")
_ACK, _HMCS = _FAST_NAMES.index("harq_ack"), _FAST_NAMES.index("harq_mcs")
_HTX = _FAST_NAMES.index("harq_tx_index")
_SEM_HI_CACHE: dict[int, np.ndarray] = {}


def _sem_hi(n_mcs: int) -> np.ndarray:
    hi = _SEM_HI_CACHE.get(n_mcs)
    if hi is None:
        vals = [_SEM_BOUNDS[k][1] for k in _FAST_NAMES]
        vals[_HMCS] = n_mcs - 1
        hi = _SEM_HI_CACHE[n_mcs] = np.array([[v] for v in vals], dtype=np.int64)
    return hi


def fast_report_batch(
    cell_id: int | np.ndarray, n: int, cols: dict[str, np.ndarray | None], n_mcs: int
) -> ReportBatch | None:
    """``ReportBatch.from_arrays`` for the common case, without its per-column passes.

    When every column is a 1-D ``int64`` array of length ``n``, one stacked comparison
    checks that the values fit the columns' dtypes and a second one checks the ranges of
    :meth:`ReportBatch.validate` (CQI only where a CQI exists, HARQ MCS and transmission
    index only where there is feedback). An optional column given as ``None`` (or left
    out) takes its default (-1) for every UE. Anything else, including any out-of-range
    value, returns ``None`` and the caller runs linkadapt's ``from_arrays``, which raises
    the precise :class:`ReportError`. ``tests/service/test_service_fastpath.py`` checks (property
    test) that this accepts exactly what ``from_arrays`` accepts, with identical arrays.
    """
    arrays = []
    for name in _FAST_NAMES:
        col = cols.get(name)
        if col is None:
            if name not in OPTIONAL_DEFAULTS:
                return None
            col = np.full(n, OPTIONAL_DEFAULTS[name], dtype=np.int64)
        if col.dtype != np.int64 or col.ndim != 1 or col.shape[0] != n:
            return None
        arrays.append(col)
    if n:
        stacked = np.stack(arrays)
        if (stacked < _FAST_LO).any() or (stacked > _FAST_HI).any():
            return None
        stacked[_CQI, stacked[_AGE] < 0] = 0  # ignored values are not range-checked
        no_fb = stacked[_ACK] < 0
        stacked[_HMCS, no_fb] = 0
        stacked[_HTX, no_fb] = 0
        if (stacked < _SEM_LO).any() or (stacked > _sem_hi(n_mcs)).any():
            return None
    fields = {
        name: col.astype(REPORT_DTYPES[name], copy=False)
        for name, col in zip(_FAST_NAMES, arrays, strict=True)
    }
    cells = cell_id if isinstance(cell_id, np.ndarray) else np.full(n, cell_id, dtype=np.int64)
    return ReportBatch(cell_id=cells, **fields)


def _request_ues(kind: str, payload: Any) -> int:
    """UE count of a request, for the micro-batch size bound and the admission bound
    (estimated from the size, never parsed on the event loop: ~9 protobuf bytes, ~40 JSON
    bytes per UE, so the estimate errs high)."""
    if kind in ("release", "handover"):
        return 0
    if kind == "pb":
        return max(1, len(payload) // 9)
    if kind == "json":
        return max(1, len(payload) // 40)
    ue = payload[3].get("ue_id") if isinstance(payload[3], dict) else None
    return len(ue) if hasattr(ue, "__len__") else 1


def parse_decide_request(raw: bytes) -> Any:
    """A serialized ``DecideRequest``; malformed bytes → INVALID_ARGUMENT on ``request``."""
    try:
        return pb.DecideRequest.FromString(raw)
    except (DecodeError, RuntimeError) as exc:
        raise RequestError(
            INVALID_ARGUMENT, "request", f"malformed DecideRequest ({exc})", "malformed"
        ) from None


SOURCE_JSON = np.array(
    ["DECISION_SOURCE_UNSPECIFIED", "DECISION_SOURCE_MODEL", "DECISION_SOURCE_FALLBACK"]
)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON request body (orjson); malformed → INVALID_ARGUMENT on ``body``.

    On the error path only, the stdlib parser is tried too: it accepts NaN/Infinity
    literals, so such a value is reported against its field instead of ``body``.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise RequestError(
                INVALID_ARGUMENT, "body", f"malformed JSON ({exc})", "malformed"
            ) from None
    if not isinstance(doc, dict):
        raise RequestError(INVALID_ARGUMENT, "body", "must be a JSON object", "malformed")
    return doc


def json_int_field(doc: dict[str, Any], name: str, default: int = 0) -> int:
    """An optional integer field of a JSON request (absent/null → ``default``)."""
    v = doc.get(name, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool):
        raise RequestError(INVALID_ARGUMENT, name, f"must be an integer, got {v!r}")
    return v


def encode_decide_json(res: DecideResult) -> bytes:
    """The REST response body of a decision."""
    return orjson.dumps(
        {
            "cell_id": res.cell_id,
            "slot": res.slot,
            "mcs": res.mcs,
            "source": SOURCE_JSON[res.source].tolist(),
            "model_version": res.model_version,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


class DataPlane:
    """Model registry + per-UE state + micro-batched inference + KPIs."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.n_mcs = n_mcs_for_table(settings.mcs_table)
        self.metrics = metrics or ServiceMetrics(self.n_mcs, max_cells=settings.max_kpi_cells)
        self.registry = ModelRegistry(
            settings.model_dir,
            mcs_table=settings.mcs_table,
            intra_op_threads=settings.ort_intra_op_threads,
            inter_op_threads=settings.ort_inter_op_threads,
            warmup_max=settings.microbatch_max_ues,
            metrics=self.metrics,
        )
        self.state = UeStateTable(
            max_tracked=settings.max_tracked_ues,
            ttl_seconds=settings.ue_ttl_seconds,
            mcs_table=settings.mcs_table,
            olla_bler_target=settings.olla_bler_target,
            olla_delta_up_db=settings.olla_delta_up_db,
            initial_capacity=min(settings.max_tracked_ues, 4096),
        )
        self.metrics.tracked_ues_limit.set(settings.max_tracked_ues)
        # per-cell state handover through Redis (None: off); runs in the worker
        self.handover = make_handover(settings, self.metrics)
        self.started = False
        self.draining = False
        # admitted decide/release requests not yet answered, and their (estimated) UEs:
        # the admission bounds of submit_raw
        self.in_flight = 0
        self.queued_ues = 0
        self._max_queued = settings.max_queued_requests
        self._max_queued_ues = settings.max_queued_ues
        self._max_slot_lag = settings.max_slot_lag
        # newest decided slot per cell (stale-request check); cells leave it with their
        # last tracked UE, so it is bounded by the tracked cells
        self._newest_slot: dict[int, int] = {}
        # DecideStream accounting, kept by the gRPC adapter: messages read and not yet
        # answered (all streams), the largest such count one stream ever had, open streams
        self.stream_pending = 0
        self.stream_pending_peak = 0
        self.open_streams = 0
        self._ready_listeners: list[Callable[[bool], None]] = []
        self._published_ready = False
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # state index: worker admits, loop releases/expires
        self._worker: threading.Thread | None = None
        self._inline = not settings.inference_thread
        self._inline_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._kpi: dict[int, _CellKpi] = {}  # at most max_kpi_cells entries
        self._max_ues = settings.microbatch_max_ues
        self._max_wait = settings.microbatch_max_wait_us * 1e-6
        m = self.metrics
        self._lat_queue = m.latency["queue_wait"]
        self._lat_state = m.latency["state_features"]
        self._lat_inf = m.latency["inference"]
        self._lat_total = m.latency["total"]
        self._shed = {reason: m.shed_requests.labels(reason) for reason in SHED_REASONS}
        # gauges read at scrape time: nothing on the hot path
        m.queued_requests.set_function(lambda: self.in_flight)
        m.queued_ues.set_function(lambda: self.queued_ues)
        m.queue_limit.labels("requests").set(settings.max_queued_requests)
        m.queue_limit.labels("ues").set(settings.max_queued_ues)
        m.stream_pending.set_function(lambda: self.stream_pending)
        m.open_streams.set_function(lambda: self.open_streams)
        m.kpi_cells.set_function(lambda: len(self._kpi))

    # ------------------------------------------------------------------ lifecycle
    @property
    def ready(self) -> bool:
        """Serving: started (model loaded or fallback confirmed, warmed up), not draining,
        and, with ``require_model``, a validated model loaded."""
        return self.readiness() == "ready"

    def readiness(self) -> str:
        """Readiness: "ready", "starting", "draining" or "no_model" (``require_model`` and no
        validated model: the OLLA fallback still answers, but this replica should not get
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
        """Load the model (in a worker thread), warm up, start background tasks."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self.registry.reload)
        self._warm_up()
        if not self._inline:
            self._worker = threading.Thread(target=self._worker_main, name="inference", daemon=True)
            self._worker.start()
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
        requests), and each cell it decides for while draining again before answering."""
        self.draining = True
        self._update_ready()
        if self.handover is not None and self.started and self._loop is not None:
            fut: asyncio.Future[DecideResult] = self._loop.create_future()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            self.in_flight += 1  # answered like a request: wait_idle waits for it
            self._queue.put(_Request("handover", None, fut, time.perf_counter()))
            if self._inline and not self._inline_scheduled:
                self._inline_scheduled = True
                self._loop.call_soon(self._drain_inline)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no decide request is in flight (bounded); True if idle."""
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
        if self._worker is not None:
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._worker.join, 10.0)
            self._worker = None
        self.started = False
        self._update_ready()

    def _warm_up(self) -> None:
        """Exercise the encoder/OLLA path on a scratch table (first-call costs off the hot path)."""
        scratch = UeStateTable(
            max_tracked=64, ttl_seconds=1.0, mcs_table=self.settings.mcs_table, initial_capacity=64
        )
        n = 64
        batch = ReportBatch.from_arrays(
            n_mcs=self.n_mcs,
            ue_id=np.arange(n),
            cqi=np.full(n, 9),
            cqi_age_slots=np.full(n, 2),
            harq_ack=np.ones(n, np.int8),
            harq_mcs=np.full(n, 10),
            rank=np.ones(n),
            n_prb=np.full(n, 50),
            n_symbols=np.full(n, 12),
        )
        rows, new_rows, _ = scratch.admit(0, batch.ue_id, time.monotonic())
        scratch.prepare_rows(new_rows)
        scratch.history.update(rows, batch)
        obs = scratch.history.encode(rows)
        scratch.olla.act(DecisionBatch(obs=obs, reports=batch, rows=rows))

    async def _ttl_loop(self) -> None:
        period = min(1.0, self.settings.ue_ttl_seconds / 2)
        while True:
            await asyncio.sleep(period)
            self.expire_idle()

    def expire_idle(self) -> int:
        """Forget idle UEs, the newest-slot entries and MCS histograms of cells left with
        no UE, and the KPI series of cells with no outcome report for ``ue_ttl_seconds``."""
        now = time.monotonic()
        with self._lock:
            n = self.state.expire(now)
            cells = self.state.cells
            for cell in [c for c in self._newest_slot if c not in cells]:
                del self._newest_slot[cell]
            self.metrics.cell_mcs.retain(cells)
        if n:
            self.metrics.ues_expired.inc(n)
            log.info("expired idle UEs", extra={"count": n})
        self.metrics.tracked_ues.set(self.state.n_tracked)
        self._expire_kpi_cells(now)
        return n

    async def _poll_loop(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(self.settings.reload_poll_seconds)
            try:
                if self.registry.changed():
                    log.info("model files changed, reloading")
                    await self._loop.run_in_executor(None, self.registry.reload)
                    self._update_ready()
            except Exception:  # never let the poller die
                log.exception("model poll failed")

    async def reload_model(self) -> tuple[bool, str]:
        """Admin reload of the configured directory (in a worker thread)."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, self.registry.reload)
        self._update_ready()
        return result

    # ------------------------------------------------------------------ decide
    def validate_decide(
        self, cell_id: int, slot: int, mcs_table: int, columns: dict[str, Any]
    ) -> ReportBatch:
        """Whole-batch validation; raises :class:`RequestError` naming the field."""
        _check_id("cell_id", cell_id)
        _check_id("slot", slot)
        if mcs_table not in (0, self.settings.mcs_table):
            if mcs_table in (1, 2):
                msg = (
                    f"MCS table {mcs_table} is not served (serving table {self.settings.mcs_table})"
                )
            else:
                msg = f"unknown MCS table {mcs_table!r} (38.214 tables 1 or 2)"
            raise RequestError(INVALID_ARGUMENT, "mcs_table", msg)
        ue = columns.get("ue_id")
        n = len(ue) if ue is not None and hasattr(ue, "__len__") else 0
        if n > self.settings.max_batch_ues:
            raise RequestError(
                INVALID_ARGUMENT,
                "ue_id",
                f"batch of {n} UEs exceeds max_batch_ues={self.settings.max_batch_ues}",
                "batch_too_large",
            )
        try:
            cols = {}
            for k in DECIDE_COLUMNS:
                v = columns.get(k)
                if v is None and k not in OPTIONAL_COLUMNS:
                    raise ReportError(k, "missing field")
                if v is None or (type(v) is np.ndarray and v.dtype == np.int64 and v.ndim == 1):
                    cols[k] = v
                else:
                    cols[k] = as_int_column(k, v)
            for k in OPTIONAL_COLUMNS:
                v = cols[k]
                if v is not None and v.shape[0] == 0 and n > 0:
                    cols[k] = None
            batch = fast_report_batch(cell_id, n, cols, self.n_mcs)
            if batch is None:  # not plain in-range int64 columns: the reference path
                batch = ReportBatch.from_arrays(
                    n_mcs=self.n_mcs, cell_id=np.full(n, cell_id, dtype=np.int64), **cols
                )
        except ReportError as exc:
            raise RequestError(INVALID_ARGUMENT, exc.field, exc.message) from None
        if n > 1:
            s = np.sort(batch.ue_id)
            dup = s[1:] == s[:-1]
            if dup.any():
                raise RequestError(
                    INVALID_ARGUMENT, "ue_id", f"duplicate UE id {int(s[1:][dup][0])}"
                )
        return batch

    def submit_raw(
        self,
        kind: str,
        payload: Any,
        deadline: float | None = None,
        cell_hint: int | None = None,
    ) -> asyncio.Future[DecideResult]:
        """Queue one decide request without touching it (event-loop thread, cheap).

        Parsing, whole-batch validation, (cell, UE) → row admission, the decision and (for
        ``kind == "pb"``) the response encoding all happen in the inference worker, in
        arrival order; errors come back as :class:`RequestError` on the future, and a
        refused request changes nothing. Streams submit message k+1 while message k is
        still being decided.

        Admission is bounded: with ``max_queued_requests`` requests, or (with at least
        one queued) ``max_queued_ues`` UEs, admitted and not yet answered, the future
        fails at once with OVERLOADED and nothing is queued, so an overload costs one
        counter increment per request instead of unbounded memory and latency.
        ``deadline`` (a ``time.perf_counter()`` value, the gRPC deadline) lets the worker
        drop the request if it is still queued when that time has passed. ``cell_hint``
        (the ``x-ran-cell-id`` header the request was routed by, :mod:`service.cell_affinity`)
        must equal the body's ``cell_id``, else INVALID_ARGUMENT on ``cell_id``.
        """
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[DecideResult] = loop.create_future()
        n_ues = _request_ues(kind, payload)
        if self.in_flight >= self._max_queued or (
            self.in_flight and self.queued_ues + n_ues > self._max_queued_ues
        ):
            self._shed["queue_full"].inc()
            fut.set_exception(
                RequestError(
                    OVERLOADED,
                    "request",
                    f"overloaded: {self.in_flight} requests / ~{self.queued_ues} UEs queued "
                    f"(max_queued_requests={self._max_queued}, "
                    f"max_queued_ues={self._max_queued_ues}); retry later",
                    "queue_full",
                )
            )
            return fut
        # counted until the worker has answered it (not until its future is done: a
        # caller that gives up cancels the future, but the request still sits in the queue)
        self.in_flight += 1
        self.queued_ues += n_ues
        self._queue.put(
            _Request(kind, payload, fut, time.perf_counter(), deadline, n_ues, cell_hint)
        )
        if self._inline and not self._inline_scheduled:
            self._inline_scheduled = True
            loop.call_soon(self._drain_inline)
        return fut

    def submit(
        self, cell_id: int, slot: int, mcs_table: int, columns: dict[str, Any]
    ) -> asyncio.Future[DecideResult]:
        """Queue a decoded request: see :meth:`submit_raw`."""
        return self.submit_raw("cols", (cell_id, slot, mcs_table, columns))

    async def decide(
        self, cell_id: int, slot: int, mcs_table: int, columns: dict[str, Any]
    ) -> DecideResult:
        """Validate, admit and queue one request; await its decisions."""
        return await self.submit(cell_id, slot, mcs_table, columns)

    def count_shed(self, reason: str) -> None:
        """An adapter dropped a request before submitting it (one of SHED_REASONS)."""
        self._shed[reason].inc()

    def observe_total(self, seconds: float) -> None:
        """Adapters report the whole request time (parse → serialize)."""
        self._lat_total.observe(seconds)

    def _version(self) -> str:
        m = self.registry.current
        return m.version if m else ""

    # ------------------------------------------------------------------ inference worker
    def _worker_main(self) -> None:
        """Inference worker thread: dynamic micro-batching.

        Takes the oldest queued request, then everything else already queued, waiting at
        most ``microbatch_max_wait_us`` after that request's arrival for more (only while
        other requests are in flight), up to ``microbatch_max_ues``. While a batch runs,
        new requests queue up, so under load batches grow by themselves. Requests naming
        the same (cell, UE) go to separate consecutive groups so every UE's reports are
        folded in arrival order. The event loop thread keeps doing transport I/O meanwhile
        (onnxruntime and most numpy kernels release the GIL).
        """
        q = self._queue
        max_ues, max_wait = self._max_ues, self._max_wait
        while True:
            first = q.get()
            if first is None:
                return
            items = [first]
            ues = _request_ues(first.kind, first.payload)
            deadline = first.t_submit + max_wait
            stop = False
            while ues < max_ues:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.perf_counter()
                    # nothing else in flight (e.g. one stream): waiting only adds latency
                    if remaining <= 0 or self.in_flight <= len(items):
                        break
                    try:
                        nxt = q.get(timeout=remaining)
                    except queue.Empty:
                        break
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
                ues += _request_ues(nxt.kind, nxt.payload)
            self._process_safely(items)
            if stop:
                return

    def _process_safely(self, requests: list[_Request]) -> None:
        """:meth:`_process`, and should it ever raise, fail its requests instead of the
        worker (a dead worker would leave every later request waiting forever)."""
        try:
            self._process(requests)
        except Exception as exc:
            log.exception("micro-batch failed")
            err = RequestError("internal", "request", f"internal error: {exc}")
            done: list[tuple[Any, DecideResult | BaseException]] = [(r.fut, err) for r in requests]
            self._hand_back(done, 0, requests)

    def _hand_back(
        self,
        done: list[tuple[Any, DecideResult | BaseException]],
        seq: int,
        requests: list[_Request],
    ) -> None:
        """Deliver a processed micro-batch on the event loop (from the worker thread, or
        directly when inline)."""
        n_ues = sum(r.ues for r in requests)
        if self._inline:
            self._deliver(done, seq, len(requests), n_ues)
        else:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._deliver, done, seq, len(requests), n_ues)

    def _drain_inline(self) -> None:
        """``inference_thread=False``: run everything queued now, on the event loop."""
        self._inline_scheduled = False
        items: list[_Request] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                items.append(item)
        if items:
            self._process_safely(items)

    def _premerge(
        self, requests: list[_Request]
    ) -> tuple[ReportBatch | None, dict[int, tuple[int, int, int, int]]]:
        """Validate the plain protobuf requests of a micro-batch in one pass.

        Concatenated serialized messages parse as one message whose repeated fields are
        the concatenation (protobuf merge semantics), so well-formed requests with
        consistent lengths are parsed, converted and range-checked once for the whole
        micro-batch. Returns the merged :class:`ReportBatch` and, per request index,
        (cell_id, slot, lo, hi) of its rows; requests not in the map (malformed, any
        inconsistency, or everything when the merged check finds a bad value) take the
        per-request path, which reports the precise error. Pure: no state is touched.
        """
        idx: list[int] = []
        raws: list[bytes] = []
        heads: list[tuple[int, int]] = []
        lens: list[int] = []
        absent: tuple[bool, ...] | None = None  # per optional column: empty in the requests
        served = self.settings.mcs_table
        max_n = self.settings.max_batch_ues
        for i, r in enumerate(requests):
            if r.kind != "pb":
                continue
            try:
                msg = pb.DecideRequest.FromString(r.payload)
            except (DecodeError, RuntimeError):
                continue
            n = len(msg.ue_id)
            if not 0 < n <= max_n or any(len(getattr(msg, k)) != n for k in _LEN_CHECKED):
                continue
            lens_opt = [len(getattr(msg, k)) for k in OPTIONAL_COLUMNS]
            if any(ln not in (0, n) for ln in lens_opt):
                continue
            if msg.mcs_table not in (0, served) or msg.cell_id < 0 or msg.slot < 0:
                continue
            if r.cell_hint is not None and r.cell_hint != msg.cell_id:
                continue  # the per-request path refuses it
            empty = tuple(ln == 0 for ln in lens_opt)
            if absent is None:
                absent = empty
            elif absent != empty:  # the merged columns would not line up
                continue
            idx.append(i)
            raws.append(r.payload)
            heads.append((msg.cell_id, msg.slot))
            lens.append(n)
        if len(idx) < 2:
            return None, {}
        merged = pb.DecideRequest.FromString(b"".join(raws))
        cols: dict[str, Any] = request_columns(merged)
        total = sum(lens)
        assert absent is not None
        for k, missing in zip(OPTIONAL_COLUMNS, absent, strict=True):
            if missing:
                cols[k] = None
        cells = np.repeat(np.array([h[0] for h in heads], dtype=np.int64), lens)
        if any(c.shape[0] != total for c in cols.values() if c is not None):
            return None, {}
        batch = fast_report_batch(cells, total, cols, self.n_mcs)
        if batch is None:
            return None, {}
        out: dict[int, tuple[int, int, int, int]] = {}
        off = 0
        for i, (cell_id, slot), n in zip(idx, heads, lens, strict=True):
            out[i] = (cell_id, slot, off, off + n)
            off += n
        return batch, out

    def _admit(
        self, requests: list[_Request], done: list[tuple[Any, DecideResult | BaseException]]
    ) -> list[_Item]:
        """Parse, validate and admit ``requests`` in order; refusals go to ``done``."""
        items: list[_Item] = []
        merged, spans = self._premerge(requests)
        now = time.perf_counter()
        for i, r in enumerate(requests):
            try:
                if r.fut.cancelled():  # the caller is gone (gRPC cancels on its deadline)
                    expired = r.deadline is not None and now >= r.deadline
                    reason = "deadline" if expired else "cancelled"
                    self._shed[reason].inc()
                    raise RequestError(DEADLINE_EXCEEDED, "request", "cancelled", reason)
                if r.deadline is not None and now >= r.deadline:
                    # the client has given up: deciding would only cost time the
                    # requests behind it are waiting for
                    self._shed["deadline"].inc()
                    raise RequestError(
                        DEADLINE_EXCEEDED,
                        "request",
                        f"deadline passed {1e3 * (now - r.deadline):.1f} ms before processing",
                        "deadline",
                    )
                span = spans.get(i)
                if span is not None and merged is not None:
                    cell_id, slot, lo, hi = span
                    _check_cell_hint(r, cell_id)
                    part = ReportBatch(**{k: v[lo:hi] for k, v in merged.as_dict().items()})
                    if hi - lo > 1:
                        srt = np.sort(part.ue_id)
                        dup = srt[1:] == srt[:-1]
                        if dup.any():
                            bad = int(srt[1:][dup][0])
                            raise RequestError(INVALID_ARGUMENT, "ue_id", f"duplicate UE id {bad}")
                    self.metrics.batch_size.observe(hi - lo)
                    rows, new_rows, seq = self._admit_rows(cell_id, slot, part.ue_id)
                    items.append(
                        _Item(
                            cell_id,
                            slot,
                            part,
                            rows,
                            new_rows,
                            seq,
                            r.fut,
                            r.t_submit,
                            r.kind,
                            merged,
                            lo,
                            hi,
                        )
                    )
                    continue
                if r.kind == "release":
                    done.append((r.fut, self.release_now(*r.payload)))  # type: ignore[arg-type]
                    continue
                if r.kind == "handover":
                    assert self.handover is not None
                    written = self.handover.snapshot_all(self.state, self._lock)
                    done.append((r.fut, written))  # type: ignore[arg-type]
                    continue
                if r.kind == "pb":
                    msg = parse_decide_request(r.payload)
                    cell_id, slot, mcs_table = msg.cell_id, msg.slot, msg.mcs_table
                    columns: dict[str, Any] = request_columns(msg)
                elif r.kind == "json":
                    columns = parse_json_object(r.payload)
                    cell_id = json_int_field(columns, "cell_id")
                    slot = json_int_field(columns, "slot")
                    mcs_table = json_int_field(columns, "mcs_table")
                else:
                    cell_id, slot, mcs_table, columns = r.payload
                _check_cell_hint(r, cell_id)
                batch = self.validate_decide(cell_id, slot, mcs_table, columns)
                n = len(batch)
                self.metrics.batch_size.observe(n)
                if n == 0:
                    empty = DecideResult(
                        cell_id, slot, np.zeros(0, np.int32), np.zeros(0, np.uint8), self._version()
                    )
                    if r.kind == "pb":
                        empty.wire = encode_decide_response(
                            cell_id, slot, empty.mcs, empty.source, empty.model_version
                        )
                    elif r.kind == "json":
                        empty.wire = encode_decide_json(empty)
                    done.append((r.fut, empty))
                    continue
                rows, new_rows, seq = self._admit_rows(cell_id, slot, batch.ue_id)
                items.append(
                    _Item(cell_id, slot, batch, rows, new_rows, seq, r.fut, r.t_submit, r.kind)
                )
            except RequestError as exc:
                done.append((r.fut, exc))
            except Exception as exc:  # a bug, not bad input: fail only this request
                log.exception("request admission failed")
                done.append((r.fut, RequestError("internal", "request", f"internal error: {exc}")))
        return items

    def _admit_rows(
        self, cell_id: int, slot: int, ue_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows for the UEs of one valid request, after the stale-slot check (a stale or
        refused request changes nothing); records ``slot`` as the cell's newest. A cell
        with no tracked UE is first restored from the state handover, when configured."""
        if self.handover is not None and cell_id not in self.state.cells:
            self.handover.restore(self.state, self._lock, cell_id)
        with self._lock:
            newest = self._newest_slot.get(cell_id)
            lag = newest - slot if newest is not None else 0
            if self._max_slot_lag and self._max_slot_lag < lag <= SLOT_RESET_LAG:
                self._shed["stale"].inc()
                raise RequestError(
                    STALE,
                    "slot",
                    f"slot {slot} is {lag} slots behind the newest slot {newest} of cell "
                    f"{cell_id} (max_slot_lag={self._max_slot_lag})",
                    "stale",
                )
            try:
                admitted = self.state.admit(cell_id, ue_ids, time.monotonic())
            except CapacityError as exc:
                self.metrics.ue_capacity_rejections.inc()
                raise RequestError(RESOURCE_EXHAUSTED, "ue_id", str(exc), "ue_capacity") from None
            if self._max_slot_lag and (newest is None or slot > newest or lag > SLOT_RESET_LAG):
                self._newest_slot[cell_id] = slot
            return admitted

    def _process(self, requests: list[_Request]) -> None:
        """Admit ``requests``, run them as collision-free groups, deliver on the loop."""
        st = self.state
        done: list[tuple[Any, DecideResult | BaseException]] = []
        items = self._admit(requests, done)
        fresh = [it.new_rows for it in items if it.new_rows.size]
        st.prepare_rows(np.concatenate(fresh) if fresh else _EMPTY_ROWS)
        start = 0
        while start < len(items):
            group = [items[start]]
            ues = items[start].rows.shape[0]
            mark = np.zeros(st.history.capacity, dtype=bool)
            mark[items[start].rows] = True
            for it in items[start + 1 :]:
                n = it.rows.shape[0]
                if ues + n > self._max_ues or mark[it.rows].any():
                    break
                mark[it.rows] = True
                group.append(it)
                ues += n
            start += len(group)
            try:
                results = self._run_group(group)
                for it, res in zip(group, results, strict=True):
                    if it.kind == "pb":
                        res.wire = encode_decide_response(
                            res.cell_id, res.slot, res.mcs, res.source, res.model_version
                        )
                    elif it.kind == "json":
                        res.wire = encode_decide_json(res)
                    done.append((it.fut, res))
            except Exception as exc:  # a bug, not bad input: fail only this group
                log.exception("decision group failed")
                err = RequestError("internal", "request", f"internal error: {exc}")
                done.extend((it.fut, err) for it in group)
        if self.draining and self.handover is not None and items:
            # before the answers go out: the snapshot is never older than what the
            # gNB was told, so the replica that gets these cells next continues exactly
            self.handover.snapshot_cells(self.state, self._lock, {it.cell_id for it in items})
        seq = items[-1].seq if items else 0
        self._hand_back(done, seq, requests)

    def _deliver(
        self,
        done: list[tuple[Any, DecideResult | BaseException]],
        seq: int,
        n_requests: int,
        n_ues: int,
    ) -> None:
        """Event-loop side: resolve futures, free their admission places, release
        quarantined rows."""
        self.in_flight -= n_requests
        self.queued_ues -= n_ues
        for fut, res in done:
            if fut.done():
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)
        if seq:
            with self._lock:
                self.state.flushed(seq)
        self.metrics.tracked_ues.set(self.state.n_tracked)

    def _run_group(self, group: list[_Item]) -> list[DecideResult]:
        t0 = time.perf_counter()
        first = group[0]
        if len(group) == 1:
            reports, rows = first.reports, first.rows
        elif first.base is not None and all(
            b.base is first.base and b.lo == a.hi for a, b in zip(group, group[1:], strict=False)
        ):  # consecutive slices of one merged batch: slice it, no copy
            rows = np.concatenate([it.rows for it in group])
            lo, hi = first.lo, group[-1].hi
            reports = ReportBatch(**{k: v[lo:hi] for k, v in first.base.as_dict().items()})
        else:
            rows = np.concatenate([it.rows for it in group])
            parts = [it.reports.as_dict() for it in group]
            reports = ReportBatch(
                **{k: np.concatenate([p[k] for p in parts]) for k in REPORT_DTYPES}
            )
        st = self.state
        st.history.update(rows, reports)
        obs = st.history.encode(rows)
        fallback = st.olla.act(DecisionBatch(obs=obs, reports=reports, rows=rows))
        t1 = time.perf_counter()
        model = self.registry.current
        n = rows.shape[0]
        source = np.full(n, SOURCE_FALLBACK, dtype=np.uint8)
        mcs = np.asarray(fallback, dtype=np.int32)
        version = ""
        if model is not None:
            try:
                q = model.infer(obs)
                best = np.argmax(q, axis=1).astype(np.int32)
                # argmax lands on a NaN/inf if the row has one: one gather finds bad rows
                ok = np.isfinite(q[np.arange(n), best])
                mcs = np.where(ok, best, mcs)
                source[ok] = SOURCE_MODEL
                version = model.version
                if not ok.all():
                    self.metrics.inference_errors.inc()
            except Exception:
                self.metrics.inference_errors.inc()
                log.exception("inference failed, OLLA fallback for the batch")
        t2 = time.perf_counter()
        m = self.metrics
        m.microbatch_size.observe(n)
        m.microbatch_requests.observe(len(group))
        n_model = int(np.count_nonzero(source == SOURCE_MODEL))
        if n_model:
            m.decisions_model.inc(n_model)
        if n - n_model:
            m.decisions_fallback.inc(n - n_model)
        off = 0
        results: list[DecideResult] = []
        for it in group:
            k = it.rows.shape[0]
            res = DecideResult(
                it.cell_id,
                it.slot,
                mcs[off : off + k],
                source[off : off + k],
                version,
                t0 - it.t_submit,
                t1 - t0,
                t2 - t1,
            )
            off += k
            self._lat_queue.observe(res.queue_wait)
            self._lat_state.observe(res.state_features)
            self._lat_inf.observe(res.inference)
            m.cell_mcs.add(it.cell_id, res.mcs)
            results.append(res)
        return results

    # ------------------------------------------------------------------ release / outcomes
    async def release(self, cell_id: Any, ue_ids: Any) -> int:
        """Forget UEs, in arrival order with the decide requests (through the same queue,
        so a release never overtakes a decision for the same UE sent before it)."""
        return await self.submit_raw("release", (cell_id, ue_ids))  # type: ignore[return-value]

    def release_now(self, cell_id: Any, ue_ids: Any) -> int:
        """Forget UEs; unknown cell/UE → INVALID_ARGUMENT naming the field, nothing changed."""
        _check_id("cell_id", cell_id)
        try:
            ues = as_int_column("ue_id", ue_ids)
            if ues.dtype.kind == "f" and (
                not np.all(np.isfinite(ues)) or np.any(ues != np.round(ues))
            ):
                raise ReportError("ue_id", "must be integers")
            ues = ues.astype(np.int64)
        except ReportError as exc:
            raise RequestError(INVALID_ARGUMENT, exc.field, exc.message) from None
        if ues.size == 0:
            raise RequestError(INVALID_ARGUMENT, "ue_id", "no UE ids given")
        try:
            with self._lock:
                n = self.state.release(cell_id, ues)
        except UnknownUeError as exc:
            raise RequestError(INVALID_ARGUMENT, exc.field, exc.message, "unknown_ue") from None
        self.metrics.ues_released.inc(n)
        self.metrics.tracked_ues.set(self.state.n_tracked)
        return n

    def report_outcome(
        self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: int = 0
    ) -> int:
        """Fold one slot's delivered bits / first-tx ACKs into the per-cell KPIs."""
        _check_id("cell_id", cell_id)
        _check_id("slot", slot)
        if not isinstance(slot_us, int) or isinstance(slot_us, bool) or not 0 <= slot_us <= 1000:
            raise RequestError(
                INVALID_ARGUMENT,
                "slot_duration_us",
                f"must be 0 (default 500) .. 1000, got {slot_us!r}",
            )
        try:
            cols = {}
            for name in OUTCOME_COLUMNS:
                v = columns.get(name)
                if v is None or (name == "mcs" and len(v) == 0):
                    if name == "mcs":
                        continue
                    raise ReportError(name, "missing field")
                arr = as_int_column(name, v)
                if arr.dtype.kind == "f" and (
                    not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))
                ):
                    raise ReportError(name, "NaN, infinite or non-integer value")
                if arr.dtype.kind == "f" and arr.size and np.abs(arr).max() >= 2.0**62:
                    raise ReportError(name, "value out of range")
                cols[name] = arr.astype(np.int64)
            n = cols["ue_id"].shape[0]
            for name, arr in cols.items():
                if arr.shape[0] != n:
                    raise ReportError(name, f"length {arr.shape[0]} != ue_id length {n}")
            ranges = {
                "ue_id": (0, None),
                "delivered_bits": (0, None),
                "first_tx_ack": (-1, 1),
                "mcs": (0, self.n_mcs - 1),
            }
            for name, arr in cols.items():
                lo, hi = ranges[name]
                if arr.size and (arr.min() < lo or (hi is not None and arr.max() > hi)):
                    raise ReportError(
                        name, f"value outside [{lo}, {hi if hi is not None else 'inf'}]"
                    )
        except ReportError as exc:
            raise RequestError(INVALID_ARGUMENT, exc.field, exc.message) from None
        self._fold_kpis(cell_id, slot, cols, slot_us or DEFAULT_SLOT_US)
        return n

    def _fold_kpis(
        self, cell_id: int, slot: int, cols: dict[str, np.ndarray], slot_us: int
    ) -> None:
        m = self.metrics
        k = self._kpi.get(cell_id)
        if k is None:
            # the cap is checked before any labelled series exists: a flood of made-up
            # cell ids costs one counter increment each, never a new series
            if len(self._kpi) >= self.settings.max_kpi_cells:
                m.kpi_cells_dropped.inc()
                return
            label = str(cell_id)
            k = self._kpi[cell_id] = _CellKpi(
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
        k.slot_us = slot_us
        if k.ues.shape[0] < KPI_MAX_UES:
            k.ues = np.union1d(k.ues, cols["ue_id"])[:KPI_MAX_UES]
        span = k.last_slot - k.start_slot + 1
        if span >= self.settings.kpi_window_slots:
            self._publish_kpis(cell_id, k, span)
            k.new_window()

    def _publish_kpis(self, cell_id: int, k: _CellKpi, span: int) -> None:
        m = self.metrics
        label = str(cell_id)
        seconds = span * k.slot_us * 1e-6
        cell_bps = k.bits / seconds
        n_ues = max(1, int(k.ues.shape[0]))
        ue_bps = cell_bps / n_ues
        m.cell_throughput.labels(label).set(cell_bps / 8)
        m.cell_ue_throughput.labels(label).set(ue_bps / 8)
        bler = k.nacks / k.first_tx if k.first_tx else None
        if bler is not None:
            m.cell_bler.labels(label).set(bler)
        model = self.registry.current
        if model is None or not model.reference_kpis:
            return
        scenario = self.settings.reference_scenario or next(iter(model.reference_kpis))
        ref = model.reference_kpis.get(scenario)
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

    def _expire_kpi_cells(self, now: float) -> int:
        """Remove the series of cells with no outcome report for ``ue_ttl_seconds``, so
        the ``max_kpi_cells`` places free up again (a counter that comes back later
        restarts from 0, which Prometheus' rate() treats as a reset)."""
        idle = [c for c, k in self._kpi.items() if k.last_seen < now - self.settings.ue_ttl_seconds]
        m = self.metrics
        for cell in idle:
            k = self._kpi.pop(cell)
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

    # ------------------------------------------------------------------ model
    def model_info(self) -> dict[str, Any]:
        return self.registry.info()


def _check_cell_hint(r: _Request, cell_id: Any) -> None:
    """A request routed by ``x-ran-cell-id`` must carry that cell in its body."""
    if r.cell_hint is not None and cell_id != r.cell_hint:
        raise RequestError(
            INVALID_ARGUMENT, "cell_id", mismatch_message(r.cell_hint, cell_id), "cell_mismatch"
        )


def _check_id(field: str, value: Any) -> None:
    """``value`` must be a plain int in [0, 2^63) (cell ids, slots); else INVALID_ARGUMENT."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _I64_MAX:
        raise RequestError(
            INVALID_ARGUMENT, field, f"must be an integer in [0, 2^63), got {value!r}"
        )
