"""``act_on_deciding_rows``: only the rows that start a transport block are decided."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt.policy import act_on_deciding_rows


def test_only_new_transmissions_are_chosen_the_rest_get_zero() -> None:
    seen: list[np.ndarray] = []

    def choose(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return rows + 10

    out = act_on_deciding_rows(np.array([False, True, False, True]), 4, choose)
    np.testing.assert_array_equal(out, [0, 11, 0, 13])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(seen[0], [1, 3])


def test_unknown_new_tx_decides_every_row() -> None:
    out = act_on_deciding_rows(None, 3, lambda rows: np.full(rows.size, 7))
    np.testing.assert_array_equal(out, [7, 7, 7])


def test_no_deciding_row_never_calls_choose() -> None:
    def choose(rows: np.ndarray) -> np.ndarray:
        raise AssertionError("called with no deciding row")

    np.testing.assert_array_equal(act_on_deciding_rows(np.zeros(2, bool), 2, choose), [0, 0])


def test_a_mask_of_the_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"new_tx must be bool \[3\]"):
        act_on_deciding_rows(np.ones(2, bool), 3, lambda rows: rows)
