"""The simulated gNB's connections to the xApp (grpc.aio, one channel like one DU).

- :class:`CellLink`: one cell's ``DecideStream``. The slot loop hands it one request per
  slot (:meth:`CellLink.exchange`) and gets a future for the answer. A writer task sends
  requests in order, the reader matches responses (in order, by slot) and records the
  latency from hand-over to answer. When the stream breaks, pending answers resolve to
  ``None`` and the link reopens the stream with capped, jittered exponential backoff.
- :class:`BackgroundCalls`: ``ReportOutcome`` / ``ReleaseUe`` sent off the slot path
  by a few workers from a bounded queue.

Every queue here is bounded; a full one makes the slot decide locally (or drop an
outcome, counted) instead of growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc

from ran_distill.gnb_stats import GnbStats

INVALID_ARGUMENT_CODE = 3  # google.rpc.Code, as DecideError.code carries it


class XappProtocolError(RuntimeError):
    """The xApp says our requests are malformed: a gNB bug, never hidden by a fallback."""


class CellLink:
    """One cell's ``DecideStream`` with reconnect.

    ``max_in_flight`` bounds the messages handed over and not yet answered; beyond it
    :meth:`exchange` returns ``None`` (decide locally).
    """

    def __init__(
        self,
        stub: Any,
        cell_id: int,
        stats: GnbStats,
        *,
        max_in_flight: int = 16,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        channel_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.stub = stub
        self.channel_ready = channel_ready
        self.cell_id = cell_id
        self.stats = stats
        self.max_in_flight = max_in_flight
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.up = False  # a stream is open (answers may still be slow)
        self.answered_once = False  # some stream of this link has answered
        self._stream_answered = False  # the current stream has answered
        self.refused = ""  # why the last exchange() returned None
        self.last_error = ""  # how the last stream ended, when it failed
        self._outbox: asyncio.Queue[tuple[int, Any, asyncio.Future[Any], float]] = asyncio.Queue(
            maxsize=max_in_flight
        )
        self._pending: deque[tuple[int, float, asyncio.Future[Any]]] = deque()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"cell-{self.cell_id}")

    def exchange(self, slot: int, request: Any) -> asyncio.Future[Any] | None:
        """Send ``request`` for ``slot``; the future resolves to the ``DecideResponse``, or to
        ``None`` if the stream broke first. ``None`` now: no stream (``refused`` "down"), or
        ``max_in_flight`` messages unanswered (``refused`` "backlog")."""
        if not self.up or not self.channel_ready():
            self.refused = "down"
            return None
        if len(self._pending) + self._outbox.qsize() >= self.max_in_flight:
            self.refused = "backlog"
            return None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait((slot, request, fut, time.perf_counter()))
        return fut

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._resolve_all_none()

    # ------------------------------------------------------------------ internals
    async def _run(self) -> None:
        delay = self.backoff_initial_s
        while not self._closing:
            call = self.stub.DecideStream(wait_for_ready=False)
            self.up = True
            self._stream_answered = False
            reader = asyncio.create_task(self._read(call))
            writer = asyncio.create_task(self._write(call))
            try:
                await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.up = False
                for task in (reader, writer):
                    task.cancel()
                call.cancel()
                # how the stream ended does not matter (RpcError, a write on a finished
                # call's InvalidStateError, EOF): the link reopens it either way
                ended = await asyncio.gather(reader, writer, return_exceptions=True)
                self.last_error = next(
                    (repr(e) for e in ended if isinstance(e, Exception)), self.last_error
                )
                self._resolve_all_none()
            if self._stream_answered:
                delay = self.backoff_initial_s  # this stream worked: retry soon
            # jitter: the cells of a DU do not all reconnect in the same instant
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(2 * delay, self.backoff_max_s)

    async def _write(self, call: Any) -> None:
        while True:
            slot, request, fut, t0 = await self._outbox.get()
            self._pending.append((slot, t0, fut))
            await call.write(request)

    async def _read(self, call: Any) -> None:
        """Read answers until the stream ends."""
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                return
            if not self._stream_answered:
                self._stream_answered = True
                if self.answered_once:
                    self.stats.reconnects += 1
                self.answered_once = True
            if not self._pending:
                continue  # nothing asked (cannot happen with an in-order server)
            slot, t0, fut = self._pending.popleft()
            self.stats.latency.add(time.perf_counter() - t0)
            if not fut.done():
                fut.set_result(resp if resp.slot == slot else None)

    def _resolve_all_none(self) -> None:
        while self._pending:
            fut = self._pending.popleft()[2]
            if not fut.done():
                fut.set_result(None)
        while not self._outbox.empty():
            fut = self._outbox.get_nowait()[2]
            if not fut.done():
                fut.set_result(None)


class BackgroundCalls:
    """Unary calls (outcomes, releases) sent by ``workers`` tasks from a bounded queue.

    With ``block``, :meth:`submit` waits for room while the xApp answers (backpressure);
    otherwise, or while the xApp does not answer, a full queue drops the call, counted.
    """

    def __init__(
        self, stats: GnbStats, *, block: bool = True, maxsize: int = 512, workers: int = 4
    ) -> None:
        self.stats = stats
        self.block = block
        self.healthy = True
        self.error: XappProtocolError | None = None
        self._queue: asyncio.Queue[tuple[str, Callable[..., Any], Any]] = asyncio.Queue(maxsize)
        self._workers = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def submit(self, kind: str, method: Callable[..., Any], message: Any) -> None:
        if self.block and self.healthy:
            await self._queue.put((kind, method, message))
            return
        try:
            self._queue.put_nowait((kind, method, message))
        except asyncio.QueueFull:
            if kind == "outcome":
                self.stats.outcomes_dropped += 1
            else:
                self.stats.releases_failed += 1

    async def flush(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def close(self) -> None:
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w

    async def _work(self) -> None:
        while True:
            kind, method, message = await self._queue.get()
            try:
                await method(message, timeout=2.0, wait_for_ready=False)
                self.healthy = True
                if kind == "outcome":
                    self.stats.outcomes_sent += 1
            except grpc.aio.AioRpcError as exc:
                invalid = exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                if kind == "outcome":
                    self.stats.outcomes_failed += 1
                    if invalid and self.error is None:
                        self.error = XappProtocolError(f"ReportOutcome: {exc.details()}")
                elif not invalid:  # a release of a UE the xApp already forgot is fine
                    self.stats.releases_failed += 1
                if not invalid:
                    self.healthy = False
            finally:
                self._queue.task_done()
