"""Run HAProxy (Debian's haproxy 2.6) in front of xApp replicas on loopback, with the
cell-affine configuration of ``deploy/haproxy/haproxy.cfg`` (the proxy tests and the
fault benchmarks share it).

    with xapp_process(model) as (_, g1, h1), xapp_process(model) as (_, g2, h2):
        backends = [Backend("xapp1", "127.0.0.1", g1, h1), Backend("xapp2", "127.0.0.1", g2, h2)]
        with haproxy_process(backends) as proxy:
            XappClient(proxy.grpc_target).decide(reports, cell_id=7)   # always the same replica
"""

from __future__ import annotations

import csv
import io
import shutil
import string
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ran_distill.xapp_process import free_port

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
GRPC_BACKEND = "xapp_grpc"
GRPC_STREAM_BACKEND = "xapp_grpc_stream"
HTTP_BACKEND = "xapp_http"
# Router admission defaults (the chart's router.admission): unary calls in flight per
# replica, calls waiting per replica before the proxy refuses, the longest wait.
SERVER_MAXCONN = 16
QUEUE_PER_SERVER = 16
QUEUE_TIMEOUT_MS = 100


@dataclass(frozen=True)
class Backend:
    """One xApp replica: a server name (unique, also its place on the hash ring via its
    position), its host and its gRPC and HTTP ports."""

    name: str
    host: str
    grpc_port: int
    http_port: int


@dataclass(frozen=True)
class Proxy:
    """A running HAProxy: where clients connect and where its stats are."""

    process: subprocess.Popen[bytes]
    host: str
    grpc_port: int
    http_port: int
    stats_port: int
    config: Path

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def server_status(self) -> dict[tuple[str, str], str]:
        """(backend, server) → HAProxy's status ("UP", "DOWN", "UP 1/2", ...)."""
        return server_status(self.host, self.stats_port)


def render_config(
    backends: Sequence[Backend],
    *,
    grpc_port: int,
    http_port: int,
    stats_port: int,
    bind: str = "127.0.0.1",
    maxconn: int = 4096,
    server_maxconn: int = SERVER_MAXCONN,
    queue_per_server: int = QUEUE_PER_SERVER,
    queue_timeout_ms: int = QUEUE_TIMEOUT_MS,
    log_level: str = "warning",
    template: Path = TEMPLATE,
) -> str:
    """The template filled in: gRPC servers speak h2c (their health check is HTTP/1.1 on
    the HTTP port), stream and REST servers track their unary gRPC twin's health, and every
    server has an explicit id (its place on the hash ring) so all backends map a cell to
    the same replica and move it at the same moment. ``server_maxconn`` unary calls in
    flight per replica, ``queue_per_server`` waiting (on average) before the proxy refuses,
    ``queue_timeout_ms`` the longest wait."""
    if not backends:
        raise ValueError("at least one backend is needed")
    if len({b.name for b in backends}) != len(backends):
        raise ValueError("backend names must be unique")
    grpc_lines, stream_lines, http_lines = [], [], []
    for i, b in enumerate(backends, start=1):
        grpc_lines.append(
            f"    server {b.name} {b.host}:{b.grpc_port} id {i} proto h2 port {b.http_port} "
            "check-proto h1"
        )
        stream_lines.append(
            f"    server {b.name} {b.host}:{b.grpc_port} id {i} proto h2 "
            f"track {GRPC_BACKEND}/{b.name}"
        )
        http_lines.append(
            f"    server {b.name} {b.host}:{b.http_port} id {i} track {GRPC_BACKEND}/{b.name}"
        )
    return string.Template(template.read_text()).substitute(
        MAXCONN=maxconn,
        LOG_LEVEL=log_level,
        BIND=bind,
        GRPC_PORT=grpc_port,
        HTTP_PORT=http_port,
        STATS_PORT=stats_port,
        SERVER_MAXCONN=server_maxconn,
        QUEUE_PER_SERVER=queue_per_server,
        QUEUE_TIMEOUT=f"{queue_timeout_ms}ms",
        GRPC_SERVERS="\n".join(grpc_lines),
        GRPC_STREAM_SERVERS="\n".join(stream_lines),
        HTTP_SERVERS="\n".join(http_lines),
    )


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if path is None:
        raise FileNotFoundError(
            "haproxy not found (make system-deps installs Debian's haproxy 2.6)"
        )
    return path


def check_config(path: Path) -> None:
    """``haproxy -c``: raises ``RuntimeError`` with HAProxy's message when invalid."""
    out = subprocess.run(
        [haproxy_binary(), "-c", "-q", "-f", str(path)], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"haproxy -c {path} failed:\n{out.stdout}{out.stderr}")


def server_status(host: str, stats_port: int) -> dict[tuple[str, str], str]:
    """(backend, server) → status, from the stats page's CSV."""
    with urllib.request.urlopen(f"http://{host}:{stats_port}/stats;csv", timeout=2) as r:
        text = r.read().decode()
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {
        (row["pxname"], row["svname"]): row["status"]
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def wait_status(
    proxy: Proxy,
    want: dict[str, str],
    *,
    backends: Sequence[str] = (GRPC_BACKEND, GRPC_STREAM_BACKEND, HTTP_BACKEND),
    timeout: float = 20.0,
) -> None:
    """Wait until every server named in ``want`` has that status ("UP"/"DOWN") in every
    backend; ``RuntimeError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status: dict[tuple[str, str], str] = {}
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"haproxy exited with code {proxy.process.returncode}")
        try:
            status = proxy.server_status()
        except OSError:
            status = {}
        if status and all(
            status.get((be, name), "").split(" ")[0] == state
            for name, state in want.items()
            for be in backends
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"servers did not reach {want} within {timeout:g} s: {status}")


@contextmanager
def haproxy_process(
    backends: Sequence[Backend],
    *,
    grpc_port: int | None = None,
    http_port: int | None = None,
    stats_port: int | None = None,
    host: str = "127.0.0.1",
    wait_up: bool = True,
    log_level: str = "warning",
    server_maxconn: int = SERVER_MAXCONN,
    queue_per_server: int = QUEUE_PER_SERVER,
    queue_timeout_ms: int = QUEUE_TIMEOUT_MS,
) -> Iterator[Proxy]:
    """Start HAProxy in the foreground for ``backends``; yield a :class:`Proxy` once it
    answers (and, with ``wait_up``, every backend is UP); stop it on exit."""
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    stats_port = stats_port or free_port()
    with tempfile.TemporaryDirectory(prefix="haproxy-") as tmp:
        cfg = Path(tmp) / "haproxy.cfg"
        cfg.write_text(
            render_config(
                backends,
                grpc_port=grpc_port,
                http_port=http_port,
                stats_port=stats_port,
                bind=host,
                log_level=log_level,
                server_maxconn=server_maxconn,
                queue_per_server=queue_per_server,
                queue_timeout_ms=queue_timeout_ms,
            )
        )
        check_config(cfg)
        log = (Path(tmp) / "haproxy.log").open("wb")
        proc = subprocess.Popen(
            [haproxy_binary(), "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
        )
        proxy = Proxy(proc, host, grpc_port, http_port, stats_port, cfg)
        try:
            _wait_healthz(proxy)
            if wait_up:
                wait_status(proxy, {b.name: "UP" for b in backends})
            yield proxy
        except BaseException:
            log.flush()
            tail = (Path(tmp) / "haproxy.log").read_text(errors="replace")[-2000:]
            if tail:
                print(f"haproxy log:\n{tail}")
            raise
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


def _wait_healthz(proxy: Proxy, timeout: float = 10.0) -> None:
    url = f"http://{proxy.host}:{proxy.stats_port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"haproxy exited with code {proxy.process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"haproxy did not answer {url} within {timeout:g} s")
