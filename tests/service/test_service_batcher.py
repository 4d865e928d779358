"""The micro-batcher alone, driven with a fake ``process``: micro-batch bounds, admission
bounds and shedding, arrival order, deadlines, and error propagation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from service.batcher import MicroBatcher, Processed, Request
from service.errors import DeadlineExceeded, InternalError, InvalidArgument, Overloaded

pytestmark = pytest.mark.timeout(60)


class FakeProcess:
    """Answers each request with ``("done", payload)``; records the micro-batches (their
    payloads) and the thread they ran on; can hold the worker at its first call."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[Any]] = []
        self.threads: list[str] = []
        self.entered = threading.Event()
        self.open = threading.Event()
        if not hold_first:
            self.open.set()
        self.fail_payloads: set[Any] = set()  # these get an InvalidArgument of their own
        self.raise_on: Any = None  # a micro-batch holding this payload raises

    def __call__(self, requests: list[Request]) -> Processed:
        self.entered.set()
        assert self.open.wait(10)
        payloads = [r.payload for r in requests]
        self.batches.append(payloads)
        self.threads.append(threading.current_thread().name)
        if self.raise_on in payloads:
            raise RuntimeError("synthetic bug")
        outcomes: list[tuple[asyncio.Future[Any], Any]] = []
        for r in requests:
            if r.payload in self.fail_payloads:
                outcomes.append((r.fut, InvalidArgument("cqi", f"bad {r.payload}")))
            else:
                outcomes.append((r.fut, ("done", r.payload)))
        return Processed(outcomes)


def _batcher(process: FakeProcess, **kw: Any) -> tuple[MicroBatcher, list[str]]:
    shed: list[str] = []
    args: dict[str, Any] = {
        "max_ues": 1000,
        "max_wait_s": 0.0,
        "max_queued_requests": 100,
        "max_queued_ues": 10_000,
        "count_shed": shed.append,
    }
    args.update(kw)
    return MicroBatcher(process, **args), shed


def _run(batcher: MicroBatcher, body: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    async def main() -> Any:
        batcher.start(asyncio.get_running_loop())
        try:
            return await body()
        finally:
            await batcher.stop()

    return asyncio.run(main())


async def _settle(futs: list[asyncio.Future[Any]]) -> list[Any]:
    """Results (or exceptions) of ``futs``; a future never resolved fails the test."""
    return await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 10)


async def _held(process: FakeProcess) -> None:
    """Wait (without blocking the loop) until the worker is inside ``process``."""
    assert await asyncio.get_running_loop().run_in_executor(None, process.entered.wait, 10)


def test_micro_batches_respect_max_ues_and_keep_arrival_order() -> None:
    process = FakeProcess(hold_first=True)
    batcher, shed = _batcher(process, max_ues=8)

    async def body() -> list[Any]:
        first = batcher.submit("cols", "r0", 1)
        await _held(process)  # r0 is being processed: the rest queue up behind it
        rest = [batcher.submit("cols", f"r{i}", 4) for i in range(1, 6)]
        assert batcher.in_flight == 6 and batcher.queued_ues == 21
        process.open.set()
        return await _settle([first, *rest])

    results = _run(batcher, body)
    assert results == [("done", f"r{i}") for i in range(6)]
    # 4 + 4 UEs reach max_ues = 8: every later micro-batch holds two requests at most
    assert process.batches == [["r0"], ["r1", "r2"], ["r3", "r4"], ["r5"]]
    assert set(process.threads) == {"inference"}
    assert batcher.in_flight == 0 and batcher.queued_ues == 0 and shed == []


def test_a_request_above_max_ues_still_forms_a_micro_batch() -> None:
    process = FakeProcess()
    batcher, _ = _batcher(process, max_ues=8)

    async def body() -> list[Any]:
        return await _settle([batcher.submit("cols", "big", 50)])

    assert _run(batcher, body) == [("done", "big")]
    assert process.batches == [["big"]]


def test_a_lone_request_does_not_wait_for_company() -> None:
    """``max_wait_s`` only applies while other requests are in flight: one stream's
    messages must not each pay it."""
    process = FakeProcess()
    batcher, _ = _batcher(process, max_wait_s=5.0)

    async def body() -> list[Any]:
        out = []
        for i in range(3):
            out += await _settle([batcher.submit("cols", f"r{i}", 1)])
        return out

    t0 = time.perf_counter()
    assert _run(batcher, body) == [("done", f"r{i}") for i in range(3)]
    assert time.perf_counter() - t0 < 4.0
    assert process.batches == [["r0"], ["r1"], ["r2"]]


def test_request_bound_sheds_at_once_and_frees_up_after() -> None:
    process = FakeProcess(hold_first=True)
    batcher, shed = _batcher(process, max_queued_requests=2)

    async def body() -> tuple[list[Any], Any]:
        held = batcher.submit("cols", "r0", 1)
        await _held(process)
        queued = batcher.submit("cols", "r1", 1)
        over = batcher.submit("cols", "r2", 1)
        assert over.done() and not queued.done()  # refused at once, nothing queued
        assert batcher.in_flight == 2
        process.open.set()
        got = await _settle([held, queued, over])
        (after,) = await _settle([batcher.submit("cols", "r3", 1)])  # places freed
        return got, after

    (r0, r1, r2), r3 = _run(batcher, body)
    assert (r0, r1, r3) == (("done", "r0"), ("done", "r1"), ("done", "r3"))
    assert isinstance(r2, Overloaded) and r2.field == "request" and r2.reason == "queue_full"
    assert "max_queued_requests=2" in r2.message
    assert shed == ["queue_full"]
    assert ["r2"] not in process.batches and "r2" not in sum(process.batches, [])


def test_unbounded_control_request_passes_a_full_queue_and_hints_travel() -> None:
    """``bounded=False`` (the drain's state snapshot) is queued past the admission bounds,
    counted in flight like any request; ``cell_hint`` reaches ``process`` unchanged."""
    process = FakeProcess(hold_first=True)
    batcher, shed = _batcher(process, max_queued_requests=1)
    seen: list[tuple[Any, Any]] = []
    inner = process.__call__

    def recording(requests: list[Request]) -> Processed:
        seen.extend((r.payload, r.cell_hint) for r in requests)
        return inner(requests)

    batcher.process = recording

    async def body() -> list[Any]:
        held = batcher.submit("cols", "r0", 1, None, 7)
        await _held(process)
        over = batcher.submit("cols", "r1", 1)
        control = batcher.submit("handover", "snapshot", 0, bounded=False)
        assert over.done() and not control.done() and batcher.in_flight == 2
        process.open.set()
        return await _settle([held, control, over])

    r0, ctl, r1 = _run(batcher, body)
    assert (r0, ctl) == (("done", "r0"), ("done", "snapshot")) and isinstance(r1, Overloaded)
    assert seen == [("r0", 7), ("snapshot", None)]
    assert shed == ["queue_full"] and batcher.in_flight == 0


def test_ue_bound_sheds_but_one_request_is_always_admitted() -> None:
    process = FakeProcess(hold_first=True)
    batcher, shed = _batcher(process, max_queued_ues=10)

    async def body() -> list[Any]:
        big = batcher.submit("cols", "big", 500)  # alone: admitted whatever its size
        await _held(process)
        small = batcher.submit("cols", "small", 1)  # 500 + 1 > 10 UEs queued
        process.open.set()
        return await _settle([big, small])

    big, small = _run(batcher, body)
    assert big == ("done", "big")
    assert isinstance(small, Overloaded) and "max_queued_ues=10" in small.message
    assert shed == ["queue_full"]


def test_expired_and_cancelled_requests_are_dropped_before_process() -> None:
    process = FakeProcess(hold_first=True)
    batcher, shed = _batcher(process)

    async def body() -> list[Any]:
        held = batcher.submit("cols", "r0", 1)
        await _held(process)
        late = batcher.submit("cols", "late", 1, deadline=time.perf_counter() + 0.01)
        gone = batcher.submit("cols", "gone", 1)
        ok = batcher.submit("cols", "ok", 1, deadline=time.perf_counter() + 60)
        gone.cancel()
        await asyncio.sleep(0.05)  # "late"'s deadline passes while it is queued
        process.open.set()
        return await _settle([held, late, ok])

    held, late, ok = _run(batcher, body)
    assert held == ("done", "r0") and ok == ("done", "ok")
    assert isinstance(late, DeadlineExceeded) and late.reason == "deadline"
    assert "before processing" in late.message
    assert sorted(shed) == ["cancelled", "deadline"]
    assert process.batches == [["r0"], ["ok"]]  # process never saw the dropped ones
    assert batcher.in_flight == 0 and batcher.queued_ues == 0


def test_errors_reach_their_own_callers_and_the_worker_survives() -> None:
    process = FakeProcess(hold_first=True)
    process.fail_payloads = {"bad"}
    process.raise_on = "boom"
    batcher, _ = _batcher(process, max_ues=2)

    async def body() -> list[Any]:
        held = batcher.submit("cols", "r0", 1)
        await _held(process)
        futs = [batcher.submit("cols", p, 1) for p in ("good", "bad", "boom", "mate", "after")]
        process.open.set()
        return await _settle([held, *futs])

    r0, good, bad, boom, mate, after = _run(batcher, body)
    assert process.batches == [["r0"], ["good", "bad"], ["boom", "mate"], ["after"]]
    assert (r0, good, after) == (("done", "r0"), ("done", "good"), ("done", "after"))
    assert isinstance(bad, InvalidArgument) and bad.field == "cqi"  # its own error only
    for err in (boom, mate):  # process raised: its whole micro-batch fails, nothing else
        assert isinstance(err, InternalError) and "synthetic bug" in err.message


def test_then_runs_on_the_event_loop_after_the_futures_resolve() -> None:
    seen: dict[str, Any] = {}

    def process(requests: list[Request]) -> Processed:
        fut = requests[0].fut

        def then() -> None:
            seen["thread"] = threading.current_thread()
            seen["resolved"] = fut.done()

        return Processed([(fut, "x")], then)

    batcher, _ = _batcher(process)  # type: ignore[arg-type]

    async def body() -> Any:
        seen["loop_thread"] = threading.current_thread()
        return await _settle([batcher.submit("cols", "r0", 1)])

    assert _run(batcher, body) == ["x"]
    assert seen["thread"] is seen["loop_thread"] and seen["resolved"]


def test_inline_mode_runs_on_the_event_loop_and_coalesces_a_burst() -> None:
    process = FakeProcess()
    batcher, _ = _batcher(process, inline=True, max_ues=2)

    async def body() -> list[Any]:
        futs = [batcher.submit("cols", f"r{i}", 1) for i in range(4)]
        return await _settle(futs)

    assert _run(batcher, body) == [("done", f"r{i}") for i in range(4)]
    assert batcher.worker is None
    # everything that arrived together, in one call on the loop's thread
    assert process.batches == [["r0", "r1", "r2", "r3"]]
    assert process.threads == ["MainThread"]


@pytest.mark.parametrize("inline", [False, True])
def test_nothing_is_left_in_flight_after_a_mixed_run(inline: bool) -> None:
    process = FakeProcess()
    process.fail_payloads = {"r1"}
    batcher, _ = _batcher(process, inline=inline)

    async def body() -> list[Any]:
        return await _settle([batcher.submit("cols", f"r{i}", 3) for i in range(5)])

    results = _run(batcher, body)
    assert isinstance(results[1], InvalidArgument)
    assert [r for i, r in enumerate(results) if i != 1] == [("done", f"r{i}") for i in (0, 2, 3, 4)]
    assert batcher.in_flight == 0 and batcher.queued_ues == 0
