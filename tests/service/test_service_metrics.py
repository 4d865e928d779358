"""The exposition passes ``promtool check metrics`` and a real Prometheus server scrapes the
xApp on loopback (the Debian ``prometheus`` package must be installed: missing = failure)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from service_testing import ServerThread, grpc_request, random_reports

from ran_distill.xapp_process import free_port
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` not found: install the Debian package `prometheus` "
            "(apt-get install -y prometheus)"
        )
    return path


def _traffic(server: ServerThread) -> None:
    rng = np.random.default_rng(0)
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for slot in range(3):
            stub.Decide(grpc_request(31, slot, random_reports(rng, np.arange(64))), timeout=5)
        stub.ReportOutcome(
            pb.OutcomeReport(
                cell_id=31, slot=0, ue_id=[1, 2], delivered_bits=[100, 0], first_tx_ack=[1, 0]
            ),
            timeout=5,
        )
        with pytest.raises(grpc.RpcError):
            stub.Decide(
                pb.DecideRequest(
                    cell_id=31,
                    ue_id=[1],
                    cqi=[99],
                    cqi_age_slots=[0],
                    harq_ack=[-1],
                    harq_mcs=[0],
                    rank=[1],
                    n_prb=[1],
                    n_symbols=[1],
                ),
                timeout=5,
            )


def test_promtool_check_metrics(server: ServerThread) -> None:
    promtool = _binary("promtool")
    _traffic(server)
    text = httpx.get(f"{server.http_base}/ric/v1/metrics").text
    for name in (
        "ran_distill_decisions_total",
        "ran_distill_requests_total",
        "ran_distill_invalid_requests_total",
        "ran_distill_batch_size_ues_bucket",
        "ran_distill_stage_latency_seconds_bucket",
        "ran_distill_tracked_ues",
        "ran_distill_model_info",
        "ran_distill_model_parameters",
        "ran_distill_model_reloads_total",
        "ran_distill_cell_mcs_bucket",
        "ran_distill_cell_delivered_bytes_total",
    ):
        assert name in text, name
    for stage in ("queue_wait", "state_features", "inference", "total"):
        assert f'stage="{stage}"' in text
    assert 'le="1e-05"' in text and 'le="0.1"' in text  # 10 µs … 100 ms buckets
    assert "ue_id" not in text.split("# HELP")[0] and 'ue="' not in text
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


def test_real_prometheus_scrapes_the_xapp(server: ServerThread, tmp_path: Path) -> None:
    prometheus = _binary("prometheus")
    _traffic(server)
    target = server.http_base.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: ran-distill\n    metrics_path: /ric/v1/metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        result = None
        for _ in range(600):  # bounded: ≤ ~60 s
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                r = httpx.get(
                    f"{api}/query", params={"query": "ran_distill_decisions_total"}, timeout=2
                )
                if r.status_code == 200 and r.json()["data"]["result"]:
                    result = r.json()["data"]["result"]
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert result, "prometheus never stored a sample of ran_distill_decisions_total"
        assert {s["metric"]["source"] for s in result} == {"model", "fallback"}
        assert all(s["metric"]["job"] == "ran-distill" for s in result)
        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
        r = httpx.get(
            f"{api}/query", params={"query": "ran_distill_stage_latency_seconds_bucket"}, timeout=5
        )
        assert {s["metric"]["stage"] for s in r.json()["data"]["result"]} == {
            "queue_wait",
            "state_features",
            "inference",
            "shadow",  # exists at 0 without a candidate
            "total",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
