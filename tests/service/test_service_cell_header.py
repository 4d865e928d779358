"""The cell id outside the body (``x-ran-cell-id``): the clients send it on every per-cell
call, and the xApp refuses a call routed for another cell than the one it carries, over
gRPC (unary, stream, merged micro-batches) and REST."""

from __future__ import annotations

import http.server
import threading
from concurrent import futures
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from service_testing import ServerThread, grpc_request, json_request, random_reports

from linkadapt.reports import ReportBatch
from service.cell_affinity import CELL_ID_HEADER, CellHeaderError, parse_cell_header
from service.client import XappClient
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.rest_client import RestError, XappRestClient

DECIDE = "/linkadapt.v1.LinkAdaptation/Decide"


def _cols(seed: int, n: int = 8, base: int = 500) -> dict[str, np.ndarray]:
    return random_reports(np.random.default_rng(seed), np.arange(base, base + n))


def _batch(cell: int, seed: int = 0) -> ReportBatch:
    cols = _cols(seed)
    n = cols["ue_id"].shape[0]
    return ReportBatch.from_arrays(cell_id=np.full(n, cell), **cols)


def _trailer(err: grpc.RpcError) -> dict[str, str]:
    return dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("7", 7), (b"42", 42), (" 9 ", 9), (str(2**63 - 1), 2**63 - 1)],
)
def test_parse_header(value: Any, expected: int | None) -> None:
    assert parse_cell_header(value) == expected


@pytest.mark.parametrize("value", ["", "-1", "7a", "0x10", "1e3", str(2**63), "٣"])
def test_parse_header_refuses_non_ids(value: str) -> None:
    with pytest.raises(CellHeaderError, match=CELL_ID_HEADER):
        parse_cell_header(value)


def test_grpc_unary_checks_the_header(server: ServerThread) -> None:
    req = grpc_request(31, 1, _cols(0)).SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        call = ch.unary_unary(DECIDE)
        ok = pb.DecideResponse.FromString(call(req, metadata=((CELL_ID_HEADER, "31"),), timeout=5))
        assert len(ok.mcs) == 8
        assert len(pb.DecideResponse.FromString(call(req, timeout=5)).mcs) == 8  # no header
        with pytest.raises(grpc.RpcError) as err:
            call(req, metadata=((CELL_ID_HEADER, "32"),), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _trailer(err.value)["invalid-field"] == "cell_id"
        assert "31" in err.value.details() and CELL_ID_HEADER in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            call(req, metadata=((CELL_ID_HEADER, "cell-31"),), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _trailer(err.value)["invalid-field"] == CELL_ID_HEADER


def test_refused_call_changes_nothing(server: ServerThread) -> None:
    """A mismatching call is refused before admission: its UEs are not tracked."""
    before = server.call(lambda: server.app.dataplane.state.n_tracked)
    req = grpc_request(33, 1, _cols(1, base=9000)).SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch, pytest.raises(grpc.RpcError):
        ch.unary_unary(DECIDE)(req, metadata=((CELL_ID_HEADER, "34"),), timeout=5)
    assert server.call(lambda: server.app.dataplane.state.n_tracked) == before
    assert server.call(lambda: 33 in server.app.dataplane.state.cells) is False


def test_merged_micro_batch_refuses_only_the_mismatch(server: ServerThread) -> None:
    """Concurrent well-formed requests are validated as one merged batch; the one whose
    header names another cell still gets its own refusal, the others their decisions."""
    reqs = [grpc_request(40 + i, 1, _cols(i, base=100 * i)).SerializeToString() for i in range(8)]
    with grpc.insecure_channel(server.grpc_target) as ch:
        call = ch.unary_unary(DECIDE)
        futs = [
            call.future(r, metadata=((CELL_ID_HEADER, str(40 + i + (i == 5))),), timeout=10)
            for i, r in enumerate(reqs)
        ]
        for i, f in enumerate(futs):
            if i == 5:
                with pytest.raises(grpc.RpcError) as err:
                    f.result()
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert _trailer(err.value)["invalid-field"] == "cell_id"
            else:
                assert len(pb.DecideResponse.FromString(f.result()).mcs) == 8


def test_grpc_stream_header_applies_to_every_message(server: ServerThread) -> None:
    msgs = [grpc_request(50 if k != 2 else 51, k, _cols(k)) for k in range(4)]
    with XappClient(server.grpc_target) as client:
        out = list(client.decide_stream(msgs, cell_id=50, timeout=20))
    assert [r.slot for r in out] == [0, 1, 2, 3]
    assert out[2].error.code == 3 and out[2].error.field == "cell_id"
    assert all(len(r.mcs) == 8 for k, r in enumerate(out) if k != 2)


def test_grpc_stream_with_a_malformed_header_is_refused(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as ch:
        stream = ch.stream_stream("/linkadapt.v1.LinkAdaptation/DecideStream")
        req = grpc_request(52, 0, _cols(0)).SerializeToString()
        with pytest.raises(grpc.RpcError) as err:
            list(stream(iter([req]), metadata=((CELL_ID_HEADER, "52x"),), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer(err.value)["invalid-field"] == CELL_ID_HEADER


def test_grpc_outcome_and_release_check_the_header(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        md = ((CELL_ID_HEADER, "61"),)
        outcome = pb.OutcomeReport(
            cell_id=60, slot=1, ue_id=[1], delivered_bits=[10], first_tx_ack=[1]
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportOutcome(outcome, metadata=md, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _trailer(err.value)["invalid-field"] == "cell_id"
        with pytest.raises(grpc.RpcError) as err:
            stub.ReleaseUe(pb.ReleaseUeRequest(cell_id=60, ue_id=[1]), metadata=md, timeout=5)
        assert _trailer(err.value)["invalid-field"] == "cell_id"


def test_rest_checks_the_header(server: ServerThread) -> None:
    base = server.http_base
    body = json_request(70, 1, _cols(2))
    r = httpx.post(f"{base}/v1/decisions", json=body, headers={CELL_ID_HEADER: "70"})
    assert r.status_code == 200 and len(r.json()["mcs"]) == 8
    r = httpx.post(f"{base}/v1/decisions", json=body, headers={CELL_ID_HEADER: "71"})
    assert r.status_code == 422 and r.json()["field"] == "cell_id"
    assert CELL_ID_HEADER in r.json()["detail"][0]["msg"]
    r = httpx.post(f"{base}/v1/decisions", json=body, headers={CELL_ID_HEADER: "x"})
    assert r.status_code == 422 and r.json()["field"] == CELL_ID_HEADER
    outcome = {"cell_id": 70, "slot": 1, "ue_id": [500], "delivered_bits": [8], "first_tx_ack": [1]}
    r = httpx.post(f"{base}/v1/outcomes", json=outcome, headers={CELL_ID_HEADER: "71"})
    assert r.status_code == 422 and r.json()["field"] == "cell_id"
    release = {"cell_id": 70, "ue_id": [500]}
    r = httpx.post(f"{base}/v1/ues/release", json=release, headers={CELL_ID_HEADER: "71"})
    assert r.status_code == 422 and r.json()["field"] == "cell_id"
    r = httpx.post(f"{base}/v1/ues/release", json=release, headers={CELL_ID_HEADER: "70"})
    assert r.status_code == 200 and r.json() == {"released": 1}


def test_rest_client_against_the_server(server: ServerThread) -> None:
    with XappRestClient(server.http_base) as rest, XappClient(server.grpc_target) as grpc_client:
        m_rest, s_rest, v_rest = rest.decide(_batch(80), cell_id=80, slot=1)
        m_grpc, s_grpc, v_grpc = grpc_client.decide(_batch(81), cell_id=81, slot=1)
        # same reports, fresh UEs in two cells: the same decisions over both protocols
        assert m_rest.tolist() == m_grpc.tolist() and s_rest.tolist() == s_grpc.tolist()
        assert v_rest == v_grpc != ""
        assert rest.release(cell_id=80, ue_ids=[500]) == 1
        with pytest.raises(RestError) as err:
            rest.release(cell_id=80, ue_ids=[500])  # already gone
        assert err.value.status == 422 and err.value.field == "ue_id"


# ------------------------------------------------------------ what the clients put on the wire
class _RecordingServicer:
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def handler(self) -> grpc.GenericRpcHandler:
        def record(request: Any, context: grpc.ServicerContext) -> Any:
            self.metadata.append(dict(context.invocation_metadata()))
            return pb.DecideResponse()

        def record_stream(requests: Any, context: grpc.ServicerContext) -> Any:
            self.metadata.append(dict(context.invocation_metadata()))
            for _ in requests:
                yield pb.DecideResponse()

        unary = {
            name: grpc.unary_unary_rpc_method_handler(
                record,
                request_deserializer=lambda b: b,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name in ("Decide", "ReportOutcome", "ReleaseUe")
        }
        unary["DecideStream"] = grpc.stream_stream_rpc_method_handler(
            record_stream,
            request_deserializer=lambda b: b,
            response_serializer=lambda m: m.SerializeToString(),
        )
        return grpc.method_handlers_generic_handler("linkadapt.v1.LinkAdaptation", unary)


def test_grpc_client_sends_the_cell_on_every_call() -> None:
    rec = _RecordingServicer()
    srv = grpc.server(futures.ThreadPoolExecutor(2))
    srv.add_generic_rpc_handlers((rec.handler(),))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        with XappClient(f"127.0.0.1:{port}") as client:
            client.decide(_batch(17), cell_id=17, slot=3)
            client.report_outcome(
                cell_id=18, slot=3, ue_id=[1], delivered_bits=[1], first_tx_ack=[1]
            )
            client.release(cell_id=19, ue_ids=[1])
            list(client.decide_stream([grpc_request(20, 0, _cols(0))], cell_id=20, timeout=5))
    finally:
        srv.stop(0)
    assert [md.get(CELL_ID_HEADER) for md in rec.metadata] == ["17", "18", "19", "20"]


def test_rest_client_sends_the_cell_header() -> None:
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["content-length"]))
            seen.append(self.headers.get(CELL_ID_HEADER))
            body = b'{"released": 1}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        with XappRestClient(f"http://127.0.0.1:{httpd.server_address[1]}") as rest:
            assert rest.release(cell_id=23, ue_ids=[1]) == 1
            assert rest.release(cell_id=24, ue_ids=[1]) == 1
    finally:
        httpd.shutdown()
    assert seen == ["23", "24"]
