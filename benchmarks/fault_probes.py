"""Measurements of ``benchmarks/service_faults.py`` against an xApp process: resident
memory (VmRSS), CPU time of the server and of this client process, and the server's
``shed_requests_total`` counters by reason (from ``/metrics``), plus latency percentiles."""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

SHED_SAMPLE = re.compile(r'^ran_distill_shed_requests_total\{reason="(\w+)"\} (\S+)$', re.M)


def rss_mb(pid: int) -> float:
    """Resident set of a process in MiB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentiles(lat: list[float]) -> dict[str, float]:
    a = np.asarray(lat) * 1e3 if lat else np.zeros(1)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


class RssSampler:
    """Samples a process's RSS every ``period`` seconds in a thread (peak and series)."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb(self.pid)))
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), rss_mb(self.pid)))

    @property
    def peak(self) -> float:
        return max(v for _, v in self.samples)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shed_counts(http_port: int) -> dict[str, float]:
    """``ran_distill_shed_requests_total`` by reason, scraped from ``/metrics``."""
    url = f"http://127.0.0.1:{http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {m[1]: float(m[2]) for m in SHED_SAMPLE.finditer(text)}


class ServerCounters:
    """What a phase cost: server and client (this process) CPU seconds per wall second,
    and the requests the server shed, by reason. ``with ServerCounters(pid, port) as c:``
    then ``c.result()``."""

    def __init__(self, pid: int, http_port: int) -> None:
        self.pid, self.http_port = pid, http_port

    def __enter__(self) -> ServerCounters:
        self._shed0 = shed_counts(self.http_port)
        self._t0, self._srv0 = time.perf_counter(), cpu_seconds(self.pid)
        self._cli0 = sum(os.times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.server_cpu = cpu_seconds(self.pid) - self._srv0
        self.client_cpu = sum(os.times()[:2]) - self._cli0
        shed1 = shed_counts(self.http_port)
        self.shed = {k: int(v - self._shed0.get(k, 0)) for k, v in shed1.items()}

    def result(self) -> dict[str, Any]:
        return {
            "server_cpu_per_s": self.server_cpu / self.wall,
            "client_cpu_per_s": self.client_cpu / self.wall,
            "server_cpu_s": self.server_cpu,
            "shed_by_reason": {k: v for k, v in self.shed.items() if v},
        }
