"""Client resilience (issue 13): the retry/keepalive service config, ``wait_for_ready`` for
a client started before the xApp, and RemotePolicy's local OLLA fallback when the xApp
cannot be reached."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from service_testing import ServerThread, random_reports

from linkadapt.baselines import OllaPolicy
from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch
from ran_distill.xapp_process import free_port
from service.client import RETRY_POLICY, RemotePolicy, XappClient, channel_options


def _batch(rng: np.random.Generator, n: int = 12) -> DecisionBatch:
    cols = random_reports(rng, np.arange(900, 900 + n))
    cols["cell_id"] = np.array([5] * (n // 2) + [6] * (n - n // 2))
    reports = ReportBatch.from_arrays(**cols)
    return DecisionBatch(obs=np.zeros((n, 1), np.float32), reports=reports, rows=np.arange(n))


def test_channel_retries_unavailable_with_capped_backoff() -> None:
    opts = dict(channel_options())
    cfg = json.loads(opts["grpc.service_config"])
    (method,) = cfg["methodConfig"]
    assert method["name"] == [{"service": "linkadapt.v1.LinkAdaptation"}]
    assert method["retryPolicy"] == RETRY_POLICY
    assert RETRY_POLICY["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert float(RETRY_POLICY["maxBackoff"].rstrip("s")) <= 1.0
    assert cfg["retryThrottling"]["maxTokens"] > 0
    assert opts["grpc.enable_retries"] == 1 and opts["grpc.keepalive_time_ms"] == 30_000


def test_remote_policy_falls_back_to_olla_when_the_xapp_is_gone(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir)
    policy = RemotePolicy(srv.grpc_target, timeout=2.0)
    reference = OllaPolicy(12)  # linkadapt's OLLA, fed the same batches
    rng = np.random.default_rng(5)
    try:
        for _ in range(3):  # served by the xApp; the local OLLA is stepped all the same
            batch = _batch(rng)
            reference.act(batch)
            policy.act(batch)
            assert set(policy.last_source.tolist()) == {1}
        assert (policy.fallback_calls, policy.fallback_ues) == (0, 0)
    finally:
        srv.stop()
    for _ in range(2):  # the xApp is stopped: OLLA's MCS, no exception
        batch = _batch(rng)
        expected = reference.act(batch)
        mcs = policy.act(batch)
        np.testing.assert_array_equal(mcs, expected)
        assert set(policy.last_source.tolist()) == {2}
    assert (policy.fallback_calls, policy.fallback_ues) == (4, 24)  # 2 cells x 2 slots
    policy.reset(np.arange(6))  # releasing on a stopped xApp: counted, not raised
    assert policy.release_failures == 1
    policy.close()


def test_remote_policy_still_raises_on_invalid_argument(server: ServerThread) -> None:
    policy = RemotePolicy(server.grpc_target)
    try:
        batch = _batch(np.random.default_rng(6))
        policy.client.stub = _BadStub(policy.client.stub)  # sends an unserved MCS table
        with pytest.raises(grpc.RpcError) as err:
            policy.act(batch)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        policy.close()


class _BadStub:
    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def Decide(self, request: Any, **kw: Any) -> Any:  # noqa: N802 (gRPC method name)
        request.mcs_table = 1  # the server serves table 2
        return self._stub.Decide(request, **kw)


def test_wait_for_ready_client_started_before_the_server(model_dir: Path) -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    reports = _batch(np.random.default_rng(7)).reports
    with XappClient(target, timeout=2.0) as fail_fast, pytest.raises(grpc.RpcError) as err:
        fail_fast.decide(reports, cell_id=5, slot=0)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    client = XappClient(target, timeout=20.0, wait_for_ready=True)
    out: dict[str, Any] = {}

    def call() -> None:
        try:
            out["result"] = client.decide(reports, cell_id=5, slot=0)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and not out  # waiting for the server, not failed
    srv = ServerThread(model_dir=model_dir, grpc_port=port)
    try:
        thread.join(20)
        assert "error" not in out, out.get("error")
        mcs, source, version = out["result"]
        assert mcs.shape == (12,) and version
    finally:
        client.close()
        srv.stop()
