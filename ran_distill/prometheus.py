"""A real Prometheus server for the demo and the tests: Debian's ``prometheus`` binary with
a generated configuration in a temporary directory, and its HTTP API.

``make system-deps`` installs the binary (``apt-get install prometheus``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ran_distill.xapp_process import free_port

JOB = "ran-distill"


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or a query failed."""


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` server binary, or None when not installed."""
    return shutil.which("prometheus")


def scrape_config(targets: Sequence[str], *, interval_s: float = 1.0) -> dict[str, Any]:
    """A configuration scraping the xApps at ``targets`` (HOST:PORT of their HTTP port)."""
    interval = f"{interval_s:g}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@contextmanager
def prometheus_server(
    targets: Sequence[str],
    *,
    interval_s: float = 1.0,
    workdir: Path | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[str]:
    """Run Prometheus scraping ``targets`` every ``interval_s``; yield its base URL.

    The configuration and the TSDB live in ``workdir`` (a fresh temporary directory by
    default, removed afterwards). Stops it with SIGTERM on exit (SIGKILL after 20 s).
    """
    binary = prometheus_binary()
    if binary is None:
        raise PrometheusError(
            "prometheus is not installed (make system-deps, or apt-get install prometheus)"
        )
    with tempfile.TemporaryDirectory(prefix="ran-distill-prometheus-") as tmp:
        root = workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(targets, interval_s=interval_s)))
        port = free_port()
        log_path = root / "prometheus.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                _wait_ready(base, proc, log_path, ready_timeout)
                yield base
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PrometheusError(
                f"prometheus exited with code {proc.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise PrometheusError(f"prometheus at {base} was not ready within {timeout:g} s")


def _api(base: str, path: str, params: dict[str, str]) -> Any:
    url = f"{base}/api/v1/{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
    except OSError as exc:
        raise PrometheusError(f"{url}: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"{params.get('query')}: {body.get('error', body)}")
    return body["data"]


def query(base: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """Instant query: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return list(_api(base, "query", params)["result"])


def query_range(
    base: str, expr: str, start: float, end: float, step_s: float = 1.0
) -> list[dict[str, Any]]:
    """Range query (``/api/v1/query_range``): ``[{"metric": {...}, "values": [[t, "v"], ...]}]``."""
    params = {
        "query": expr,
        "start": f"{start:.3f}",
        "end": f"{end:.3f}",
        "step": f"{step_s:g}s",
    }
    return list(_api(base, "query_range", params)["result"])


def scalar(base: str, expr: str) -> float | None:
    """The value of a one-series instant query, or None when it returns nothing."""
    result = query(base, expr)
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(f"{expr}: {len(result)} series, expected one")
    return float(result[0]["value"][1])


def wait_for(
    base: str, expr: str, predicate: Any, *, timeout: float = 30.0, poll_s: float = 0.5
) -> float:
    """Poll ``expr`` (one series) until ``predicate(value)``; return that value."""
    deadline = time.monotonic() + timeout
    last: float | None = None
    while time.monotonic() < deadline:
        last = scalar(base, expr)
        if last is not None and predicate(last):
            return last
        time.sleep(poll_s)
    raise PrometheusError(f"{expr}: still {last} after {timeout:g} s")
