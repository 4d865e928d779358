"""The kill-restart scenario of ``benchmarks/service_faults.py``: kill -9 the xApp under a
client's load and restart it on the same ports (a thread-based ``XappClient``, as a gNB
would run it, with wait_for_ready and retries)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from fault_scenarios import ENV
from ran_distill.scaleout import CellTraffic
from ran_distill.xapp_process import xapp_process
from service.client import XappClient


def kill_restart(model: Path, *, warm: float, grpc_port: int, http_port: int) -> dict[str, Any]:
    """kill -9 the xApp under a client's load, restart it on the same ports: seconds from
    the new process's readiness to the client's first answer (the client waits for the
    server, wait_for_ready, and reconnects by itself)."""
    oks: list[float] = []
    errors: dict[str, int] = {}
    stop = threading.Event()
    target = f"127.0.0.1:{grpc_port}"

    def client() -> None:
        traffic = CellTraffic([5], 64, seed=5)
        with XappClient(target, timeout=30, wait_for_ready=True) as c:
            slot = 0
            while not stop.is_set():
                try:
                    c.decide(traffic.reports(5, slot), cell_id=5, slot=slot)
                    oks.append(time.monotonic())
                except grpc.RpcError as exc:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                slot += 1
                time.sleep(0.002)

    th = threading.Thread(target=client, daemon=True)
    with xapp_process(model, grpc_port=grpc_port, http_port=http_port, env=ENV) as (proc, _, _):
        th.start()
        time.sleep(warm)
        n_before = len(oks)
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        proc.wait()
    with xapp_process(model, grpc_port=grpc_port, http_port=http_port, env=ENV):
        t_ready = time.monotonic()  # at most one 50 ms readiness poll late
        deadline = t_ready + 10
        while time.monotonic() < deadline and not [x for x in oks if x > t_kill]:
            time.sleep(0.005)
        stop.set()
        th.join(35)
    first = min((x for x in oks if x > t_kill), default=None)
    return {
        "calls_before_kill": n_before,
        "restart_to_ready_s": t_ready - t_kill,
        "ready_to_first_answer_s": None if first is None else first - t_ready,
        "failed_calls": errors,
    }
