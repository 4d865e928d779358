"""OuterLoop: the single OLLA implementation."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt.olla import OFFSET_LIMIT_DB, OuterLoop


@pytest.mark.parametrize("target, up", [(0.1, 1.0), (0.1, 0.5), (0.01, 0.3), (0.3, 2.0)])
def test_delta_down_from_target(target, up):
    loop = OuterLoop(1, bler_target=target, delta_up_db=up)
    assert loop.delta_down_db == pytest.approx(up * target / (1 - target))
    assert loop.delta_up_db == up and loop.bler_target == target


def test_delta_down_default_is_one_ninth():
    assert OuterLoop(1).delta_down_db == pytest.approx(1.0 / 9.0)


def test_update_ack_nack_none():
    loop = OuterLoop(4)
    loop.update(np.array([0, 1, 2]), np.array([1, 0, -1], dtype=np.int8))
    np.testing.assert_allclose(loop.offset_db, [-1 / 9, 1.0, 0.0, 0.0])
    loop.update(np.array([3, 0]), np.array([0, 0]))
    np.testing.assert_allclose(loop.offset_db, [1 - 1 / 9, 1.0, 0.0, 1.0])


def test_steady_state_at_target():
    """9 ACKs and 1 NACK (10 % BLER) bring the offset back where it started."""
    loop = OuterLoop(1)
    for ack in [1] * 9 + [0]:
        loop.update(np.array([0]), np.array([ack]))
    assert loop.offset_db[0] == pytest.approx(0.0, abs=1e-12)


def test_offset_clamped():
    loop = OuterLoop(2)
    for _ in range(100):
        loop.update(np.array([0]), np.array([0]))
    assert loop.offset_db[0] == OFFSET_LIMIT_DB
    for _ in range(1000):
        loop.update(np.array([1]), np.array([1]))
    assert loop.offset_db[1] == -OFFSET_LIMIT_DB


def test_grow_keeps_offsets_and_reset_clears():
    loop = OuterLoop(2)
    loop.update(np.array([0, 1]), np.array([0, 1]))
    before = loop.offset_db.copy()
    loop.grow(5)
    assert loop.capacity == 5
    np.testing.assert_array_equal(loop.offset_db[:2], before)
    np.testing.assert_array_equal(loop.offset_db[2:], 0.0)
    loop.grow(3)  # never shrinks
    assert loop.capacity == 5
    loop.reset(np.array([0]))
    assert loop.offset_db[0] == 0.0 and loop.offset_db[1] == before[1]


def test_rows_not_in_update_untouched():
    loop = OuterLoop(10)
    loop.update(np.array([7]), np.array([0]))
    assert np.count_nonzero(loop.offset_db) == 1 and loop.offset_db[7] == 1.0


def test_retransmission_feedback_ignored_with_tx_index():
    """With ``harq_tx_index``, NACKs/ACKs of retransmissions (index > 0) do not move the
    offset; index 0 (first transmission) and -1 (unknown) count as without it."""
    loop = OuterLoop(6)
    rows = np.arange(6)
    ack = np.array([0, 0, 0, 0, 1, 1], dtype=np.int8)
    tx = np.array([0, -1, 1, 2, 3, 0], dtype=np.int16)
    loop.update(rows, ack, tx)
    np.testing.assert_allclose(loop.offset_db, [1.0, 1.0, 0.0, 0.0, 0.0, -1 / 9])
    # no feedback (-1) stays no feedback whatever the index
    loop.update(np.array([2]), np.array([-1]), np.array([0]))
    assert loop.offset_db[2] == 0.0


def test_without_tx_index_every_feedback_counts():
    a, b = OuterLoop(4), OuterLoop(4)
    rng = np.random.default_rng(3)
    for _ in range(50):
        ack = rng.integers(-1, 2, 4)
        a.update(np.arange(4), ack)
        b.update(np.arange(4), ack, np.full(4, -1))  # all unknown: same as no index
    np.testing.assert_array_equal(a.offset_db, b.offset_db)
    assert np.any(a.offset_db != 0.0)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5])
def test_invalid_target(target):
    with pytest.raises(ValueError):
        OuterLoop(1, bler_target=target)


@pytest.mark.parametrize("up", [0.0, -1.0])
def test_invalid_delta_up(up):
    with pytest.raises(ValueError):
        OuterLoop(1, delta_up_db=up)
