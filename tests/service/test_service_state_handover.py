"""Per-cell state handover through a real Redis (Debian's redis-server 7): a drained
replica's cells continue on the next replica exactly as on a single replica, also for the
slots it decided while draining; without the handover they diverge. Snapshots are used
once, bounded, refused when made for another MCS table; a Redis outage only means fresh
cells.

Needs Debian's ``redis-server`` (``make system-deps``); fails, not skips, without it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_testing import ServerThread

from ran_distill.redis_process import redis_process
from ran_distill.scaleout import CellTraffic, Divergence
from ran_distill.xapp_process import free_port
from service.client import XappClient
from service.state import UeStateTable
from service.state_handover import SnapshotError, decode_cell, encode_cell

UES = 16


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_process() as url:
        yield url


def _metric(srv: ServerThread, name: str, **labels: str) -> float:
    text = httpx.get(f"{srv.http_base}/metrics").text
    sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^ran_distill_{name}_total\{{{sel}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def _table_with_history(seed: int, n: int = 12) -> UeStateTable:
    from linkadapt.policy import DecisionBatch

    traffic = CellTraffic([5], n, seed=seed)
    st = UeStateTable(max_tracked=64, ttl_seconds=60)
    for slot in range(20):
        reports = traffic.reports(5, slot)
        rows, new_rows, _ = st.admit(5, reports.ue_id, time.monotonic())
        st.prepare_rows(new_rows)
        st.history.update(rows, reports)
        obs = st.history.encode(rows)
        traffic.observe(5, st.olla.act(DecisionBatch(obs=obs, reports=reports, rows=rows)))
    return st


def test_snapshot_round_trip_gives_the_same_observations() -> None:
    st = _table_with_history(0)
    enc = encode_cell(st, 5, 2)
    assert enc is not None and enc[1] == 12
    ues, fallback, history = decode_cell(enc[0], 2)
    other = UeStateTable(max_tracked=64, ttl_seconds=60)
    other.admit(9, np.array([1, 2, 3]), time.monotonic())  # rows differ from st's
    rows, new_rows, _ = other.admit(5, ues, time.monotonic())
    other.prepare_rows(new_rows)
    other.history.import_rows(rows, history)
    other.olla.loop.offset_db[rows] = fallback
    src_rows, _ = st.lookup(5, ues)
    np.testing.assert_array_equal(other.history.encode(rows), st.history.encode(src_rows))
    np.testing.assert_array_equal(other.olla.loop.offset_db[rows], st.olla.loop.offset_db[src_rows])
    assert encode_cell(st, 6, 2) is None  # a cell with no UE


def test_unusable_snapshots_are_refused() -> None:
    blob, _ = encode_cell(_table_with_history(1), 5, 2)  # type: ignore[misc]
    with pytest.raises(SnapshotError, match="MCS table"):
        decode_cell(blob, 1)
    with pytest.raises(SnapshotError, match="not a snapshot"):
        decode_cell(b"garbage", 2)
    st = UeStateTable(max_tracked=8, ttl_seconds=60)
    rows, _, _ = st.admit(1, np.arange(3), time.monotonic())
    with pytest.raises(ValueError, match="cqi"):
        fields = st.history.export_rows(rows)
        fields["cqi"] = fields["cqi"][:2]
        st.history.import_rows(rows, fields)


def _shutdown_async(srv: ServerThread) -> threading.Thread:
    """Start the graceful shutdown (drain) of ``srv`` without waiting for it."""

    def run() -> None:
        asyncio.run_coroutine_threadsafe(srv.app.shutdown(), srv.loop).result(60)
        srv.loop.call_soon_threadsafe(srv.loop.stop)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_drained_cells_continue_exactly_on_the_next_replica(
    model_dir: Path, redis_url: str
) -> None:
    cells = [11, 12, 13]
    traffic = CellTraffic(cells, UES, seed=7)
    ref = ServerThread(model_dir=model_dir)
    old = ServerThread(model_dir=model_dir, state_handover_url=redis_url, drain_seconds=1.5)
    new = ServerThread(model_dir=model_dir, state_handover_url=redis_url)
    bare = ServerThread(model_dir=model_dir)  # the next replica without handover
    servers = [ref, old, new, bare]
    try:
        with (
            XappClient(ref.grpc_target) as c_ref,
            XappClient(old.grpc_target) as c_old,
            XappClient(new.grpc_target) as c_new,
            XappClient(bare.grpc_target) as c_bare,
        ):
            div = Divergence()

            def step(slot: int, *targets: tuple[str, XappClient]) -> None:
                for cell in cells:
                    reports = traffic.reports(cell, slot)
                    want = c_ref.decide(reports, cell_id=cell, slot=slot)[0]
                    for name, client in targets:
                        div.add(name, client.decide(reports, cell_id=cell, slot=slot)[0], want)
                    traffic.observe(cell, want)

            for slot in range(20):
                step(slot, ("old", c_old))
            drained = _shutdown_async(old)
            for _ in range(100):  # bounded wait for the drain to begin
                if old.app.dataplane.draining:
                    break
                time.sleep(0.01)
            for slot in range(20, 25):  # still served while draining, written through
                step(slot, ("old-draining", c_old))
            drained.join(30)
            for slot in range(25, 45):
                step(slot, ("handover", c_new), ("fresh", c_bare))
    finally:
        for srv in servers:
            srv.stop()
    summary = div.summary()
    assert div.decisions["old-draining"] == 5 * len(cells) * UES
    assert div.differing["old"] == div.differing["old-draining"] == 0
    assert div.differing["handover"] == 0, summary  # exactly as on one replica
    assert div.share("fresh") > 0.02, summary  # history lost without the handover
    print("\nstate handover divergence:", summary)


@pytest.mark.parametrize("inference_thread", [True, False])
def test_snapshot_is_used_once_and_counted(
    model_dir: Path, redis_url: str, inference_thread: bool
) -> None:
    """(Also with the decisions on the event loop: the drain's snapshot is queued the same
    way.)"""
    traffic = CellTraffic([21], UES, seed=8)
    first = ServerThread(
        model_dir=model_dir, state_handover_url=redis_url, inference_thread=inference_thread
    )
    with XappClient(first.grpc_target) as c:
        for slot in range(5):
            c.decide(traffic.reports(21, slot), cell_id=21, slot=slot)
    first.stop()
    second = ServerThread(model_dir=model_dir, state_handover_url=redis_url)
    third = ServerThread(model_dir=model_dir, state_handover_url=redis_url)
    try:
        for srv in (second, third):
            with XappClient(srv.grpc_target) as c:
                c.decide(traffic.reports(21, 5), cell_id=21, slot=5)
        assert _metric(second, "state_handover_operations", op="restore", result="ok") == 1
        assert _metric(second, "state_handover_ues", op="restore") == UES
        assert _metric(third, "state_handover_operations", op="restore", result="miss") == 1
        assert second.call(lambda: second.app.dataplane.state.n_tracked) == UES
    finally:
        second.stop()
        third.stop()


def test_drain_writes_at_most_max_ues(model_dir: Path, redis_url: str) -> None:
    import redis

    srv = ServerThread(
        model_dir=model_dir, state_handover_url=redis_url, state_handover_max_ues=UES + 4
    )
    traffic = CellTraffic([31, 32, 33], UES, seed=9)
    with XappClient(srv.grpc_target) as c:
        for cell in (31, 32, 33):
            c.decide(traffic.reports(cell, 0), cell_id=cell, slot=0)
    metrics = srv.app.dataplane.metrics
    srv.stop()
    text = metrics.exposition().decode()
    assert 'ran_distill_state_handover_operations_total{op="snapshot",result="ok"} 1.0' in text
    assert 'ran_distill_state_handover_operations_total{op="snapshot",result="skipped"} 2.0' in text
    r = redis.Redis.from_url(redis_url)
    keys = [k for k in r.scan_iter("ran-distill:state:v1:cell:3*")]
    assert len(keys) == 1
    assert 0 < r.pttl(keys[0]) <= 120_000  # the TTL is set
    r.delete(*keys)


def test_redis_down_means_fresh_cells_not_errors(model_dir: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    srv = ServerThread(model_dir=model_dir, state_handover_url=url)
    traffic = CellTraffic([41, 42], 4, seed=10)
    try:
        with XappClient(srv.grpc_target) as c:
            for cell in (41, 42):
                mcs, _, _ = c.decide(traffic.reports(cell, 0), cell_id=cell, slot=0)
                assert mcs.shape == (4,)
        assert _metric(srv, "state_handover_operations", op="restore", result="error") == 1
        # paused after the error: the second new cell does not wait for Redis again
        assert _metric(srv, "state_handover_operations", op="restore", result="skipped") == 1
    finally:
        srv.stop()


def test_unusable_snapshot_in_redis_is_ignored(model_dir: Path, redis_url: str) -> None:
    import redis

    from service.state_handover import cell_key

    redis.Redis.from_url(redis_url).set(cell_key(51), b"not a snapshot", px=60_000)
    srv = ServerThread(model_dir=model_dir, state_handover_url=redis_url)
    try:
        with XappClient(srv.grpc_target) as c:
            mcs, _, _ = c.decide(CellTraffic([51], 4, seed=11).reports(51, 0), cell_id=51, slot=0)
        assert mcs.shape == (4,)
        assert _metric(srv, "state_handover_operations", op="restore", result="invalid") == 1
        assert srv.call(lambda: srv.app.dataplane.state.n_tracked) == 4  # fresh UEs
    finally:
        srv.stop()


def test_handover_without_the_redis_client_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.config import load_settings
    from service.metrics import ServiceMetrics
    from service.state_handover import make_handover

    monkeypatch.setitem(sys.modules, "redis", None)  # as if the extra were not installed
    settings = load_settings(state_handover_url="redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match=r"ran-distill\[handover\]"):
        make_handover(settings, ServiceMetrics())
    assert make_handover(load_settings(), ServiceMetrics()) is None  # off by default


def test_handover_url_must_be_a_redis_url() -> None:
    from service.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="state_handover_url"):
        load_settings(state_handover_url="http://127.0.0.1:6379")
