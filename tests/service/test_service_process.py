"""The real process: ``python -m service serve`` (the CLI ``ran-distill serve`` registers the
same command), JSON logs, graceful SIGTERM (not ready → still serving during the drain
window → exit 0); and the Python client / RemotePolicy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import typer
from service_testing import ServerThread, grpc_request, random_reports

from linkadapt.policy import DecisionBatch, Policy
from linkadapt.reports import ReportBatch
from ran_distill.xapp_process import wait_ready, xapp_process
from service.client import RemotePolicy, XappClient
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_drains_and_exits(model_dir: Path, tmp_path: Path) -> None:
    env = {"RAN_DISTILL_DRAIN_SECONDS": "1.5", "PYTHONPATH": str(REPO)}
    log_path = tmp_path / "log.jsonl"
    with (
        log_path.open("wb") as log_file,
        xapp_process(model_dir, env=env, output=log_file, inherit_settings=False) as (
            proc,
            gport,
            hport,
        ),
    ):
        cols = random_reports(np.random.default_rng(0), np.arange(16))
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            assert len(stub.Decide(grpc_request(1, 0, cols), timeout=5).mcs) == 16
            proc.send_signal(signal.SIGTERM)
            wait_ready(hport, proc=proc, expect=503, timeout=10)  # readiness went 503
            # during the drain window requests are still served
            assert len(stub.Decide(grpc_request(1, 1, cols), timeout=5).mcs) == 16
        assert proc.wait(30) == 0
    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    msgs = [r["msg"] for r in records]
    assert "xApp serving" in msgs and "draining" in msgs and "stopped" in msgs
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


def test_cli_register_adds_serve() -> None:
    from typer.testing import CliRunner

    from service.cli import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    register(app)
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--grpc-port", "--http-port"):
        assert flag in result.output
    bad = CliRunner().invoke(app, ["serve", "--grpc-port", "70000"])
    assert bad.exit_code == 2 and "grpc_port" in bad.output


def test_client_and_remote_policy(server: ServerThread) -> None:
    rng = np.random.default_rng(3)
    n = 12
    cols = random_reports(rng, np.arange(900, 900 + n))
    cols["cell_id"] = np.array([5] * 6 + [6] * 6)
    reports = ReportBatch.from_arrays(**cols)
    policy = RemotePolicy(server.grpc_target)
    try:
        assert isinstance(policy, Policy)
        batch = DecisionBatch(obs=np.zeros((n, 1), np.float32), reports=reports, rows=np.arange(n))
        mcs = policy.act(batch)
        assert mcs.shape == (n,) and ((mcs >= 0) & (mcs < 28)).all()
        assert set(policy.last_source.tolist()) == {1}
        dp = server.app.dataplane
        base = policy.cell_base
        for cell in (5, 6):  # one request per cell, in this policy's own cell-id range
            known = server.call(lambda c=cell: dp.state.lookup(base + c, np.arange(900, 912))[1])
            assert known.sum() == 6
        with XappClient(server.grpc_target) as client:
            m5, s5, version = client.decide(reports.take(np.arange(6)), cell_id=5, slot=1)
            assert version and set(s5.tolist()) == {1}
            assert client.get_model().loaded
            assert (
                client.report_outcome(
                    cell_id=5, slot=1, ue_id=[900], delivered_bits=[8], first_tx_ack=[1]
                )
                == 1
            )
        policy.reset(np.arange(6))  # releases cell 5's UEs on the server
        known = server.call(lambda: dp.state.lookup(base + 5, np.arange(900, 906))[1].copy())
        assert not known.any()
        policy.reset(np.arange(6))  # idempotent
    finally:
        policy.close()


def test_service_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import service.app, service.cli, service.client, service.dataplane, service.rest\n"
        "import service.grpc_server, service.registry, service.state, service.metrics\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m == 'torch' or m.startswith(('torch.', 'training')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_xapp_as_a_policy_in_the_evaluation_loop(tmp_path: Path) -> None:
    """End to end through the simulator: with no model the xApp's decisions are its OLLA
    fallback, so the paired-seed evaluation must give exactly the KPIs of linkadapt's own
    OLLA baseline on every seed (same reports → same state → same MCS, over gRPC)."""
    from linkadapt.sim.evaluation import baseline_factory, evaluate

    srv = ServerThread(model_dir=tmp_path / "no-model")
    try:
        res = evaluate(
            {"xapp": lambda n: RemotePolicy(srv.grpc_target), "olla": baseline_factory("olla")},
            "mimo",
            [0, 1],
            n_ues=16,
            n_slots=40,
        )
        for seed in (0, 1):
            assert res.per_seed["xapp"][seed] == res.per_seed["olla"][seed], seed
        reg = srv.app.dataplane.metrics.registry
        assert reg.get_sample_value("ran_distill_decisions_total", {"source": "fallback"}) > 0
    finally:
        srv.stop()
