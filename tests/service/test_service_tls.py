"""Transport security on a real server on loopback (issue 13): TLS on both ports, mutual
TLS (no client certificate, or one from another CA, is refused), and the per-cell
authorization of mTLS clients: a gNB may inject reports, outcomes and releases only for its
own cells, and a refused request leaves the cell's state (and so its next MCS) untouched.
Certificates are made at test time (``tls_testing``)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from service_testing import ServerThread, grpc_request, json_request, random_reports
from tls_testing import Issued, Pki, issue, make_pki

from service.client import RemotePolicy, XappClient
from service.config import ConfigError, load_settings
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.tls import channel_credentials

CELLS_A = (1, 2)  # gnb-a
CELLS_B = (3, 4, 5)  # gnb-b (by its URI SAN)
UES = np.arange(10, 18)
CELLS_FILE = """\
# client identity (certificate CN or SAN) -> cells it may speak for
identities:
  gnb-a.ran.test: [1, "2-2"]
  spiffe://ran.test/gnb-b: ["3-5"]
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    """Signed by the right CA, but none of its names is in the cells file."""
    return issue(pki.ca, tmp_path_factory.mktemp("stranger"), "gnb-c", dns=("gnb-c.ran.test",))


def _tls_settings(pki: Pki) -> dict[str, Any]:
    return {"tls_cert_file": str(pki.server.cert), "tls_key_file": str(pki.server.key)}


def _mtls_settings(pki: Pki) -> dict[str, Any]:
    return _tls_settings(pki) | {
        "tls_client_ca_file": str(pki.ca.cert),
        "tls_require_client_cert": True,
    }


@pytest.fixture(scope="module")
def tls_server(model_dir: Path, pki: Pki) -> Iterator[ServerThread]:
    srv = ServerThread(model_dir=model_dir, **_tls_settings(pki))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(
    model_dir: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    cells = tmp_path_factory.mktemp("authz") / "cells.yaml"
    cells.write_text(CELLS_FILE)
    srv = ServerThread(
        model_dir=model_dir, max_slot_lag=0, authz_cells_file=str(cells), **_mtls_settings(pki)
    )
    yield srv
    srv.stop()


def _channel(srv: ServerThread, pki: Pki, who: Issued | None) -> grpc.Channel:
    creds = channel_credentials(pki.ca.cert, who.cert if who else None, who.key if who else None)
    return grpc.secure_channel(srv.grpc_target, creds)


def _http(pki: Pki, who: Issued | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
    if who is not None:
        ctx.load_cert_chain(who.cert, who.key)
    return httpx.Client(verify=ctx, timeout=10)


def _denied(srv: ServerThread, protocol: str, reason: str) -> float:
    value = srv.app.dataplane.metrics.registry.get_sample_value(
        "ran_distill_denied_requests_total", {"protocol": protocol, "reason": reason}
    )
    return value or 0.0


# ----------------------------------------------------------------------------- TLS


def test_tls_serves_both_protocols_and_plaintext_is_refused(
    tls_server: ServerThread, pki: Pki
) -> None:
    cols = random_reports(np.random.default_rng(0), UES)
    with XappClient(tls_server.grpc_target, tls_ca_file=pki.ca.cert) as client:
        assert client.get_model().loaded
    with _channel(tls_server, pki, None) as ch:
        resp = pb_grpc.LinkAdaptationStub(ch).Decide(grpc_request(7, 0, cols), timeout=10)
    assert len(resp.mcs) == len(UES)
    with _http(pki, None) as http:
        assert tls_server.http_base.startswith("https://")
        r = http.post(f"{tls_server.http_base}/v1/decisions", json=json_request(7, 1, cols))
        assert r.status_code == 200, r.text
    # plaintext on the TLS ports: no answer at all
    with grpc.insecure_channel(tls_server.grpc_target) as ch, pytest.raises(grpc.RpcError) as e:
        pb_grpc.LinkAdaptationStub(ch).GetModel(pb.GetModelRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    plain = tls_server.http_base.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/ric/v1/health/ready", timeout=5)
    # client options that do not fit together are refused up front
    with pytest.raises(ValueError, match="tls=False"):
        XappClient(tls_server.grpc_target, tls=False, tls_ca_file=pki.ca.cert)
    with pytest.raises(ValueError, match="go together"):
        channel_credentials(pki.ca.cert, pki.gnb_a.cert, None)
    # a client that does not trust the server's CA refuses the server
    with XappClient(tls_server.grpc_target, tls_ca_file=pki.rogue_ca.cert) as client:
        with pytest.raises(grpc.RpcError) as e:
            client.get_model()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


# ----------------------------------------------------------------------------- mutual TLS


def test_mtls_refuses_a_missing_or_foreign_client_certificate(
    mtls_server: ServerThread, pki: Pki
) -> None:
    srv = mtls_server
    for who in (None, pki.rogue):  # no certificate; same names, another CA
        with _channel(srv, pki, who) as ch, pytest.raises(grpc.RpcError) as e:
            pb_grpc.LinkAdaptationStub(ch).GetModel(pb.GetModelRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, who
    with _channel(srv, pki, pki.gnb_a) as ch:
        assert pb_grpc.LinkAdaptationStub(ch).GetModel(pb.GetModelRequest(), timeout=5).loaded
    # HTTPS: a foreign certificate fails the handshake
    with _http(pki, pki.rogue) as http, pytest.raises(httpx.TransportError):
        http.get(f"{srv.http_base}/v1/model")
    # no certificate: probes and scrapers still reach health and metrics, /v1/ is refused
    before = _denied(srv, "rest", "no_client_certificate")
    with _http(pki, None) as http:
        assert http.get(f"{srv.http_base}/ric/v1/health/ready").status_code == 200
        assert http.get(f"{srv.http_base}/ric/v1/metrics").status_code == 200
        body = json_request(1, 0, random_reports(np.random.default_rng(1), UES))
        r = http.post(f"{srv.http_base}/v1/decisions", json=body)
        assert r.status_code == 401 and r.json()["field"] == "client_certificate"
        assert http.get(f"{srv.http_base}/v1/model").status_code == 401
    assert _denied(srv, "rest", "no_client_certificate") == before + 2
    with _http(pki, pki.gnb_a) as http:
        assert http.get(f"{srv.http_base}/v1/model").status_code == 200


# ----------------------------------------------------------------------------- authorization


def _snapshot(srv: ServerThread, cell: int) -> tuple[np.ndarray, int]:
    dp = srv.app.dataplane

    def snap() -> tuple[np.ndarray, int]:
        rows, known = dp.state.lookup(cell, UES)
        assert known.all()
        return dp.state.history.encode(rows).copy(), dp.state.n_tracked

    return srv.call(snap)


def _nack(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every UE reports a first-transmission NACK at a high MCS (drags OLLA down)."""
    out = dict(cols)
    out["harq_ack"] = np.zeros(len(UES), np.int64)
    out["harq_mcs"] = np.full(len(UES), 27)
    out["harq_tx_index"] = np.zeros(len(UES), np.int64)
    return out


def test_client_may_not_inject_a_nack_for_another_gnbs_cell(
    mtls_server: ServerThread, pki: Pki
) -> None:
    """gnb-a may speak for cells 1-2; its NACKs for cell 3 (gnb-b's) are refused, and cell
    3 then decides exactly like its twin cell 4, which never saw them; the same NACKs
    sent by gnb-b for cell 5 do change cell 5's decisions."""
    srv = mtls_server
    rng = np.random.default_rng(3)
    history = [random_reports(rng, UES) for _ in range(4)]
    with _channel(srv, pki, pki.gnb_b) as ch_b, _channel(srv, pki, pki.gnb_a) as ch_a:
        b, a = pb_grpc.LinkAdaptationStub(ch_b), pb_grpc.LinkAdaptationStub(ch_a)
        for slot, cols in enumerate(history):  # identical history on cells 3, 4 and 5
            for cell in CELLS_B:
                b.Decide(grpc_request(cell, slot, cols), timeout=10)
        before = _snapshot(srv, 3)
        denied = _denied(srv, "grpc", "cell_not_allowed")
        nacks = [_nack(random_reports(rng, UES)) for _ in range(6)]
        for k, cols in enumerate(nacks):
            with pytest.raises(grpc.RpcError) as e:
                a.Decide(grpc_request(3, 4 + k, cols), timeout=10)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert e.value.details().startswith("cell_id: cell 3:")
            assert "gnb-a" in e.value.details()
        assert _denied(srv, "grpc", "cell_not_allowed") == denied + len(nacks)
        after = _snapshot(srv, 3)
        np.testing.assert_array_equal(after[0], before[0])
        assert after[1] == before[1]
        for k, cols in enumerate(nacks):  # the owner's NACKs reach cell 5
            b.Decide(grpc_request(5, 4 + k, cols), timeout=10)
        probe = random_reports(rng, UES)
        probe["harq_ack"] = np.full(len(UES), -1)
        mcs = {
            cell: list(b.Decide(grpc_request(cell, 20, probe), timeout=10).mcs) for cell in CELLS_B
        }
    assert mcs[3] == mcs[4]  # untouched by gnb-a's injection
    assert mcs[5] != mcs[4]  # the control: those NACKs would have mattered


def test_every_cell_scoped_call_is_authorized(
    mtls_server: ServerThread, pki: Pki, stranger: Issued
) -> None:
    srv = mtls_server
    rng = np.random.default_rng(4)
    with _channel(srv, pki, pki.gnb_a) as ch:
        a = pb_grpc.LinkAdaptationStub(ch)
        a.Decide(grpc_request(1, 0, random_reports(rng, UES)), timeout=10)  # own cell: OK
        outcome = pb.OutcomeReport(cell_id=4, ue_id=[10], delivered_bits=[0], first_tx_ack=[0])
        for call, msg in (
            (a.ReportOutcome, outcome),
            (a.ReleaseUe, pb.ReleaseUeRequest(cell_id=4, ue_id=[10])),
        ):
            with pytest.raises(grpc.RpcError) as e:
                call(msg, timeout=10)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert e.value.details().startswith("cell_id:")
        outcome.cell_id = 1
        assert a.ReportOutcome(outcome, timeout=10).accepted == 1
        # DecideStream: a refused message gets an in-stream error; the stream goes on
        msgs = [grpc_request(c, 1, random_reports(rng, UES)) for c in (1, 3, 2)]
        replies = list(a.DecideStream(iter(msgs), timeout=10))
        assert [r.cell_id for r in replies] == [1, 3, 2]
        assert replies[1].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert replies[1].error.field == "cell_id" and not replies[1].mcs
        assert len(replies[0].mcs) == len(replies[2].mcs) == len(UES)
        assert a.ReleaseUe(pb.ReleaseUeRequest(cell_id=1, ue_id=[10]), timeout=10).released == 1
    unknown = _denied(srv, "grpc", "unknown_identity")
    with _channel(srv, pki, stranger) as ch, pytest.raises(grpc.RpcError) as e:
        pb_grpc.LinkAdaptationStub(ch).Decide(grpc_request(1, 2, random_reports(rng, UES)))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _denied(srv, "grpc", "unknown_identity") == unknown + 1
    # REST: the same rules, HTTP 403 naming cell_id
    with _http(pki, pki.gnb_a) as http:
        base = srv.http_base
        ok = http.post(f"{base}/v1/decisions", json=json_request(2, 3, random_reports(rng, UES)))
        assert ok.status_code == 200, ok.text
        for path, body in (
            ("/v1/decisions", json_request(3, 3, random_reports(rng, UES))),
            ("/v1/outcomes", {"cell_id": 3, "ue_id": [10], "delivered_bits": [0]}),
            ("/v1/ues/release", {"cell_id": 4, "ue_id": [10]}),
        ):
            r = http.post(f"{base}{path}", json=body)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["field"] == "cell_id" and "cell " in r.json()["detail"][0]["msg"]
        r = http.post(f"{base}/v1/decisions", content=b'{"cell_id": "x"}')
        assert r.status_code == 422 and r.json()["field"] == "cell_id"
    assert _denied(srv, "rest", "cell_not_allowed") >= 3
    # the client library and RemotePolicy speak mTLS too
    policy = RemotePolicy(
        srv.grpc_target,
        fresh_state=False,
        tls_ca_file=pki.ca.cert,
        tls_cert_file=pki.gnb_b.cert,
        tls_key_file=pki.gnb_b.key,
    )
    try:
        assert policy.client.get_model().loaded
    finally:
        policy.close()


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"authz_cells_file": "cells.yaml"}, "authz_cells_file needs client-certificate TLS"),
        ({"tls_cert_file": "server.crt"}, "tls_cert_file and tls_key_file must be set together"),
        ({"tls_client_ca_file": "ca.crt"}, "only used with tls_require_client_cert"),
        ({"tls_require_client_cert": True}, "tls_require_client_cert needs TLS"),
    ],
)
def test_insecure_combinations_are_configuration_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**settings)


def test_bad_certificate_or_cells_file_stops_the_start(
    model_dir: Path, pki: Pki, tmp_path: Path
) -> None:
    bad_cells = tmp_path / "cells.yaml"
    bad_cells.write_text("identities:\n  gnb-a: ['7-3']\n")
    cases = [
        (
            _tls_settings(pki) | {"tls_key_file": str(pki.gnb_a.key)},
            "not a certificate and its key",
        ),
        (_tls_settings(pki) | {"tls_cert_file": str(tmp_path / "nope.crt")}, "file not found"),
        (_mtls_settings(pki) | {"tls_client_ca_file": str(pki.server.key)}, "tls_client_ca_file"),
        (_mtls_settings(pki) | {"authz_cells_file": str(bad_cells)}, "'7-3'"),
    ]
    for settings, message in cases:
        with pytest.raises(ConfigError, match=message):
            ServerThread(model_dir=model_dir, **settings)
