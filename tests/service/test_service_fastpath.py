"""The data plane's fast batch construction agrees with ``ReportBatch.from_arrays``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linkadapt.reports import REPORT_DTYPES, ReportBatch, ReportError
from service.validation import fast_report_batch

NAMES = [k for k in REPORT_DTYPES if k != "cell_id"]
VALUES = st.sampled_from(
    [
        -(2**40),
        -70000,
        -2,
        -1,
        0,
        1,
        2,
        5,
        8,
        9,
        14,
        15,
        16,
        27,
        28,
        275,
        276,
        40000,
        1_000_000,
        1_000_001,
        2**31,
        2**40,
    ]
)


@settings(max_examples=600, deadline=None)
@given(data=st.data(), n=st.integers(0, 6))
def test_fast_path_matches_from_arrays(data: st.DataObject, n: int) -> None:
    cols = {
        k: np.asarray(data.draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=np.int64)
        for k in NAMES
    }
    try:
        want = ReportBatch.from_arrays(cell_id=np.full(n, 3, np.int64), **cols)
    except ReportError as exc:
        want_err = exc.field
    else:
        want_err = None
    try:
        got = fast_report_batch(3, n, dict(cols), 28)
    except ReportError as exc:
        assert want_err == exc.field
        return
    if got is None:  # declined: the caller falls back to from_arrays, which must reject
        assert want_err is not None, "fast path declined a valid batch"
        return
    assert want_err is None, f"fast path accepted what from_arrays rejects ({want_err})"
    for k in REPORT_DTYPES:
        a, b = getattr(got, k), getattr(want, k)
        assert a.dtype == b.dtype and np.array_equal(a, b), k


def test_fast_path_declines_non_int64() -> None:
    cols = {k: np.ones(3, np.int64) for k in NAMES}
    cols["cqi"] = np.array([1.0, 2.0, 3.0])
    assert fast_report_batch(0, 3, cols, 28) is None
    cols["cqi"] = np.ones(2, np.int64)
    assert fast_report_batch(0, 3, cols, 28) is None
    assert fast_report_batch(0, 3, {k: np.full(3, 99, np.int64) for k in NAMES}, 28) is None


def test_fast_path_optional_columns_default_to_unknown() -> None:
    cols = {k: np.ones(3, np.int64) for k in NAMES if k not in ("buffer_bytes", "harq_tx_index")}
    got = fast_report_batch(0, 3, cols, 28)
    assert got is not None
    assert got.buffer_bytes.tolist() == [-1] * 3 and got.harq_tx_index.tolist() == [-1] * 3
    assert got.harq_tx_index.dtype == REPORT_DTYPES["harq_tx_index"]
    # out of range only matters where there is feedback
    cols["harq_ack"] = np.array([1, -1, 0], np.int64)
    cols["harq_tx_index"] = np.array([7, 99, 0], np.int64)
    assert fast_report_batch(0, 3, cols, 28) is not None
    cols["harq_tx_index"] = np.array([8, 0, 0], np.int64)
    assert fast_report_batch(0, 3, cols, 28) is None


# values at and just beyond each field's documented range (see linkadapt/reports.py)
EDGES = {
    "ue_id": (0, 2**62),
    "cqi": (0, 15),
    "cqi_age_slots": (-1, 1_000_000),
    "harq_ack": (-1, 1),
    "harq_mcs": (0, 27),
    "rank": (1, 8),
    "n_prb": (1, 275),
    "n_symbols": (1, 14),
    "buffer_bytes": (-1, 2**62),
    "harq_tx_index": (-1, 7),
}


@settings(max_examples=600, deadline=None)
@given(data=st.data(), n=st.integers(1, 5))
def test_fast_path_near_the_boundaries(data: st.DataObject, n: int) -> None:
    cols = {}
    for k, (lo, hi) in EDGES.items():
        vals = st.one_of(st.integers(lo, hi), st.sampled_from([lo - 1, hi + 1]))
        cols[k] = np.asarray(data.draw(st.lists(vals, min_size=n, max_size=n)), dtype=np.int64)
    try:
        want = ReportBatch.from_arrays(cell_id=np.full(n, 1, np.int64), **cols)
    except ReportError:
        want = None
    got = fast_report_batch(1, n, dict(cols), 28)
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        for k in REPORT_DTYPES:
            assert np.array_equal(getattr(got, k), getattr(want, k)), k
