"""The micro-batching worker: bounded admission, arrival order, results on the event loop.

The event loop only queues requests (:meth:`MicroBatcher.submit`, cheap, nothing parsed);
a worker thread (or, ``inline``, the event loop itself right after it has taken in what
arrived together) hands them to ``process`` in arrival order, in micro-batches, and the
futures are resolved back on the event loop. What a request *is* is ``process``'s
business: this module only knows its kind, payload, estimated UEs and deadline, so it is
tested alone with a fake ``process`` (``tests/service/test_service_batcher.py``).

Bounds: at most ``max_queued_requests`` requests, and (with one queued) at most
``max_queued_ues`` UEs, admitted and not yet answered; beyond that a request is shed at
once with :class:`~service.errors.Overloaded`. A request whose deadline passed while it was
queued, or whose caller cancelled, is dropped before ``process`` sees it
(:class:`~service.errors.DeadlineExceeded`). A micro-batch holds at most
``max_ues`` UEs (but always one request) and waits at most ``max_wait_s`` after its first
request's arrival for more, and only while other requests are in flight.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.errors import DeadlineExceeded, InternalError, Overloaded
from service.wire import RequestKind

log = logging.getLogger("service.batcher")


@dataclass
class Request:
    """A queued request, as :meth:`MicroBatcher.submit` received it."""

    kind: RequestKind
    payload: Any
    fut: asyncio.Future[Any]
    t_submit: float  # time.perf_counter() at submission
    deadline: float | None = None  # perf_counter() time after which nobody waits for it
    ues: int = 0  # estimated UEs, counted in MicroBatcher.queued_ues until answered
    cell_hint: int | None = None  # the cell it was routed for (x-ran-cell-id), unchecked


@dataclass
class Processed:
    """What ``process`` returns for a micro-batch: per request, its result or the
    exception to raise in its caller (any order, each request at most once), and ``then``,
    run on the event loop once the futures are resolved."""

    outcomes: list[tuple[asyncio.Future[Any], Any]] = field(default_factory=list)
    then: Callable[[], None] | None = None


Process = Callable[[list[Request]], Processed]


class MicroBatcher:
    """Queue + worker of the data plane.

    Parameters
    ----------
    process : Callable[[list[Request]], Processed]
        Runs one micro-batch (worker thread, or the event loop when ``inline``). Should it
        raise, every request of that micro-batch fails with
        :class:`~service.errors.InternalError` and the worker carries on.
    max_ues : int
        UEs per micro-batch (a larger single request still forms one).
    max_wait_s : float
        Longest wait after a micro-batch's first request for more requests (seconds).
    max_queued_requests, max_queued_ues : int
        Admission bounds.
    inline : bool
        No worker thread: micro-batches run on the event loop.
    count_shed : Callable[[str], None]
        Called with the reason ("queue_full", "deadline", "cancelled") of each shed request.
    """

    def __init__(
        self,
        process: Process,
        *,
        max_ues: int,
        max_wait_s: float,
        max_queued_requests: int,
        max_queued_ues: int,
        inline: bool = False,
        count_shed: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.process = process
        self.max_ues = max_ues
        self.max_wait_s = max_wait_s
        self.max_queued_requests = max_queued_requests
        self.max_queued_ues = max_queued_ues
        self.inline = inline
        self.count_shed = count_shed
        # admitted, not yet answered: requests and their (estimated) UEs
        self.in_flight = 0
        self.queued_ues = 0
        self.worker: threading.Thread | None = None
        # bounded by the admission check of submit(): at most max_queued_requests entries
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inline_scheduled = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the event loop that submits and awaits; start the worker thread."""
        self._loop = loop
        if not self.inline:
            self.worker = threading.Thread(target=self._worker_main, name="inference", daemon=True)
            self.worker.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the worker finish what is queued and exit (bounded wait)."""
        if self.worker is not None:
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self.worker.join, timeout)
            self.worker = None

    def submit(
        self,
        kind: RequestKind,
        payload: Any,
        ues: int,
        deadline: float | None = None,
        cell_hint: int | None = None,
        *,
        bounded: bool = True,
    ) -> asyncio.Future[Any]:
        """Queue one request (event-loop thread; nothing is parsed here).

        Input
        -----
        kind : RequestKind
            How ``payload`` is carried (see :mod:`service.wire`).
        payload : Any
            Handed to ``process`` untouched.
        ues : int
            Estimated UEs (admission and micro-batch bounds).
        deadline : float or None
            ``time.perf_counter()`` time after which the request is dropped unprocessed.
        cell_hint : int or None
            The cell the request was routed for (``x-ran-cell-id``), handed to ``process``
            with it (:mod:`service.cell_affinity`).
        bounded : bool
            ``False``: admitted past the admission bounds, never shed (a control request
            of the server itself, e.g. the drain's state snapshot).

        Output
        ------
        future : asyncio.Future
            Resolves to ``process``'s result for this request, or raises its exception.
            Already failed with :class:`~service.errors.Overloaded` (nothing queued) when
            an admission bound is reached.
        """
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if bounded and self.full(ues):
            fut.set_exception(self.shed())
            return fut
        # counted until answered (not until its future is done: a caller that gives up
        # cancels the future, but the request still sits in the queue)
        self.in_flight += 1
        self.queued_ues += ues
        self._queue.put(Request(kind, payload, fut, time.perf_counter(), deadline, ues, cell_hint))
        if self.inline and not self._inline_scheduled:
            self._inline_scheduled = True
            loop.call_soon(self._drain_inline)
        return fut

    def full(self, ues: int) -> bool:
        """Whether a request of ``ues`` (estimated) UEs would be shed now: the admission
        check of :meth:`submit`, two integer comparisons, so an adapter can refuse before it
        reads or looks at anything else of the request."""
        return self.in_flight >= self.max_queued_requests or bool(
            self.in_flight and self.queued_ues + ues > self.max_queued_ues
        )

    def shed(self) -> Overloaded:
        """Count one request shed at the admission bound; the error to answer it with."""
        self.count_shed("queue_full")
        return Overloaded(
            "request",
            f"overloaded: {self.in_flight} requests / ~{self.queued_ues} UEs queued "
            f"(max_queued_requests={self.max_queued_requests}, "
            f"max_queued_ues={self.max_queued_ues}); retry later",
            "queue_full",
        )

    # ------------------------------------------------------------------ worker side
    def _worker_main(self) -> None:
        """Worker thread: take the oldest request, then whatever else is queued, waiting
        up to ``max_wait_s`` after that request's arrival for more while others are in
        flight, up to ``max_ues``. Under load, requests queue up while a micro-batch
        runs, so micro-batches grow by themselves."""
        q = self._queue
        while True:
            first = q.get()
            if first is None:
                return
            batch = [first]
            ues = first.ues
            until = first.t_submit + self.max_wait_s
            stop = False
            while ues < self.max_ues:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    remaining = until - time.perf_counter()
                    # nothing else in flight (e.g. one stream): waiting only adds latency
                    if remaining <= 0 or self.in_flight <= len(batch):
                        break
                    try:
                        nxt = q.get(timeout=remaining)
                    except queue.Empty:
                        break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                ues += nxt.ues
            self._run(batch)
            if stop:
                return

    def _drain_inline(self) -> None:
        """``inline``: run everything queued now, on the event loop."""
        self._inline_scheduled = False
        batch: list[Request] = []
        while True:
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                break
            if req is not None:
                batch.append(req)
        if batch:
            self._run(batch)

    def _run(self, batch: list[Request]) -> None:
        """Drop the requests nobody waits for, process the rest, hand the results back
        (``process`` raising fails its requests, never the worker)."""
        now = time.perf_counter()
        live: list[Request] = []
        dropped: list[tuple[asyncio.Future[Any], Any]] = []
        for r in batch:
            expired = r.deadline is not None and now >= r.deadline
            if r.fut.cancelled():  # the caller is gone (gRPC cancels on its deadline)
                reason = "deadline" if expired else "cancelled"
                self.count_shed(reason)
                dropped.append((r.fut, DeadlineExceeded("request", "cancelled", reason)))
            elif expired:
                # the client has given up: deciding would only cost time the requests
                # behind it are waiting for
                assert r.deadline is not None
                self.count_shed("deadline")
                late = f"deadline passed {1e3 * (now - r.deadline):.1f} ms before processing"
                dropped.append((r.fut, DeadlineExceeded("request", late, "deadline")))
            else:
                live.append(r)
        try:
            done = self.process(live) if live else Processed()
        except Exception as exc:
            log.exception("micro-batch failed")
            err = InternalError("request", f"internal error: {exc}")
            done = Processed([(r.fut, err) for r in live])
        done.outcomes[:0] = dropped
        n_ues = sum(r.ues for r in batch)
        if self.inline:
            self._deliver(done, len(batch), n_ues)
        else:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._deliver, done, len(batch), n_ues)

    def _deliver(self, done: Processed, n_requests: int, n_ues: int) -> None:
        """Event-loop side: free the admission places, resolve the futures, run ``then``."""
        self.in_flight -= n_requests
        self.queued_ues -= n_ues
        for fut, res in done.outcomes:
            if fut.done():
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)
        if done.then is not None:
            done.then()
