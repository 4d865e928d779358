"""The xApp under load, faults and hostile clients (issue 13, first part), on real servers on
loopback: bounded admission and load shedding, DecideStream flow control, bounded per-cell
KPI series, HTTP hardening (streaming body limit, uvicorn limits, /docs and reflection
switches) and readiness with ``require_model``."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from service_testing import (
    ADMIN_TOKEN,
    Gate,
    ServerThread,
    grpc_request,
    json_request,
    random_reports,
    raw_decide,
    sample,
    wait_for,
    write_model_dir,
)

from service.kpis import KPI_MAX_UES
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

DECIDE = "/linkadapt.v1.LinkAdaptation/Decide"


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # surfaced by the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


# ----------------------------------------------------------------------------- 1. shedding


def test_flood_is_shed_at_the_admission_bound_then_serves_normally(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, max_queued_requests=4)
    gate = Gate(srv)
    n_grpc, n_rest = 40, 16
    try:

        async def grpc_flood() -> list[Any]:
            async with grpc.aio.insecure_channel(srv.grpc_target) as ch:
                call = ch.unary_unary(DECIDE)
                return await asyncio.gather(
                    *(call(raw_decide(100 + i, 0), timeout=30) for i in range(n_grpc)),
                    return_exceptions=True,
                )

        async def rest_flood() -> list[httpx.Response]:
            body = json_request(1, 0, random_reports(np.random.default_rng(1), np.arange(8)))
            async with httpx.AsyncClient(base_url=srv.http_base, timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post("/v1/decisions", json={**body, "cell_id": 500 + i})
                        for i in range(n_rest)
                    )
                )

        t1, g = _in_thread(lambda: asyncio.run(grpc_flood()))
        # 4 admitted (held by the gate), every other request shed at once
        wait_for(
            lambda: (
                sample(srv, "ran_distill_shed_requests_total", {"reason": "queue_full"})
                >= n_grpc - 4
            ),
            "gRPC shedding",
        )
        t2, r = _in_thread(lambda: asyncio.run(rest_flood()))
        wait_for(
            lambda: (
                sample(srv, "ran_distill_shed_requests_total", {"reason": "queue_full"})
                >= n_grpc - 4 + n_rest
            ),
            "REST shedding",
        )
        assert srv.app.dataplane.in_flight == 4
        gate.release()
        t1.join(30)
        t2.join(30)
        assert "error" not in g and "error" not in r, (g.get("error"), r.get("error"))
        grpc_results, rest_results = g["result"], r["result"]
        codes = [x.code() for x in grpc_results if isinstance(x, grpc.RpcError)]
        assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * (n_grpc - 4), codes
        ok = [pb.DecideResponse.FromString(x) for x in grpc_results if isinstance(x, bytes)]
        assert len(ok) == 4 and all(len(x.mcs) == 16 for x in ok)
        assert [x.status_code for x in rest_results] == [503] * n_rest
        assert {x.headers["retry-after"] for x in rest_results} == {"1"}
        assert {x.json()["field"] for x in rest_results} == {"request"}
        # shed requests are not invalid ones, and they changed nothing
        assert (
            sample(
                srv,
                "ran_distill_invalid_requests_total",
                {"protocol": "grpc", "reason": "queue_full", "field": "request"},
            )
            == 0
        )
        assert srv.call(lambda: len(srv.app.dataplane.state.cells)) == 4
        # the server serves normally afterwards (gRPC and REST), and says it is healthy
        with grpc.insecure_channel(srv.grpc_target) as ch:
            resp = pb.DecideResponse.FromString(ch.unary_unary(DECIDE)(raw_decide(7, 1), timeout=5))
            assert len(resp.mcs) == 16
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        body = json_request(8, 1, random_reports(np.random.default_rng(2), np.arange(4)))
        assert httpx.post(f"{srv.http_base}/v1/decisions", json=body).status_code == 200
        assert srv.app.dataplane.in_flight == 0 and srv.app.dataplane.queued_ues == 0
        text = httpx.get(f"{srv.http_base}/metrics").text
        shed = n_grpc - 4 + n_rest
        assert f'ran_distill_shed_requests_total{{reason="queue_full"}} {shed}.0' in text
    finally:
        gate.release()
        srv.stop()


def test_ue_bound_sheds_and_one_request_is_always_admitted(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, max_queued_ues=64)
    gate = Gate(srv)
    try:
        big = raw_decide(1, 0, n=200)  # ~200+ UEs estimated: above the bound, admitted when alone

        async def two() -> list[Any]:
            async with grpc.aio.insecure_channel(srv.grpc_target) as ch:
                call = ch.unary_unary(DECIDE)
                first = asyncio.ensure_future(call(big, timeout=30))
                await asyncio.sleep(0.2)
                second = await asyncio.gather(
                    call(raw_decide(2, 0, n=4), timeout=30), return_exceptions=True
                )
                gate.release()
                return [await first, *second]

        first, second = asyncio.run(two())
        assert len(pb.DecideResponse.FromString(first).mcs) == 200
        assert isinstance(second, grpc.RpcError)
        assert second.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queued_ues=64" in (second.details() or "")
    finally:
        gate.release()
        srv.stop()


def test_deadline_expired_in_the_queue_is_dropped(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir)
    gate = Gate(srv)
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            call = ch.unary_unary(DECIDE)
            held = call.future(raw_decide(1, 0), timeout=30)
            assert gate.entered.wait(10)  # the worker holds the first request
            with pytest.raises(grpc.RpcError) as err:
                call(raw_decide(2, 0), timeout=0.3)  # queued behind it; the client gives up
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            gate.release()
            assert len(pb.DecideResponse.FromString(held.result(10)).mcs) == 16
        wait_for(
            lambda: sample(srv, "ran_distill_shed_requests_total", {"reason": "deadline"}) == 1,
            "the deadline drop",
        )
        # dropped before processing: cell 2's UEs were never admitted
        assert srv.call(lambda: 2 not in srv.app.dataplane.state.cells)
    finally:
        gate.release()
        srv.stop()


def test_stale_slots_are_dropped(server: ServerThread) -> None:
    cell, lag = 4242, server.settings.max_slot_lag
    with grpc.insecure_channel(server.grpc_target) as ch:
        call = ch.unary_unary(DECIDE)
        call(raw_decide(cell, 5000), timeout=5)
        call(raw_decide(cell, 5000 - lag), timeout=5)  # within max_slot_lag: served
        fresh = random_reports(np.random.default_rng(0), np.arange(900, 904))  # new UEs
        with pytest.raises(grpc.RpcError) as err:
            call(grpc_request(cell, 5000 - lag - 1, fresh).SerializeToString(), timeout=5)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "behind the newest slot 5000" in (err.value.details() or "")
        r = httpx.post(f"{server.http_base}/v1/decisions", json=json_request(cell, 4000, fresh))
        assert r.status_code == 409 and r.json()["field"] == "slot", r.text
        # the stale requests changed nothing
        known = server.call(lambda: server.app.dataplane.state.lookup(cell, np.arange(900, 904)))
        assert not known[1].any()
        # far behind (> 1024 slots): a restarted slot counter, accepted and followed
        call(raw_decide(cell, 10), timeout=5)
        call(raw_decide(cell, 11), timeout=5)
    assert sample(server, "ran_distill_shed_requests_total", {"reason": "stale"}) == 2


# ----------------------------------------------------------------------------- 2. streams


def test_stream_that_never_reads_is_held_by_flow_control(model_dir: Path) -> None:
    bound = 4
    srv = ServerThread(model_dir=model_dir, stream_max_in_flight=bound)
    dp = srv.app.dataplane
    n_msgs = 2000
    msgs = [raw_decide(77, slot, n=16, seed=slot % 7) for slot in range(n_msgs)]
    try:

        async def hostile() -> dict[str, Any]:
            # no BDP probing: the client's receive window stays small, as for a client
            # that never reads, so the server's writes (and then its reads) must stop
            opts = [("grpc.http2.bdp_probe", 0)]
            async with grpc.aio.insecure_channel(srv.grpc_target, options=opts) as ch:
                call = ch.stream_stream("/linkadapt.v1.LinkAdaptation/DecideStream")()
                written = 0

                async def writer() -> None:
                    nonlocal written
                    for m in msgs:
                        await call.write(m)
                        written += 1

                task = asyncio.create_task(writer())
                await asyncio.sleep(1.5)  # write as much as the server lets us
                peak_meanwhile = dp.stream_pending_peak
                # another cell, another gNB: served at once
                async with grpc.aio.insecure_channel(srv.grpc_target) as other:
                    t0 = time.perf_counter()
                    resp = await other.unary_unary(DECIDE)(raw_decide(78, 0), timeout=5)
                    other_s = time.perf_counter() - t0
                out = {
                    "written": written,
                    "peak": peak_meanwhile,
                    "other_s": other_s,
                    "other": pb.DecideResponse.FromString(resp),
                    "read": sample(
                        srv,
                        "ran_distill_requests_total",
                        {"protocol": "grpc", "method": "DecideStream"},
                    ),
                }
                call.cancel()
                task.cancel()
                return out

        out = asyncio.run(hostile())
        assert out["peak"] <= bound, out
        assert dp.stream_pending_peak <= bound
        assert len(out["other"].mcs) == 16 and out["other_s"] < 2.0, out
        # the server stopped reading long before 2000: the rest waits in gRPC's buffers
        # (the client's writes complete into its own send buffer)
        assert out["read"] < n_msgs, out
        wait_for(lambda: dp.stream_pending == 0 and dp.open_streams == 0, "stream cleanup")
    finally:
        srv.stop()


def test_stream_pipelines_up_to_the_bound(server: ServerThread) -> None:
    """A well-behaved stream still gets every answer, in order, with the bound active."""
    msgs = [pb.DecideRequest.FromString(raw_decide(88, slot, n=8)) for slot in range(100)]
    with grpc.insecure_channel(server.grpc_target) as ch:
        out = list(pb_grpc.LinkAdaptationStub(ch).DecideStream(iter(msgs), timeout=20))
    assert [r.slot for r in out] == list(range(100))
    assert all(len(r.mcs) == 8 for r in out)
    assert server.app.dataplane.stream_pending_peak <= server.settings.stream_max_in_flight


# ----------------------------------------------------------------------------- 3. KPI bounds


def test_outcome_cells_beyond_the_cap_create_no_series(model_dir: Path) -> None:
    cap, n_cells = 16, 2000
    srv = ServerThread(model_dir=model_dir, max_kpi_cells=cap)
    dp = srv.app.dataplane
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            report = ch.unary_unary("/linkadapt.v1.LinkAdaptation/ReportOutcome")
            for cell in range(n_cells):
                report(
                    pb.OutcomeReport(
                        cell_id=10_000 + cell,
                        slot=1,
                        ue_id=[1, 2],
                        delivered_bits=[800, 0],
                        first_tx_ack=[1, 0],
                    ).SerializeToString(),
                    timeout=5,
                )
            # one cell, the same slot again and again, fresh UE ids every time
            for i in range(300):
                report(
                    pb.OutcomeReport(
                        cell_id=10_000,
                        slot=1,
                        ue_id=list(range(i * 8, i * 8 + 8)),
                        delivered_bits=[8] * 8,
                        first_tx_ack=[1] * 8,
                    ).SerializeToString(),
                    timeout=5,
                )

        def cells_in_metrics() -> set[str]:
            text = httpx.get(f"{srv.http_base}/metrics").text
            return {
                line.split('cell="', 1)[1].split('"', 1)[0]
                for line in text.splitlines()
                if line.startswith("ran_distill_cell_") and 'cell="' in line
            }

        assert len(cells_in_metrics()) == cap
        assert sample(srv, "ran_distill_kpi_cells_dropped_total") == n_cells - cap
        assert sample(srv, "ran_distill_kpi_cells") == cap
        kpi = srv.call(lambda: dp.kpis.cells[10_000])
        assert kpi.ues.shape[0] <= KPI_MAX_UES  # fixed-size state whatever the reports
        # silent cells free their places (and their series) after ue_ttl_seconds
        srv.call(lambda: dp.kpis.expire(time.monotonic() + 2 * srv.settings.ue_ttl_seconds))
        assert cells_in_metrics() == set()
        with grpc.insecure_channel(srv.grpc_target) as ch:
            pb_grpc.LinkAdaptationStub(ch).ReportOutcome(
                pb.OutcomeReport(
                    cell_id=99, slot=1, ue_id=[1], delivered_bits=[8], first_tx_ack=[1]
                ),
                timeout=5,
            )
        assert cells_in_metrics() == {"99"}
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- 4. HTTP


def _http_port(srv: ServerThread) -> int:
    return srv.app.http_port


def test_oversized_chunked_body_is_refused_unbuffered(model_dir: Path) -> None:
    limit, body_size, chunk = 65536, 32 * 1024 * 1024, b"x" * 65536
    srv = ServerThread(model_dir=model_dir, http_max_body_bytes=limit)
    try:
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            with socket.create_connection(("127.0.0.1", _http_port(srv)), timeout=10) as s:
                s.sendall(
                    b"POST /v1/outcomes HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                sent = 0
                while sent < body_size:
                    if select.select([s], [], [], 0)[0]:
                        break  # the answer came before the body ended
                    try:
                        s.sendall(frame)
                    except OSError:  # the server closed the connection on us
                        break
                    sent += len(chunk)
                s.settimeout(10)
                head = s.recv(65536)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
        assert sent < body_size  # refused while the body was still coming
        assert peak - base < 8 * 1024 * 1024, (peak - base, sent)  # far below the body size
        # a declared Content-Length above the limit is refused before the body is sent
        with socket.create_connection(("127.0.0.1", _http_port(srv)), timeout=10) as s:
            s.sendall(
                b"POST /v1/ues/release HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            )
            assert s.recv(65536).startswith(b"HTTP/1.1 413")
        # the server keeps serving
        r = httpx.post(
            f"{srv.http_base}/v1/outcomes",
            json={
                "cell_id": 1,
                "slot": 1,
                "ue_id": [1],
                "delivered_bits": [8],
                "first_tx_ack": [1],
            },
        )
        assert r.status_code == 200, r.text
    finally:
        srv.stop()


def test_docs_reflection_off_and_uvicorn_limits(model_dir: Path) -> None:
    srv = ServerThread(
        model_dir=model_dir,
        http_docs_enabled=False,
        grpc_reflection_enabled=False,
        http_keep_alive_seconds=1,
        http_limit_concurrency=3,
    )
    try:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(f"{srv.http_base}{path}").status_code == 404, path
        assert httpx.get(f"{srv.http_base}/ric/v1/health/ready").status_code == 200
        with grpc.insecure_channel(srv.grpc_target) as ch:
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            req = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.RpcError) as err:
                list(stub.ServerReflectionInfo(iter([req]), timeout=5))
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        # timeout_keep_alive: an idle keep-alive connection is closed after ~1 s
        with socket.create_connection(("127.0.0.1", _http_port(srv)), timeout=10) as s:
            s.sendall(b"GET /ric/v1/health/alive HTTP/1.1\r\nHost: x\r\n\r\n")
            response = b""
            while not response.endswith(b'{"status":"alive"}'):  # headers and body
                chunk = s.recv(65536)
                assert chunk, response
                response += chunk
            assert response.startswith(b"HTTP/1.1 200")
            t0 = time.monotonic()
            assert s.recv(65536) == b""  # closed by the server
            assert time.monotonic() - t0 < 5
        # limit_concurrency: with 3 connections open, uvicorn answers 503 itself
        idle = [
            socket.create_connection(("127.0.0.1", _http_port(srv)), timeout=10) for _ in range(3)
        ]
        try:
            time.sleep(0.2)
            assert httpx.get(f"{srv.http_base}/ric/v1/health/alive").status_code == 503
        finally:
            for s in idle:
                s.close()
        wait_for(
            lambda: httpx.get(f"{srv.http_base}/ric/v1/health/alive").status_code == 200,
            "connections closed",
        )
    finally:
        srv.stop()


def test_reflection_and_docs_on_by_default(server: ServerThread) -> None:
    assert httpx.get(f"{server.http_base}/docs").status_code == 200
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        (resp,) = list(stub.ServerReflectionInfo(iter([req]), timeout=5))
        names = {s.name for s in resp.list_services_response.service}
        assert "linkadapt.v1.LinkAdaptation" in names


# ----------------------------------------------------------------------------- 5. readiness


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        statuses = {
            stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            for name in ("", "linkadapt.v1.LinkAdaptation")
        }
    (status,) = statuses
    return status


def test_require_model_readiness_follows_the_model(tmp_path: Path) -> None:
    model = write_model_dir(tmp_path / "m", corrupt_golden=True)  # the load fails
    srv = ServerThread(model_dir=model, require_model=True, admin_token=ADMIN_TOKEN)
    try:
        r = httpx.get(f"{srv.http_base}/ric/v1/health/ready")
        assert (r.status_code, r.json()) == (503, {"status": "no_model"})
        assert _health(srv.grpc_target) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert sample(srv, "ran_distill_ready") == 0
        # still answers (OLLA fallback): not ready only keeps new traffic away
        with grpc.insecure_channel(srv.grpc_target) as ch:
            resp = pb.DecideResponse.FromString(ch.unary_unary(DECIDE)(raw_decide(1, 0), timeout=5))
        assert set(resp.source) == {pb.DECISION_SOURCE_FALLBACK}
        write_model_dir(model)  # a valid model now; reload it
        r = httpx.post(
            f"{srv.http_base}/v1/model/reload",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert r.json()["ok"] is True
        assert httpx.get(f"{srv.http_base}/ric/v1/health/ready").status_code == 200
        wait_for(
            lambda: _health(srv.grpc_target) == health_pb2.HealthCheckResponse.SERVING,
            "gRPC health SERVING after the model loaded",
        )
        assert sample(srv, "ran_distill_ready") == 1
    finally:
        srv.stop()


def test_without_require_model_no_model_is_ready(tmp_path: Path) -> None:
    srv = ServerThread(model_dir=tmp_path / "absent")
    try:
        r = httpx.get(f"{srv.http_base}/ric/v1/health/ready")
        assert (r.status_code, r.json()) == (200, {"status": "ready"})
        assert _health(srv.grpc_target) == health_pb2.HealthCheckResponse.SERVING
    finally:
        srv.stop()
