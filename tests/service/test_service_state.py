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


def test_cap_refuses_without_side_effects() -> None:
    t = _table(max_tracked=5)
    t.admit(1, np.arange(4), now=0.0)
    with pytest.raises(CapacityError):
        t.admit(1, np.arange(10, 12), now=1.0)
    assert t.n_tracked == 4
    assert t.lookup(1, np.array([10, 11]))[1].sum() == 0
    t.admit(1, np.array([10]), now=1.0)  # still room for one
    assert t.n_tracked == 5


def test_ttl_expiry_frees_rows_and_cap_triggers_sweep() -> None:
    t = _table(max_tracked=4, ttl_seconds=5.0)
    t.admit(1, np.arange(4), now=0.0)
    t.admit(1, np.array([0]), now=4.0)  # UE 0 stays fresh
    t.flushed(t.seq)
    rows, _, _ = t.admit(2, np.array([7, 8, 9]), now=6.0)  # cap reached → sweep expires 1,2,3
    assert t.n_tracked == 4
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
