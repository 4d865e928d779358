"""Per-UE state table: vectorized (cell, UE) → row map, TTL, cap, release, row reuse."""

from __future__ import annotations

import numpy as np
import pytest

from service.state import CapacityError, UeStateTable, UnknownUeError


def _table(**kw: object) -> UeStateTable:
    args = {"max_tracked": 100, "ttl_seconds": 10.0, "initial_capacity": 4}
    args.update(kw)
    return UeStateTable(**args)  # type: ignore[arg-type]


def test_rows_are_stable_unique_and_per_cell() -> None:
    t = _table()
    a, _, _ = t.admit(1, np.array([30, 10, 20]), now=0.0)
    b, _, _ = t.admit(2, np.array([10, 20]), now=0.0)  # same UE ids, other cell
    assert len(set(a.tolist()) | set(b.tolist())) == 5
    again, _, _ = t.admit(1, np.array([20, 30, 10, 40]), now=1.0)
    assert again[:3].tolist() == [a[2], a[0], a[1]]
    assert again[3] not in set(a.tolist()) | set(b.tolist())
    assert t.n_tracked == 6 and t.capacity >= 6  # grew from 4
    rows, known = t.lookup(1, np.array([10, 99]))
    assert known.tolist() == [True, False] and rows[1] == -1


def test_full_table_evicts_the_least_recently_seen_never_the_request() -> None:
    t = _table(max_tracked=5)
    t.admit(666, np.arange(4), now=0.0)  # a flood of made-up UEs, never seen again
    t.admit(1, np.array([50]), now=1.0)  # a real cell: table full now
    # the real cell's next request has its known UE and two new ones: admitted whole, the
    # flood's two least recently seen UEs make room
    rows, new_rows, _ = t.admit(1, np.array([50, 51, 52]), now=2.0)
    assert t.n_tracked == 5 and new_rows.size == 2 and (rows >= 0).all()
    assert t.lookup(1, np.array([50, 51, 52]))[1].all()
    assert t.lookup(666, np.arange(4))[1].sum() == 2
    assert t.take_forgotten() == {"expired": 0, "cell_quota": 0, "capacity": 2}
    assert t.take_forgotten() == {"expired": 0, "cell_quota": 0, "capacity": 0}


def test_cell_quota_evicts_that_cells_least_recently_seen() -> None:
    t = _table(max_tracked=100, max_per_cell=3)
    t.admit(1, np.array([0, 1, 2]), now=0.0)
    t.admit(1, np.array([1]), now=1.0)
    t.admit(2, np.array([0, 1, 2]), now=0.0)  # another cell, as old: not touched
    t.admit(1, np.array([0, 5]), now=2.0)  # UE 0 is in the request: UE 2 goes
    assert t.lookup(1, np.array([0, 1, 2, 5]))[1].tolist() == [True, True, False, True]
    assert t.lookup(2, np.array([0, 1, 2]))[1].all()
    assert t.take_forgotten()["cell_quota"] == 1


def test_request_above_the_cell_quota_refused_without_side_effects() -> None:
    t = _table(max_tracked=100, max_per_cell=3)
    t.admit(1, np.arange(2), now=0.0)
    with pytest.raises(CapacityError, match="max_ues_per_cell=3"):
        t.admit(1, np.arange(10, 14), now=1.0)
    assert t.n_tracked == 2 and t.lookup(1, np.arange(10, 14))[1].sum() == 0
    assert t.take_forgotten() == {"expired": 0, "cell_quota": 0, "capacity": 0}


def test_ttl_expiry_frees_rows_and_cap_triggers_sweep() -> None:
    t = _table(max_tracked=4, ttl_seconds=5.0)
    t.admit(1, np.arange(4), now=0.0)
    t.admit(1, np.array([0]), now=4.0)  # UE 0 stays fresh
    t.flushed(t.seq)
    rows, _, _ = t.admit(2, np.array([7, 8, 9]), now=6.0)  # cap reached → sweep expires 1,2,3
    assert t.n_tracked == 4
    # counted, for the metrics (not evicted: they were idle)
    assert t.take_forgotten() == {"expired": 3, "cell_quota": 0, "capacity": 0}
    assert t.lookup(1, np.array([0, 1]))[1].tolist() == [True, False]
    assert t.expire(now=100.0) == 4 and t.n_tracked == 0 and not t.cells


def test_release_validates_everything_first() -> None:
    t = _table()
    t.admit(1, np.array([1, 2, 3]), now=0.0)
    with pytest.raises(UnknownUeError) as e:
        t.release(9, np.array([1]))
    assert e.value.field == "cell_id"
    with pytest.raises(UnknownUeError) as e:
        t.release(1, np.array([1, 99]))
    assert e.value.field == "ue_id"
    assert t.n_tracked == 3  # nothing released by the failed call
    assert t.release(1, np.array([3, 1])) == 2
    assert t.lookup(1, np.array([1, 2, 3]))[1].tolist() == [False, True, False]


def test_released_rows_quarantined_until_flushed() -> None:
    t = _table(initial_capacity=2, max_tracked=2)
    rows, _, seq = t.admit(1, np.array([1, 2]), now=0.0)
    t.release(1, np.array([1]))  # request `seq` not yet flushed: row must not be reused
    fresh, _, _ = t.admit(1, np.array([5]), now=0.0)
    assert fresh[0] not in rows.tolist()  # grew instead
    t.flushed(t.seq)
    t.release(1, np.array([2, 5]))
    again, _, _ = t.admit(1, np.array([6, 7]), now=0.0)
    assert set(again.tolist()) <= set(range(t.capacity))


def test_new_rows_reset_history() -> None:
    from linkadapt.reports import ReportBatch

    t = _table(initial_capacity=2, max_tracked=2)
    rows, new_rows, _ = t.admit(1, np.array([1]), now=0.0)
    assert new_rows.tolist() == rows.tolist()
    t.prepare_rows(new_rows)
    rb = ReportBatch.from_arrays(
        ue_id=[1],
        cqi=[15],
        cqi_age_slots=[0],
        harq_ack=[0],
        harq_mcs=[27],
        rank=[4],
        n_prb=[270],
        n_symbols=[14],
    )
    blank = t.history.encode(rows).copy()
    t.history.update(rows, rb)
    assert not np.array_equal(t.history.encode(rows), blank)
    t.flushed(t.seq)
    t.release(1, np.array([1]))
    new, fresh, _ = t.admit(1, np.array([2]), now=0.0)
    assert new[0] == rows[0] and fresh.tolist() == new.tolist()
    t.prepare_rows(fresh)
    assert t.admit(1, np.array([2]), now=0.0)[1].size == 0  # known UE: nothing new
    np.testing.assert_array_equal(t.history.encode(new), blank)
