"""The dashboard against a real Prometheus: the service's metrics registry (fed with
synthetic traffic) is scraped by Debian's Prometheus server, and every panel expression and
every template-variable query must return data, with Grafana's variables substituted the
way Grafana does."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml
from deploy_support import DASHBOARD

from ran_distill.xapp_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JOB, NAMESPACE = "ran-distill", "ricxapp"
SUBSTITUTIONS = {
    "$__rate_interval": "6s",
    "$__range": "1m",
    "$job": JOB,
    "$namespace": NAMESPACE,
    "$cell": ".*",
}


def substitute(expr: str) -> str:
    for var, value in SUBSTITUTIONS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, expr
    return expr


def feed(metrics: Any, stop: threading.Event) -> None:
    """Synthetic traffic of two cells through every metric the dashboard reads."""
    rng = np.random.default_rng(0)
    metrics.model_info.info({"version": "student-4x32", "name": "student"})
    metrics.model_parameters.set(3484)
    metrics.model_loaded.set(1)
    metrics.ready.set(1)
    metrics.tracked_ues_limit.set(100000)
    while not stop.is_set():
        metrics.decisions_model.inc(128)
        metrics.decisions_fallback.inc(1)
        metrics.requests.labels("grpc", "DecideStream").inc(2)
        metrics.invalid_requests.labels("grpc", "invalid_argument", "cqi").inc()
        metrics.batch_size.observe(64)
        metrics.microbatch_size.observe(128)
        metrics.microbatch_requests.observe(2)
        for stage, hist in metrics.latency.items():
            scale = 1e-3 if stage == "total" else 2e-4
            for v in rng.exponential(scale, 8):
                hist.observe(float(v))
        metrics.tracked_ues.set(128)
        metrics.ue_capacity_rejections.inc()
        metrics.ues_expired.inc()
        metrics.ues_released.inc()
        metrics.reloads.labels("success").inc()
        metrics.inference_errors.inc()
        metrics.candidate_loaded.set(1)
        metrics.shadow_decisions.inc(128)
        metrics.shadow_agreements.labels("exact").inc(100)
        metrics.shadow_agreements.labels("one_mcs").inc(120)
        for quantity, gauge in metrics.shadow_window.items():
            gauge.set(0.01 if quantity.startswith("predicted") else 0.9)
        metrics.shadow_streak.set(4000)
        metrics.promotions.labels("admin").inc()
        metrics.rollbacks.inc()
        for cell in (1, 2):
            labels = str(cell)
            metrics.cell_delivered_bytes.labels(labels).inc(125_000)
            metrics.cell_first_tx.labels(labels).inc(64)
            metrics.cell_first_tx_nack.labels(labels).inc(6)
            metrics.cell_throughput.labels(labels).set(1.2e7 * cell)
            metrics.cell_ue_throughput.labels(labels).set(1.9e5 * cell)
            metrics.cell_bler.labels(labels).set(0.09 + 0.01 * cell)
            metrics.cell_throughput_deviation.labels(labels, "uma-3kmh").set(-0.01 * cell)
            metrics.cell_bler_deviation.labels(labels, "uma-3kmh").set(0.005 * cell)
            metrics.cell_mcs.add(cell, rng.integers(0, 28, 64))
        stop.wait(0.2)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import shutil

    from prometheus_client import start_http_server

    from service.metrics import ServiceMetrics

    binary = shutil.which("prometheus")
    assert binary, "prometheus not installed (make system-deps installs Debian's prometheus)"
    metrics = ServiceMetrics()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(metrics, stop), daemon=True)
    feeder.start()
    exporter_port, prom_port = free_port(), free_port()
    server, _ = start_http_server(exporter_port, addr="127.0.0.1", registry=metrics.registry)
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "metrics_path": "/metrics",
                        "static_configs": [
                            {
                                "targets": [f"127.0.0.1:{exporter_port}"],
                                "labels": {"namespace": NAMESPACE, "pod": "ran-distill-0"},
                            }
                        ],
                    }
                ],
            }
        )
    )
    log = (workdir / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{prom_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (workdir / "prometheus.log").read_text()
            try:
                # enough scrapes for every rate window
                if len(query(base, f'ran_distill_ready{{job="{JOB}"}}[8s]')[0]["values"]) >= 6:
                    break
            except (OSError, IndexError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never scraped the metrics")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        stop.set()
        server.shutdown()
        feeder.join(timeout=5)


def dashboard_targets() -> list[tuple[str, str]]:
    d = json.loads(DASHBOARD.read_text())
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            out.append((f"{p['title']} / {t['refId']}", t["expr"]))
    return out


def test_every_panel_expression_returns_data(prometheus: str) -> None:
    empty = []
    for name, expr in dashboard_targets():
        result = query(prometheus, substitute(expr))
        values = [float(r["value"][1]) for r in result]
        if not values or all(np.isnan(values)):
            empty.append(f"{name}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_reference_series_are_reconstructed(prometheus: str) -> None:
    """The dashed reference lines: live / (1 + deviation) and live - deviation, per cell,
    carrying the scenario label."""
    exprs = dict(dashboard_targets())
    tput = exprs["Mean per-UE throughput per cell vs reference / B"]
    result = {r["metric"]["cell"]: r for r in query(prometheus, substitute(tput))}
    assert set(result) == {"1", "2"}
    for cell, r in result.items():
        c = int(cell)
        assert r["metric"]["scenario"] == "uma-3kmh"
        assert float(r["value"][1]) == pytest.approx(8 * 1.9e5 * c / (1 - 0.01 * c))
    bler = exprs["First-transmission BLER per cell vs reference / B"]
    for r in query(prometheus, substitute(bler)):
        c = int(r["metric"]["cell"])
        assert float(r["value"][1]) == pytest.approx(0.09 + 0.01 * c - 0.005 * c)


def test_latency_percentiles_per_stage(prometheus: str) -> None:
    exprs = dict(dashboard_targets())
    p99 = exprs["Latency percentiles per stage / B"]
    stages = {r["metric"]["stage"] for r in query(prometheus, substitute(p99))}
    assert stages == {"queue_wait", "state_features", "inference", "shadow", "total"}


def test_fallback_share(prometheus: str) -> None:
    exprs = dict(dashboard_targets())
    (r,) = query(prometheus, substitute(exprs["Fallback share / A"]))
    assert float(r["value"][1]) == pytest.approx(1 / 129, rel=0.05)


def test_template_variables_resolve(prometheus: str) -> None:
    d = json.loads(DASHBOARD.read_text())
    for var in d["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
        assert m, var["query"]
        selector, label = substitute(m.group(1)), m.group(2)
        result = query(prometheus, f"group by ({label}) ({selector})")
        values = {r["metric"].get(label) for r in result}
        values.discard(None)
        assert values, f"variable {var['name']} would be empty"
    assert {
        r["metric"]["cell"]
        for r in query(prometheus, "group by (cell) (ran_distill_cell_first_tx_bler_ratio)")
    } == {"1", "2"}
