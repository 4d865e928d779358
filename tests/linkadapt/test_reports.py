"""ReportBatch: columnar reports, validation naming the bad field."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt.reports import REPORT_DTYPES, ReportBatch, ReportError


def _valid(n: int = 4) -> dict[str, object]:
    return {
        "cell_id": [0, 0, 1, 1][:n],
        "ue_id": list(range(n)),
        "cqi": [15, 0, 7, 3][:n],
        "cqi_age_slots": [0, -1, 12, 3][:n],
        "harq_ack": [1, 0, -1, 1][:n],
        "harq_mcs": [27, 0, 99, 5][:n],  # 99 ignored: no feedback on that row
        "rank": [1, 2, 4, 8][:n],
        "n_prb": [1, 275, 50, 10][:n],
        "n_symbols": [12, 14, 1, 12][:n],
        "buffer_bytes": [-1, 0, 1000, 2**40][:n],
        "harq_tx_index": [0, 1, 99, -1][:n],  # 99 ignored: no feedback on that row
    }


def _raises(field: str, **overrides) -> ReportError:
    arrays = _valid()
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not _DROP}
    with pytest.raises(ReportError) as info:
        ReportBatch.from_arrays(**arrays)
    assert info.value.field == field, str(info.value)
    assert isinstance(info.value, ValueError)
    assert field in str(info.value)
    return info.value


_DROP = object()


def test_valid_batch_round_trips():
    b = ReportBatch.from_arrays(**_valid())
    assert len(b) == 4
    for name, dtype in REPORT_DTYPES.items():
        col = getattr(b, name)
        assert col.dtype == dtype and col.shape == (4,)
        assert col.tolist() == [int(v) for v in _valid()[name]]
    d = b.as_dict()
    assert set(d) == set(REPORT_DTYPES)
    again = ReportBatch.from_arrays(**d)
    for name in REPORT_DTYPES:
        assert np.array_equal(getattr(again, name), getattr(b, name))


def test_defaults_for_cell_and_buffer():
    arrays = _valid()
    del arrays["cell_id"], arrays["buffer_bytes"], arrays["harq_tx_index"]
    b = ReportBatch.from_arrays(**arrays)
    assert b.cell_id.tolist() == [0, 0, 0, 0]
    assert b.buffer_bytes.tolist() == [-1, -1, -1, -1]
    assert b.harq_tx_index.tolist() == [-1, -1, -1, -1]
    assert b.harq_tx_index.dtype == REPORT_DTYPES["harq_tx_index"] == np.int16


def test_harq_tx_index_default_on_direct_construction():
    d = ReportBatch.from_arrays(**_valid()).as_dict()
    del d["harq_tx_index"]
    b = ReportBatch(**d)  # constructors written before the field existed keep working
    assert b.harq_tx_index.tolist() == [-1, -1, -1, -1] and b.harq_tx_index.dtype == np.int16
    b.validate()
    assert b.take(np.array([3, 1])).harq_tx_index.tolist() == [-1, -1]


def test_harq_tx_index_checked_only_with_feedback():
    ReportBatch.from_arrays(**{**_valid(), "harq_tx_index": [7, 0, -5, -1]})  # row 2: no fb
    _raises("harq_tx_index", harq_tx_index=[8, 0, 0, 0])  # ACK row
    _raises("harq_tx_index", harq_tx_index=[0, -2, 0, 0])  # NACK row
    _raises("harq_tx_index", harq_tx_index=[0, 0, 0])  # wrong length
    _raises("harq_tx_index", harq_tx_index=[0, 0, 40000, 0])  # does not fit int16
    good = ReportBatch.from_arrays(**_valid()).as_dict()
    with pytest.raises(ReportError) as info:
        ReportBatch(**{**good, "harq_tx_index": np.zeros(5, np.int16)}).validate()
    assert info.value.field == "harq_tx_index"


def test_integer_valued_floats_accepted():
    b = ReportBatch.from_arrays(**{**_valid(), "cqi": np.array([15.0, 0.0, 7.0, 3.0])})
    assert b.cqi.dtype == np.int16 and b.cqi.tolist() == [15, 0, 7, 3]


def test_empty_batch():
    b = ReportBatch.from_arrays(**{k: [] for k in REPORT_DTYPES})
    assert len(b) == 0


def test_cqi_16_rejected():
    _raises("cqi", cqi=[16, 0, 7, 3])
    _raises("cqi", cqi=[1, -1, 7, 3], cqi_age_slots=[0, 0, 0, 0])


def test_cqi_ignored_without_cqi_yet():
    b = ReportBatch.from_arrays(**{**_valid(), "cqi": [15, 16, 7, 3]})  # row 1 age -1
    assert b.cqi[1] == 16


def test_nan_and_inf_rejected():
    _raises("cqi", cqi=[1.0, np.nan, 2.0, 3.0])
    _raises("n_prb", n_prb=[1.0, np.inf, 2.0, 3.0])
    _raises("harq_ack", harq_ack=[np.nan, 1.0, 1.0, 1.0])


def test_non_integer_floats_rejected():
    _raises("cqi", cqi=[1.5, 2.0, 3.0, 4.0])
    _raises("rank", rank=[1.0, 2.0, 3.0, 1.0000001])


def test_non_numeric_rejected():
    _raises("cqi", cqi=["a", "b", "c", "d"])


def test_negative_and_zero_n_prb_rejected():
    _raises("n_prb", n_prb=[1, -5, 2, 3])
    _raises("n_prb", n_prb=[1, 0, 2, 3])
    _raises("n_prb", n_prb=[1, 276, 2, 3])


@pytest.mark.parametrize(
    "field, values",
    [
        ("rank", [0, 1, 1, 1]),
        ("rank", [9, 1, 1, 1]),
        ("n_symbols", [0, 12, 12, 12]),
        ("n_symbols", [15, 12, 12, 12]),
        ("harq_ack", [2, 1, 1, 1]),
        ("harq_ack", [-2, 1, 1, 1]),
        ("cqi_age_slots", [-2, 0, 0, 0]),
        ("buffer_bytes", [-2, 0, 0, 0]),
        ("ue_id", [-1, 1, 2, 3]),
        ("cell_id", [-1, 0, 0, 0]),
        ("cqi", [70000, 0, 0, 0]),  # does not fit int16
    ],
)
def test_out_of_range(field, values):
    _raises(field, **{field: values})


def test_mismatched_lengths():
    _raises("cqi", cqi=[1, 2, 3])
    _raises("buffer_bytes", buffer_bytes=[1, 2, 3, 4, 5])
    _raises("harq_mcs", harq_mcs=[0])


def test_not_one_dimensional():
    _raises("cqi", cqi=[[1, 2], [3, 4]])
    _raises("ue_id", ue_id=5)
    _raises("ue_id", ue_id=[[0, 1, 2, 3]])


def test_unknown_field():
    err = _raises("snr_db", snr_db=[1, 2, 3, 4])
    assert "unknown" in err.message


@pytest.mark.parametrize(
    "field", ["ue_id", "cqi", "cqi_age_slots", "harq_ack", "harq_mcs", "rank", "n_prb", "n_symbols"]
)
def test_missing_field(field):
    err = _raises(field, **{field: _DROP})
    assert "missing" in err.message


def test_harq_mcs_checked_only_with_feedback():
    # row 2 has no feedback (-1): its harq_mcs 99 is ignored (see _valid)
    ReportBatch.from_arrays(**_valid())
    _raises("harq_mcs", harq_mcs=[28, 0, 0, 0])  # ACK row, MCS 28 outside table 2
    _raises("harq_mcs", harq_mcs=[0, -1, 0, 0])  # NACK row
    ReportBatch.from_arrays(n_mcs=29, **{**_valid(), "harq_mcs": [28, 0, 0, 0]})


def test_take_mask_and_indices():
    b = ReportBatch.from_arrays(**_valid())
    sub = b.take(np.array([2, 0]))
    assert len(sub) == 2
    assert sub.ue_id.tolist() == [2, 0] and sub.n_prb.tolist() == [50, 1]
    mask = b.take(b.harq_ack >= 0)
    assert mask.ue_id.tolist() == [0, 1, 3]
    mask.validate()
    for name in REPORT_DTYPES:
        assert getattr(mask, name).dtype == REPORT_DTYPES[name]


def test_validate_direct_construction():
    good = ReportBatch.from_arrays(**_valid()).as_dict()
    bad = {**good, "rank": np.array([1, 1, 1], np.int16)}
    with pytest.raises(ReportError) as info:
        ReportBatch(**bad).validate()
    assert info.value.field == "rank"
