"""Cheap shedding and fair streams (issue 13, second part), on real servers on loopback.

Under overload most calls are refused, and on a 2-core box every refused call costs the
event loop, which the inference worker shares through the GIL: a refusal must do nothing
but the admission check (no metadata, deadline, authorization or body). And one busy
``DecideStream`` must not fill the shared micro-batch queue ahead of other cells'
requests: by default a stream holds at most 2 places in it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from service_testing import Gate, ServerThread, raw_decide, sample, wait_for

from service.cell_affinity import CELL_ID_HEADER
from service.config import Settings
from service.proto_gen import link_adaptation_pb2 as pb

DECIDE = "/linkadapt.v1.LinkAdaptation/Decide"
STREAM = "/linkadapt.v1.LinkAdaptation/DecideStream"


def _shed(srv: ServerThread) -> float:
    return sample(srv, "ran_distill_shed_requests_total", {"reason": "queue_full"})


def test_grpc_sheds_before_metadata_or_deadline_are_looked_at(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, max_queued_requests=1)
    gate = Gate(srv)
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            call = ch.unary_unary(DECIDE)
            held = call.future(raw_decide(1, 0), timeout=30)
            assert gate.entered.wait(10)  # the only place in the queue is taken
            # a malformed routing header would be INVALID_ARGUMENT, a request past its
            # deadline DEADLINE_EXCEEDED: with the queue full, neither is even looked at
            bad_header = ((CELL_ID_HEADER, "not-a-cell"),)
            with pytest.raises(grpc.RpcError) as err:
                call(raw_decide(2, 0), metadata=bad_header, timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_queued_requests=1" in (err.value.details() or "")
            assert _shed(srv) == 1
            gate.release()
            assert len(pb.DecideResponse.FromString(held.result(10)).mcs) == 16
            # not full any more: the same header is refused for what it is
            with pytest.raises(grpc.RpcError) as err:
                call(raw_decide(2, 0), metadata=bad_header, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        invalid = {"protocol": "grpc", "reason": "queue_full", "field": "request"}
        assert sample(srv, "ran_distill_invalid_requests_total", invalid) == 0
    finally:
        gate.release()
        srv.stop()


def _post_headers_only(port: int, content_length: int) -> bytes:
    """Send a decisions POST's headers and none of its body; what the server answers
    before the body arrives (bounded wait)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {content_length}\r\n\r\n".encode()
        )
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_rest_sheds_before_reading_the_body(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, max_queued_requests=1)
    gate = Gate(srv)
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            held = ch.unary_unary(DECIDE).future(raw_decide(1, 0), timeout=30)
            assert gate.entered.wait(10)
            # the body never comes: only a refusal that does not read it can answer
            head = _post_headers_only(srv.app.http_port, 100_000)
            assert head.startswith(b"HTTP/1.1 503"), head[:200]
            assert b"retry-after: 1" in head.lower()
            assert _shed(srv) == 1
            gate.release()
            assert len(pb.DecideResponse.FromString(held.result(10)).mcs) == 16
    finally:
        gate.release()
        srv.stop()


def test_a_busy_stream_holds_at_most_two_places_by_default(model_dir: Path) -> None:
    assert Settings.model_fields["stream_max_in_flight"].default == 2
    srv = ServerThread(model_dir=model_dir)
    dp = srv.app.dataplane
    gate = Gate(srv)
    n = 40
    try:

        async def stream() -> list[Any]:
            async with grpc.aio.insecure_channel(srv.grpc_target) as ch:
                call = ch.stream_stream(STREAM)(timeout=30)
                for slot in range(n):  # the whole pipeline at once, like a busy gNB
                    await call.write(raw_decide(9, slot, n=64))
                await call.done_writing()
                return [pb.DecideResponse.FromString(r) async for r in call]

        out: dict[str, Any] = {}

        def client() -> None:
            out["responses"] = asyncio.run(stream())

        th = threading.Thread(target=client, daemon=True)
        th.start()
        assert gate.entered.wait(10)  # the worker holds the stream's first message
        wait_for(lambda: dp.stream_pending >= 2, "the stream's read-ahead")
        # the stream has written everything it can; the queue still holds 2 of its
        # messages, other cells' requests find the rest of it free
        assert dp.in_flight == 2 and dp.stream_pending == 2
        with grpc.insecure_channel(srv.grpc_target) as ch:
            other = ch.unary_unary(DECIDE).future(raw_decide(10, 0), timeout=30)
            wait_for(lambda: dp.in_flight == 3, "another cell's request admitted")
            gate.release()
            assert len(pb.DecideResponse.FromString(other.result(10)).mcs) == 16
        th.join(30)
        assert [r.slot for r in out["responses"]] == list(range(n))
        assert dp.stream_pending_peak == 2
    finally:
        gate.release()
        srv.stop()


def test_outcomes_are_folded_off_the_event_loop_within_a_bound(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir)
    folder = srv.app.dataplane.outcomes
    folder.max_pending = 2
    threads: list[str] = []
    hold = threading.Event()
    fold = folder.kpis.fold

    def held_fold(*args: Any) -> None:
        threads.append(threading.current_thread().name)
        hold.wait(30)
        fold(*args)

    folder.kpis.fold = held_fold  # type: ignore[method-assign]
    report = pb.OutcomeReport(cell_id=5, slot=1, ue_id=[1, 2], delivered_bits=[800, 0])
    report.first_tx_ack.extend([1, 0])
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            outcome = ch.unary_unary(
                "/linkadapt.v1.LinkAdaptation/ReportOutcome",
                request_serializer=pb.OutcomeReport.SerializeToString,
                response_deserializer=pb.OutcomeAck.FromString,
            )
            pending = [outcome.future(report, timeout=30) for _ in range(2)]
            wait_for(lambda: folder.pending == 2, "two reports pending")
            # the event loop is free meanwhile: a decide request is answered
            resp = ch.unary_unary(DECIDE)(raw_decide(6, 0), timeout=10)
            assert len(pb.DecideResponse.FromString(resp).mcs) == 16
            # at the bound: shed at once, over gRPC and REST
            with pytest.raises(grpc.RpcError) as err:
                outcome(report, timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            body = {"cell_id": 5, "slot": 2, "ue_id": [1], "delivered_bits": [8]}
            r = httpx.post(f"{srv.http_base}/v1/outcomes", json={**body, "first_tx_ack": [1]})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert _shed(srv) == 2
            hold.set()
            assert [f.result(10).accepted for f in pending] == [2, 2]
        wait_for(lambda: folder.pending == 0, "the reports folded in")
        assert len(threads) == 2, threads  # the shed ones were never folded
        assert all(name.startswith("outcomes") for name in threads), threads
        assert srv.call(lambda: 5 in folder.kpis.cells)
    finally:
        hold.set()
        srv.stop()


def test_half_sent_rest_body_is_refused_and_its_connection_closed(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, http_body_timeout_seconds=0.5)
    try:
        for path in ("/v1/decisions", "/v1/outcomes"):
            with socket.create_connection(("127.0.0.1", srv.app.http_port), timeout=10) as s:
                s.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000\r\n\r\n".encode()
                    + b'{"cell_id": 1, "ue_id": ['  # and then nothing more
                )
                data = b""
                while chunk := s.recv(65536):  # until the server closes (bounded wait)
                    data += chunk
            assert data.startswith(b"HTTP/1.1 408"), (path, data[:300])
            assert b'"field":"body"' in data
        labels = {"protocol": "rest", "reason": "body_timeout", "field": "body"}
        assert sample(srv, "ran_distill_invalid_requests_total", labels) == 2
    finally:
        srv.stop()
