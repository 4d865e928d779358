"""A cell's stream (:class:`CellLink`) against fake gRPC calls: answers in order, and a
stream that ends in any way (an RPC error, a write on a finished call) is reopened."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from ran_distill.gnb_link import CellLink
from ran_distill.gnb_stats import GnbStats


@dataclass
class Answer:
    slot: int


class FakeCall:
    """``mode``: "echo" answers every request with its slot; "broken_write" fails the first
    write the way grpc.aio does on a finished call; "eof" ends the stream at once."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.answers: asyncio.Queue[Any] = asyncio.Queue()

    async def write(self, request: int) -> None:
        if self.mode == "broken_write":
            raise asyncio.InvalidStateError("RPC already finished")
        await self.answers.put(Answer(request))

    async def read(self) -> Any:
        if self.mode == "eof":
            return grpc.aio.EOF
        return await self.answers.get()

    def cancel(self) -> bool:
        return True


class FakeStub:
    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.opened = 0

    def DecideStream(self, wait_for_ready: bool) -> FakeCall:  # noqa: N802 (gRPC's name)
        mode = self.modes[min(self.opened, len(self.modes) - 1)]
        self.opened += 1
        return FakeCall(mode)


async def _eventually(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("first", ["broken_write", "eof"])
def test_a_stream_that_ends_is_reopened_and_answers(first: str) -> None:
    async def scenario() -> None:
        stats = GnbStats()
        stub = FakeStub([first, first, "echo"])
        link = CellLink(stub, 3, stats, backoff_initial_s=0.001, backoff_max_s=0.004)
        link.start()
        lost = 0
        while stub.opened < 3:  # a broken write is noticed when something is sent
            fut = link.exchange(lost, lost)
            if fut is not None:
                assert await fut is None
                lost += 1
            await asyncio.sleep(0.001)
        await _eventually(lambda: link.up)
        assert stats.reconnects == 0  # the broken streams never answered
        futs = [link.exchange(slot, slot) for slot in (7, 8, 9)]
        answers = [await f for f in futs if f is not None]
        assert [a.slot for a in answers] == [7, 8, 9]
        assert stats.latency.count == 3
        await link.close()
        assert link.exchange(10, 10) is None and link.refused == "down"

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_pending_answers_resolve_to_none_when_the_stream_breaks() -> None:
    async def scenario() -> None:
        stub = FakeStub(["broken_write", "broken_write"])
        link = CellLink(stub, 0, GnbStats(), backoff_initial_s=0.05, backoff_max_s=0.05)
        link.start()
        await _eventually(lambda: link.up)
        fut = link.exchange(1, 1)
        assert fut is not None and await fut is None  # decided locally, not an exception
        await link.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_backlog_is_refused_not_queued() -> None:
    class Silent(FakeCall):
        async def write(self, request: int) -> None:
            return None  # the xApp never answers

    class SilentStub(FakeStub):
        def DecideStream(self, wait_for_ready: bool) -> FakeCall:  # noqa: N802
            self.opened += 1
            return Silent("echo")

    async def scenario() -> None:
        link = CellLink(SilentStub([]), 0, GnbStats(), max_in_flight=2)
        link.start()
        await _eventually(lambda: link.up)
        assert link.exchange(1, 1) is not None and link.exchange(2, 2) is not None
        assert link.exchange(3, 3) is None and link.refused == "backlog"
        await link.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))
