"""Scale-out runs on loopback: xApp replicas behind HAProxy (optionally sharing a Redis for
the state handover) and a reference replica, driven by :mod:`ran_distill.scaleout`
traffic. ``tests/service/test_service_proxy.py`` asserts on these runs and
``benchmarks/service_scaleout.py`` reports them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linkadapt.reports import ReportBatch
from ran_distill.haproxy_process import Backend, Proxy, haproxy_process, wait_status
from ran_distill.redis_process import redis_process
from ran_distill.scaleout import CellTraffic, Divergence, drive, served_cells
from ran_distill.xapp_process import xapp_process
from service.client import XappClient
from service.rest_client import XappRestClient

REPLICA_ENV = {
    "RAN_DISTILL_LOG_LEVEL": "WARNING",
    # longer than HAProxy needs to see the readiness 503 (2 checks, <= 0.7 s)
    "RAN_DISTILL_DRAIN_SECONDS": "2",
    "RAN_DISTILL_UE_TTL_SECONDS": "600",
}


@dataclass
class Cluster:
    """Replicas (process, backend) behind ``proxy``; ``reference`` is a lone replica."""

    replicas: list[tuple[subprocess.Popen[bytes], Backend]]
    proxy: Proxy
    reference: str
    handover: bool


@contextlib.contextmanager
def cluster(model_dir: Path, *, replicas: int = 3, handover: bool = False) -> Iterator[Cluster]:
    """Start the replicas (with ``handover``: sharing a fresh Redis), HAProxy in front of
    them and a reference replica; stop everything on exit."""
    with contextlib.ExitStack() as stack:
        env = dict(REPLICA_ENV)
        if handover:
            env["RAN_DISTILL_STATE_HANDOVER_URL"] = stack.enter_context(redis_process())
        started = []
        for i in range(replicas):
            proc, g, h = stack.enter_context(xapp_process(model_dir, env=env))
            started.append((proc, Backend(f"xapp{i + 1}", "127.0.0.1", g, h)))
        proxy = stack.enter_context(haproxy_process([b for _, b in started]))
        _, ref_grpc, _ = stack.enter_context(xapp_process(model_dir, env=REPLICA_ENV))
        yield Cluster(started, proxy, f"127.0.0.1:{ref_grpc}", handover)


def owners(backends: Sequence[Backend]) -> dict[str, set[int]]:
    """Cells each replica has decided for."""
    return {b.name: served_cells(f"http://127.0.0.1:{b.http_port}") for b in backends}


@dataclass
class Failover:
    """What :func:`failover` saw: the cells per replica at each step and the divergence
    from the reference in each phase (groups: all / handed / moved:<window> / stayed)."""

    owners: dict[str, set[int]] = field(default_factory=dict)
    warm: Divergence = field(default_factory=Divergence)
    drained: str = ""
    drained_exit: int | None = None
    handed: set[int] = field(default_factory=set)
    drain: Divergence = field(default_factory=Divergence)
    slots_until_routed_around: int = 0
    after_drain: dict[str, set[int]] = field(default_factory=dict)
    killed: str = ""
    moved: set[int] = field(default_factory=set)
    kill: Divergence = field(default_factory=Divergence)
    final: dict[str, set[int]] = field(default_factory=dict)


def failover(
    c: Cluster,
    *,
    cells: Sequence[int],
    ues: int,
    warm_slots: int,
    after_slots: int,
    window: int = 20,
    rest_every: int = 3,
    seed: int = 3,
) -> Failover:
    """Drive ``cells`` through the proxy and the reference: ``warm_slots`` with every
    replica up; then the replica with most cells drains (SIGTERM) under traffic, served
    until HAProxy routes around it, and ``after_slots`` more; then the next one is killed
    (-9) and ``after_slots`` more. Every ``rest_every``-th call of a cell goes over REST
    (0: none). Any failed call raises (none may fail, whatever the proxy retried)."""
    if len(c.replicas) < 3:
        raise ValueError("failover needs 3 replicas (one drained, one killed, one left)")
    traffic = CellTraffic(cells, ues, seed=seed)
    out = Failover()
    slot = 0
    with (
        XappClient(c.proxy.grpc_target, timeout=10) as via_proxy,
        XappRestClient(c.proxy.http_base, timeout=10) as rest_via_proxy,
        XappClient(c.reference) as ref_client,
    ):

        def decide(reports: ReportBatch, cell: int, s: int) -> np.ndarray:
            if rest_every and (s + cell) % rest_every == 0:
                return rest_via_proxy.decide(reports, cell_id=cell, slot=s)[0]
            return via_proxy.decide(reports, cell_id=cell, slot=s)[0]

        def ref(reports: ReportBatch, cell: int, s: int) -> np.ndarray:
            return ref_client.decide(reports, cell_id=cell, slot=s)[0]

        def run(n: int, div: Divergence, group: Callable[[int, int], str]) -> None:
            nonlocal slot
            drive(traffic, range(slot, slot + n), decide, ref, div, group)
            slot += n

        run(warm_slots, out.warm, lambda cell, s: "all")
        out.owners = owners([b for _, b in c.replicas])
        by_load = sorted(c.replicas, key=lambda r: len(out.owners[r[1].name]), reverse=True)
        (drained_proc, drained), (killed_proc, killed), (_, last) = by_load[:3]
        out.drained, out.handed = drained.name, set(out.owners[drained.name])
        drained_proc.send_signal(signal.SIGTERM)
        handed = out.handed
        t0 = slot
        group = lambda cell, s: (  # noqa: E731
            f"handed:{(s - t0) // window}" if cell in handed else "stayed"
        )
        for n in itertools.count(1):  # served while draining, until HAProxy routes around it
            run(1, out.drain, group)
            status = c.proxy.server_status()[("xapp_grpc", drained.name)]
            if status.startswith("DOWN") or n >= 200:
                out.slots_until_routed_around = n
                break
        run(after_slots, out.drain, group)
        out.drained_exit = drained_proc.wait(timeout=30)
        out.after_drain = owners([b for _, b in by_load[1:]])
        out.killed, out.moved = killed.name, set(out.after_drain[killed.name])
        os.kill(killed_proc.pid, signal.SIGKILL)
        moved = out.moved
        t1 = slot
        run(
            after_slots,
            out.kill,
            lambda cell, s: f"moved:{(s - t1) // window}" if cell in moved else "stayed",
        )
        killed_proc.wait(timeout=10)
    wait_status(c.proxy, {killed.name: "DOWN"})
    out.final = owners([last])
    return out


def alternating(
    targets: Sequence[str], reference: str, *, cells: Sequence[int], ues: int, slots: int
) -> Divergence:
    """No affinity: a cell's calls go to ``targets`` in turn, slot after slot (what a
    plain Service with ``sessionAffinity: None`` does to unary calls), compared with
    ``reference``."""
    traffic = CellTraffic(cells, ues, seed=4)
    div = Divergence()
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(XappClient(t)) for t in targets]
        ref_client = stack.enter_context(XappClient(reference))
        drive(
            traffic,
            range(slots),
            lambda r, cell, s: clients[(s + cell) % len(clients)].decide(r, cell_id=cell, slot=s)[
                0
            ],
            lambda r, cell, s: ref_client.decide(r, cell_id=cell, slot=s)[0],
            div,
            lambda cell, s: "all",
        )
    return div
