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

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ran_distill.scaleout_run import Cluster, cluster, failover

CELLS = list(range(101, 125))  # 24 cells: every replica gets some
UES = 8
WARM_SLOTS = 30
AFTER_SLOTS = 40


@pytest.fixture(scope="module")
def handover_cluster(model_dir: Path) -> Iterator[Cluster]:
    with cluster(model_dir, replicas=3, handover=True) as c:
        yield c


def test_cells_stick_to_one_replica_and_move_only_when_it_leaves(
    handover_cluster: Cluster,
) -> None:
    r = failover(
        handover_cluster, cells=CELLS, ues=UES, warm_slots=WARM_SLOTS, after_slots=AFTER_SLOTS
    )
    # 1. three replicas: each cell on exactly one of them, decisions identical
    assert r.warm.differing["all"] == 0, r.warm.summary()
    assert r.warm.decisions["all"] == WARM_SLOTS * len(CELLS) * UES
    assert sorted(c for cells in r.owners.values() for c in cells) == CELLS
    assert sum(1 for cells in r.owners.values() if cells) >= 2, r.owners

    # 2. drained under traffic: served until HAProxy routes around it, its cells then
    # continue on the others with their state, exactly; nothing else moves
    assert r.drained_exit == 0
    assert r.slots_until_routed_around < 200
    assert r.drain.differing["stayed"] == 0, r.drain.summary()
    handed = [g for g in r.drain.decisions if g.startswith("handed:")]
    assert handed and all(r.drain.differing[g] == 0 for g in handed), r.drain.summary()
    for name, cells in r.after_drain.items():
        assert r.owners[name] <= cells and cells - r.owners[name] <= r.handed, (name, cells)
    assert set().union(*r.after_drain.values()) == set(CELLS)

    # 3. kill -9: no drain, no snapshot; its cells move to the last replica and lose their
    # history (decisions differ until it rebuilds), the others decide exactly as before
    (final,) = r.final.values()
    assert final == set(CELLS)
    assert r.kill.differing["stayed"] == 0, r.kill.summary()
    assert r.kill.differing["moved:0"] > 0, r.kill.summary()
    print(
        f"\nscale-out through HAProxy, {len(CELLS)} cells x {UES} UEs: drained {r.drained} "
        f"handed {len(r.handed)} cells over after {r.slots_until_routed_around} slots: "
        f"{json.dumps(r.drain.summary())}; then kill -9 of {r.killed} moved {len(r.moved)} "
        f"cells: {json.dumps(r.kill.summary())}"
    )
