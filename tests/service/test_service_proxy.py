"""Cell-affine scale-out behind a real L7 proxy: Debian's HAProxy 2.6 with the shipped
``deploy/haproxy/haproxy.cfg`` (consistent hash of ``x-ran-cell-id``, h2c for gRPC) in
front of three xApp processes sharing a Redis for the state handover, compared decision
by decision with a single replica fed the same reports.

1. Every decision is identical: each cell stays on one replica, over gRPC and REST alike.
2. One replica drains (SIGTERM) under traffic: it still answers until HAProxy sees its
   readiness 503, then its cells move with their per-UE state (Redis) and still decide
   exactly as on one replica; no call fails, no other cell moves.
3. Another replica is killed (-9): no drain, no snapshot. Its cells move to the last one
   without a failed call (HAProxy retries the refused connection elsewhere, the client
   retries UNAVAILABLE), the other cells decide identically, and the moved cells' decisions
   differ from the reference until their history has rebuilt: that share is measured and
   printed (``-s`` shows it).

Needs Debian's ``haproxy`` and ``redis-server`` (``make system-deps``); fails, not skips,
without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from service_testing import ServerThread

from linkadapt.reports import ReportBatch
from ran_distill.haproxy_process import Backend, Proxy, haproxy_process, wait_status
from ran_distill.redis_process import redis_process
from ran_distill.scaleout import CellTraffic, Divergence, drive, served_cells
from ran_distill.xapp_process import xapp_process
from service.client import XappClient
from service.rest_client import XappRestClient

CELLS = list(range(101, 125))  # 24 cells: every replica gets some
UES = 8
WARM_SLOTS = 30
AFTER_SLOTS = 40


@pytest.fixture(scope="module")
def cluster(
    model_dir: Path,
) -> Iterator[tuple[list[tuple[subprocess.Popen[bytes], Backend]], Proxy, ServerThread]]:
    """Three replicas (process, backend) with the Redis state handover, the proxy in front
    of them, and a reference replica."""
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_process())
        env = {
            "RAN_DISTILL_LOG_LEVEL": "WARNING",
            # longer than HAProxy needs to see the readiness 503 (2 checks, <= 0.7 s)
            "RAN_DISTILL_DRAIN_SECONDS": "2",
            "RAN_DISTILL_UE_TTL_SECONDS": "600",
            "RAN_DISTILL_STATE_HANDOVER_URL": redis_url,
        }
        replicas = []
        for i in range(3):
            proc, g, h = stack.enter_context(xapp_process(model_dir, env=env))
            replicas.append((proc, Backend(f"xapp{i + 1}", "127.0.0.1", g, h)))
        proxy = stack.enter_context(haproxy_process([b for _, b in replicas]))
        reference = ServerThread(model_dir=model_dir, ue_ttl_seconds=600)
        stack.callback(reference.stop)
        yield replicas, proxy, reference


def _owners(backends: list[Backend]) -> dict[str, set[int]]:
    return {b.name: served_cells(f"http://127.0.0.1:{b.http_port}") for b in backends}


def test_cells_stick_to_one_replica_and_move_only_when_it_leaves(
    cluster: tuple[list[tuple[subprocess.Popen[bytes], Backend]], Proxy, ServerThread],
) -> None:
    replicas, proxy, reference = cluster
    traffic = CellTraffic(CELLS, UES, seed=3)
    slot = 0
    with (
        XappClient(proxy.grpc_target, timeout=10) as via_proxy,
        XappRestClient(proxy.http_base, timeout=10) as rest_via_proxy,
        XappClient(reference.grpc_target) as ref_client,
    ):

        def decide(reports: ReportBatch, cell: int, slot: int) -> np.ndarray:
            # every third slot over REST: both backends map a cell to the same replica
            if (slot + cell) % 3 == 0:
                return rest_via_proxy.decide(reports, cell_id=cell, slot=slot)[0]
            return via_proxy.decide(reports, cell_id=cell, slot=slot)[0]

        def ref(reports: ReportBatch, cell: int, slot: int) -> np.ndarray:
            return ref_client.decide(reports, cell_id=cell, slot=slot)[0]

        def run(n: int, div: Divergence, group: Callable[[int, int], str]) -> None:
            # any failed call raises here: none may fail, whatever the proxy retried
            nonlocal slot
            drive(traffic, range(slot, slot + n), decide, ref, div, group)
            slot += n

        # 1. three replicas: each cell on one of them, decisions identical
        before = Divergence()
        run(WARM_SLOTS, before, lambda c, s: "all")
        assert before.differing["all"] == 0, before.summary()
        assert before.decisions["all"] == WARM_SLOTS * len(CELLS) * UES
        owners = _owners([b for _, b in replicas])
        assert sorted(c for cells in owners.values() for c in cells) == CELLS  # each on one
        assert sum(1 for cells in owners.values() if cells) >= 2, owners

        # 2. drain one (SIGTERM) under traffic: its cells move with their state
        by_load = sorted(replicas, key=lambda r: len(owners[r[1].name]), reverse=True)
        (drained_proc, drained), (killed_proc, killed), (last_proc, last) = by_load
        handed = owners[drained.name]
        drained_proc.send_signal(signal.SIGTERM)
        drain = Divergence()
        group = lambda c, s: "handed" if c in handed else "stayed"  # noqa: E731
        for _ in range(200):  # served while draining, until HAProxy routes around it
            run(1, drain, group)
            if proxy.server_status()[("xapp_grpc", drained.name)].startswith("DOWN"):
                break
        run(AFTER_SLOTS, drain, group)
        assert drained_proc.wait(timeout=30) == 0
        assert drain.differing["stayed"] == 0, drain.summary()
        assert drain.differing["handed"] == 0, drain.summary()  # the handover is exact
        after_drain = _owners([killed, last])
        assert handed <= after_drain[killed.name] | after_drain[last.name]
        assert owners[killed.name] <= after_drain[killed.name]  # nothing else moved
        assert owners[last.name] <= after_drain[last.name]

        # 3. kill -9 another: no drain, no snapshot; its cells move and lose their history
        moved = after_drain[killed.name]
        os.kill(killed_proc.pid, signal.SIGKILL)
        after = Divergence()
        # moved cells per window of 20 slots: how fast their history rebuilds
        t0 = slot
        run(AFTER_SLOTS, after, lambda c, s: f"moved:{(s - t0) // 20}" if c in moved else "stayed")
    wait_status(proxy, {killed.name: "DOWN"})
    final = _owners([last])[last.name]
    assert final == set(CELLS)
    assert after.differing["stayed"] == 0, after.summary()
    assert after.differing["moved:0"] > 0, after.summary()
    print(
        f"\nscale-out through HAProxy, {len(CELLS)} cells x {UES} UEs: drained {drained.name} "
        f"handed {len(handed)} cells over: {json.dumps(drain.summary())}; then kill -9 of "
        f"{killed.name} moved {len(moved)} cells: {json.dumps(after.summary())}"
    )
