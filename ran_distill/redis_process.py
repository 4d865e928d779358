"""Run a throw-away Redis (Debian's redis-server 7) on loopback: the shared data layer of
the state-handover tests and benchmarks. No persistence, no password, a memory cap."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ran_distill.xapp_process import free_port


def redis_binary() -> str:
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if path is None:
        raise FileNotFoundError("redis-server not found (make system-deps installs Debian's)")
    return path


@contextmanager
def redis_process(
    *, port: int | None = None, maxmemory: str = "256mb", timeout: float = 10.0
) -> Iterator[str]:
    """Start ``redis-server`` on 127.0.0.1; yield its URL (``redis://127.0.0.1:PORT/0``)."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        proc = subprocess.Popen(
            [
                redis_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
                "--maxmemory",
                maxmemory,
                "--maxmemory-policy",
                "volatile-ttl",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ping(port, proc, timeout)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ping(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout:g} s")
