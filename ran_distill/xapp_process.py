"""Run the xApp as a child process and wait until it is ready (the demo and tests share it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    http_port: int,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 60.0,
    host: str = "127.0.0.1",
    expect: int = 200,
) -> None:
    """Poll ``/ric/v1/health/ready`` until it answers ``expect``.

    Raises ``RuntimeError`` when ``proc`` exits first or ``timeout`` seconds pass.
    """
    url = f"http://{host}:{http_port}/ric/v1/health/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the xApp exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == expect:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == expect:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the xApp did not answer {expect} on {url} within {timeout:g} s")


@contextmanager
def xapp_process(
    model_dir: Path,
    *,
    grpc_port: int | None = None,
    http_port: int | None = None,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | int | None = subprocess.DEVNULL,
    ready_timeout: float = 60.0,
    inherit_settings: bool = True,
) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """Start ``ran-distill serve`` on loopback, yield (process, gRPC port, HTTP port).

    The child's environment is this process's plus ``env``; with ``inherit_settings``
    false, this process's ``RAN_DISTILL_*`` and ``CONFIG_FILE`` are left out, so the
    child's settings are the defaults, the flags and ``env`` only. Waits for readiness
    before yielding; on exit sends SIGTERM (the xApp drains) and waits, killing it if it
    does not stop within 30 s.
    """
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    parent = {
        k: v
        for k, v in os.environ.items()
        if inherit_settings or not (k.startswith("RAN_DISTILL_") or k == "CONFIG_FILE")
    }
    child_env = {**parent, "RAN_DISTILL_RELOAD_POLL_SECONDS": "0", **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "serve",
            "--model",
            str(model_dir),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--host",
            "127.0.0.1",
        ],
        env=child_env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )
    try:
        wait_ready(http_port, proc=proc, timeout=ready_timeout)
        yield proc, grpc_port, http_port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
