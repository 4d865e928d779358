"""Admission in the cell-affine router (``deploy/haproxy/haproxy.cfg``): HAProxy keeps at
most ``server_maxconn`` unary calls in flight per replica, queues a few more, and refuses
the rest at once with a gRPC RESOURCE_EXHAUSTED of its own, so an overload is shed in the
proxy and never costs the replica a call. ``DecideStream`` goes around the limit: a
stream is one call for as long as the cell lives.

Needs Debian's ``haproxy`` (``make system-deps``); fails, not skips, without it.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_testing import raw_decide

from ran_distill.haproxy_process import Backend, Proxy, haproxy_process
from ran_distill.xapp_process import xapp_process
from service.cell_affinity import CELL_ID_HEADER
from service.proto_gen import link_adaptation_pb2 as pb

DECIDE = "/linkadapt.v1.LinkAdaptation/Decide"
STREAM = "/linkadapt.v1.LinkAdaptation/DecideStream"
ROUTER_REFUSAL = "ran-distill router: replica queue full"
DECIDE_LABELS = (("protocol", "grpc"), ("method", "Decide"))


def _metric(http_port: int, name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (name, value)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels)
    )


@pytest.fixture(scope="module")
def routed(model_dir: Path) -> Iterator[tuple[Proxy, int]]:
    """One xApp behind HAProxy admitting one unary call in flight and one waiting."""
    with xapp_process(model_dir, env={"RAN_DISTILL_LOG_LEVEL": "WARNING"}) as (_, g, h):
        backend = Backend("xapp1", "127.0.0.1", g, h)
        with haproxy_process([backend], server_maxconn=1, queue_per_server=1) as proxy:
            yield proxy, h


def test_a_burst_beyond_the_queue_is_refused_by_the_proxy(routed: tuple[Proxy, int]) -> None:
    proxy, http_port = routed
    shed_before = _metric(http_port, "ran_distill_shed_requests_total")
    decided_before = _metric(http_port, "ran_distill_requests_total", DECIDE_LABELS)

    async def burst() -> list[grpc.StatusCode | pb.DecideResponse]:
        async with grpc.aio.insecure_channel(proxy.grpc_target) as ch:
            call = ch.unary_unary(DECIDE, response_deserializer=pb.DecideResponse.FromString)

            async def one(k: int) -> grpc.StatusCode | pb.DecideResponse:
                cell = 300 + k
                try:
                    resp: pb.DecideResponse = await call(
                        raw_decide(cell, 1, n=64),
                        metadata=((CELL_ID_HEADER, str(cell)),),
                        timeout=10,
                    )
                    return resp
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                    assert exc.details() == ROUTER_REFUSAL, exc
                    return exc.code()

            return await asyncio.gather(*(one(k) for k in range(60)))

    answers = asyncio.run(burst())
    ok = [a for a in answers if isinstance(a, pb.DecideResponse)]
    refused = len(answers) - len(ok)
    assert ok and refused, f"{len(ok)} answered, {refused} refused"
    assert all(len(a.mcs) == 64 for a in ok)
    # the refused calls never reached the replica: it shed nothing and saw only the others
    assert _metric(http_port, "ran_distill_shed_requests_total") == shed_before
    seen = _metric(http_port, "ran_distill_requests_total", DECIDE_LABELS) - decided_before
    assert seen == len(ok), (seen, len(ok))


def test_streams_are_not_held_by_the_call_limit(routed: tuple[Proxy, int]) -> None:
    """Four cells' streams open at once through a proxy admitting one unary call per
    replica: every stream is answered slot after slot (a stream in the limited backend
    would wait behind the first one until the queue timeout)."""
    proxy, _ = routed

    async def cell_stream(ch: grpc.aio.Channel, cell: int) -> int:
        call = ch.stream_stream(STREAM, response_deserializer=pb.DecideResponse.FromString)(
            metadata=((CELL_ID_HEADER, str(cell)),), timeout=10
        )
        answered = 0
        for slot in range(1, 6):
            await call.write(raw_decide(cell, slot, n=8))
            resp = await call.read()
            assert isinstance(resp, pb.DecideResponse) and len(resp.mcs) == 8
            answered += 1
        await call.done_writing()
        return answered

    async def main() -> list[int]:
        async with grpc.aio.insecure_channel(proxy.grpc_target) as ch:
            streams = [cell_stream(ch, 400 + c) for c in range(4)]
            return await asyncio.wait_for(asyncio.gather(*streams), timeout=20)

    assert asyncio.run(main()) == [5, 5, 5, 5]
