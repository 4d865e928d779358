"""Feature encoder (schema v1): the one report-history → observation function."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt import link_map
from linkadapt.features import (
    AGE_CAP,
    FEATURE_NAMES,
    HISTORY_LEN,
    OBS_DIM,
    PRIVILEGED_DIM,
    PRIVILEGED_NAMES,
    FeatureHistory,
    privileged_features,
)
from linkadapt.olla import OuterLoop
from linkadapt.reports import ReportBatch

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def reports(n: int, **over) -> ReportBatch:
    base = dict(
        ue_id=np.arange(n),
        cqi=np.full(n, 9),
        cqi_age_slots=np.full(n, 3),
        harq_ack=np.full(n, -1),
        harq_mcs=np.zeros(n),
        rank=np.full(n, 2),
        n_prb=np.full(n, 50),
        n_symbols=np.full(n, 12),
    )
    base.update({k: np.broadcast_to(np.asarray(v), (n,)) for k, v in over.items()})
    return ReportBatch.from_arrays(**base)


def random_reports(rng: np.random.Generator, n: int) -> ReportBatch:
    ack = rng.integers(-1, 2, n)
    return ReportBatch.from_arrays(
        ue_id=np.arange(n),
        cqi=rng.integers(0, 16, n),
        cqi_age_slots=rng.integers(-1, 60, n),
        harq_ack=ack,
        harq_mcs=rng.integers(0, 28, n),
        rank=rng.integers(1, 9, n),
        n_prb=rng.integers(1, 276, n),
        n_symbols=rng.integers(1, 15, n),
        buffer_bytes=rng.integers(-1, 10**8, n),
    )


def test_schema_names():
    assert OBS_DIM == len(FEATURE_NAMES) == 29
    assert len(set(FEATURE_NAMES)) == OBS_DIM
    assert PRIVILEGED_DIM == len(PRIVILEGED_NAMES) == 2
    assert FEATURE_NAMES[COL["harq_ack_0"] : COL["harq_ack_0"] + HISTORY_LEN] == tuple(
        f"harq_ack_{i}" for i in range(HISTORY_LEN)
    )


def test_schema_documented_in_order():
    """The module docstring's table lists the features in column order."""
    import linkadapt.features as mod

    lines = mod.__doc__.split("==================  ")[2].strip().splitlines()
    documented = []
    for line in lines:
        if not line.strip() or line.startswith("="):
            continue
        name = line.split()[0]
        if name.endswith("..7"):
            documented += [f"{name[:-4]}{i}" for i in range(HISTORY_LEN)]
        else:
            documented.append(name)
    assert tuple(documented) == FEATURE_NAMES


def test_encode_shape_dtype_and_scale():
    h = FeatureHistory(6)
    rng = np.random.default_rng(0)
    rows = np.arange(6)
    for _ in range(30):
        h.update(rows, random_reports(rng, 6))
    obs = h.encode(rows)
    assert obs.shape == (6, OBS_DIM) and obs.dtype == np.float32
    assert np.all(np.isfinite(obs))
    assert np.all(np.abs(obs) <= 2.5)
    assert h.encode(np.array([], dtype=np.int64)).shape == (0, OBS_DIM)


def test_fresh_history_encoding():
    obs = FeatureHistory(2).encode(np.arange(2))[0]
    assert obs[COL["cqi"]] == 0 and obs[COL["cqi_valid"]] == 0
    assert obs[COL["cqi_age"]] == 1.0
    assert obs[COL["cqi_sinr_db"]] == pytest.approx(-10 / 30)
    assert obs[COL["olla_offset_db"]] == 0 and obs[COL["olla_mcs"]] == 0
    assert obs[COL["ack_rate_fast"]] == pytest.approx(0.9)
    assert obs[COL["ack_rate_slow"]] == pytest.approx(0.9)
    assert obs[COL["feedback_age"]] == 1.0
    assert obs[COL["buffer"]] == 1.0


def test_values_follow_documented_scaling():
    h = FeatureHistory(3)
    rows = np.arange(3)
    h.update(
        rows,
        reports(
            3,
            cqi=[15, 0, 7],
            cqi_age_slots=[0, 80, 20],
            rank=[1, 8, 4],
            n_prb=[1, 275, 16],
            n_symbols=[14, 7, 12],
            buffer_bytes=[-1, 0, 9_999_999],
        ),
    )
    o = h.encode(rows)
    np.testing.assert_allclose(o[:, COL["cqi"]], [1.0, 0.0, 7 / 15], rtol=1e-6)
    np.testing.assert_allclose(o[:, COL["cqi_valid"]], 1.0)
    np.testing.assert_allclose(o[:, COL["cqi_age"]], [0.0, 1.0, 0.5])
    sinr = link_map.sinr_from_cqi(np.array([15, 0, 7]))
    np.testing.assert_allclose(o[:, COL["cqi_sinr_db"]], sinr / 30, rtol=1e-5)
    np.testing.assert_allclose(o[:, COL["olla_mcs"]], link_map.illa_mcs(sinr) / 27, rtol=1e-6)
    np.testing.assert_allclose(o[:, COL["rank"]], [1 / 8, 1.0, 0.5])
    np.testing.assert_allclose(o[:, COL["log_prb"]], [0.0, 1.0, 4 / np.log2(275)], rtol=1e-6)
    np.testing.assert_allclose(o[:, COL["n_symbols"]], [1.0, 0.5, 12 / 14], rtol=1e-6)
    np.testing.assert_allclose(o[:, COL["buffer"]], [1.0, 0.0, 1.0], atol=1e-6)


def test_same_reports_same_observation():
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    a, b = FeatureHistory(8), FeatureHistory(8)
    rows = np.arange(8)
    for _ in range(25):
        a.update(rows, random_reports(rng1, 8))
        b.update(rows, random_reports(rng2, 8))
        assert np.array_equal(a.encode(rows), b.encode(rows))


def test_history_ring_newest_first():
    h = FeatureHistory(1)
    row = np.array([0])
    seq = [(1, 5), (0, 7), (-1, 0), (1, 20)]
    for ack, mcs in seq:
        h.update(row, reports(1, harq_ack=ack, harq_mcs=mcs))
    o = h.encode(row)[0]
    acks = o[COL["harq_ack_0"] : COL["harq_ack_0"] + HISTORY_LEN]
    mcss = o[COL["harq_mcs_0"] : COL["harq_mcs_0"] + HISTORY_LEN] * 27
    np.testing.assert_allclose(acks[:4], [1, -1, 1, 0])  # the no-feedback slot is skipped
    np.testing.assert_allclose(mcss[:3], [20, 7, 5], rtol=1e-6)
    # 10 more feedbacks: only the newest 8 stay
    for i in range(10):
        h.update(row, reports(1, harq_ack=0, harq_mcs=i))
    mcss = h.encode(row)[0, COL["harq_mcs_0"] : COL["harq_mcs_0"] + HISTORY_LEN] * 27
    np.testing.assert_allclose(mcss, np.arange(9, 1, -1), rtol=1e-6)


def test_ack_rate_ewma_and_feedback_age():
    h = FeatureHistory(2)
    rows = np.arange(2)
    h.update(rows, reports(2, harq_ack=[1, 0], harq_mcs=3))
    o = h.encode(rows)
    np.testing.assert_allclose(o[:, COL["ack_rate_fast"]], [0.93, 0.63], rtol=1e-6)
    np.testing.assert_allclose(o[:, COL["ack_rate_slow"]], [0.905, 0.855], rtol=1e-6)
    assert np.all(o[:, COL["feedback_age"]] == 0)
    h.update(rows, reports(2))
    h.update(rows, reports(2))
    assert np.allclose(h.encode(rows)[:, COL["feedback_age"]], 2 / AGE_CAP)


def test_rows_independent():
    rng = np.random.default_rng(3)
    h = FeatureHistory(5)
    rows = np.arange(5)
    for _ in range(10):
        h.update(rows, random_reports(rng, 5))
    row1 = h.encode(np.array([1])).copy()
    for _ in range(10):
        h.update(np.array([3]), random_reports(rng, 1))
    assert np.array_equal(h.encode(np.array([1])), row1)
    # encoding a subset or a permutation gives the same rows
    full = h.encode(rows)
    assert np.array_equal(h.encode(np.array([4, 1])), full[[4, 1]])


def test_update_subset_of_rows_in_any_order():
    rng = np.random.default_rng(4)
    a, b = FeatureHistory(6), FeatureHistory(6)
    for _ in range(12):
        rep = random_reports(rng, 3)
        a.update(np.array([5, 0, 2]), rep)
        for i, r in enumerate([5, 0, 2]):
            b.update(np.array([r]), rep.take(np.array([i])))
    assert np.array_equal(a.encode(np.arange(6)), b.encode(np.arange(6)))


def test_reset_clears_row():
    rng = np.random.default_rng(6)
    h = FeatureHistory(3)
    rows = np.arange(3)
    for _ in range(10):
        h.update(rows, random_reports(rng, 3))
    keep = h.encode(np.array([0, 2])).copy()
    h.reset(np.array([1]))
    assert np.array_equal(h.encode(np.array([1])), FeatureHistory(1).encode(np.array([0])))
    assert h.outer_loop.offset_db[1] == 0.0
    assert np.array_equal(h.encode(np.array([0, 2])), keep)


def test_grow_keeps_history():
    rng = np.random.default_rng(7)
    h = FeatureHistory(2)
    rows = np.arange(2)
    for _ in range(10):
        h.update(rows, random_reports(rng, 2))
    before = h.encode(rows).copy()
    h.grow(5)
    assert h.capacity == 5
    assert np.array_equal(h.encode(rows), before)
    fresh = FeatureHistory(1).encode(np.array([0]))
    assert np.array_equal(h.encode(np.array([4])), fresh)
    h.update(np.arange(5), random_reports(rng, 5))  # grown rows are usable
    h.grow(3)
    assert h.capacity == 5


def test_olla_offset_column_equals_outer_loop():
    """Single-implementation contract: same feedback into OuterLoop and into the encoder."""
    rng = np.random.default_rng(8)
    n = 16
    h, loop = FeatureHistory(n), OuterLoop(n)
    rows = np.arange(n)
    for _ in range(200):
        rep = random_reports(rng, n)
        h.update(rows, rep)
        loop.update(rows, rep.harq_ack)
    obs = h.encode(rows)
    np.testing.assert_allclose(
        obs[:, COL["olla_offset_db"]] * 10.0, loop.offset_db, rtol=1e-5, atol=1e-5
    )
    assert np.any(np.abs(loop.offset_db) > 0.5)
    # and the olla_mcs column is ILLA(cqi_sinr − offset)
    valid = obs[:, COL["cqi_valid"]] == 1
    cqi = np.where(valid, np.round(obs[:, COL["cqi"]] * 15).astype(int), 0)
    expect = link_map.illa_mcs(link_map.sinr_from_cqi(cqi) - loop.offset_db) * valid
    np.testing.assert_allclose(obs[:, COL["olla_mcs"]] * 27, expect, atol=1e-4)


def test_olla_offset_ignores_retransmission_feedback():
    """With ``harq_tx_index``, retransmission feedback (index > 0) does not move the OLLA
    offset feature; the HARQ history features still record it."""
    h = FeatureHistory(3)
    rows = np.arange(3)
    h.update(rows, reports(3, harq_ack=[0, 0, 0], harq_tx_index=[0, 1, -1]))
    h.update(rows, reports(3, harq_ack=[0, 0, 0], harq_tx_index=[2, 3, 0]))
    obs = h.encode(rows)
    np.testing.assert_allclose(obs[:, COL["olla_offset_db"]] * 10.0, [1.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_array_equal(obs[:, COL["harq_ack_0"]], -1.0)
    np.testing.assert_array_equal(obs[:, COL["harq_ack_1"]], -1.0)
    # and it equals OuterLoop fed the same index
    rng = np.random.default_rng(4)
    h, loop = FeatureHistory(8), OuterLoop(8)
    rows = np.arange(8)
    for _ in range(50):
        rep = reports(8, harq_ack=rng.integers(-1, 2, 8), harq_tx_index=rng.integers(-1, 4, 8))
        h.update(rows, rep)
        loop.update(rows, rep.harq_ack, rep.harq_tx_index)
    np.testing.assert_allclose(
        h.encode(rows)[:, COL["olla_offset_db"]] * 10.0, loop.offset_db, rtol=1e-5, atol=1e-5
    )


def test_no_cqi_yet_masks_cqi_features():
    h = FeatureHistory(1)
    h.update(np.array([0]), reports(1, cqi=15, cqi_age_slots=-1))
    o = h.encode(np.array([0]))[0]
    assert o[COL["cqi"]] == 0 and o[COL["cqi_valid"]] == 0 and o[COL["olla_mcs"]] == 0
    assert o[COL["cqi_age"]] == 1.0


def test_privileged_features():
    p = privileged_features(np.array([30.0, -15.0, 0.0]), np.array([1000.0, 0.0, 389.0]))
    assert p.shape == (3, PRIVILEGED_DIM) and p.dtype == np.float32
    np.testing.assert_allclose(p, [[1.0, 1.0], [-0.5, 0.0], [0.0, 0.389]], rtol=1e-6)


def test_zero_capacity_history_handles_empty_batches():
    """A history created empty (rows allocated later) must accept an empty slot."""
    h = FeatureHistory(0)
    empty = ReportBatch.from_arrays(
        **{
            k: []
            for k in (
                "ue_id",
                "cqi",
                "cqi_age_slots",
                "harq_ack",
                "harq_mcs",
                "rank",
                "n_prb",
                "n_symbols",
            )
        }
    )
    rows = np.zeros(0, np.int64)
    h.update(rows, empty)
    assert h.encode(rows).shape == (0, OBS_DIM)
    h.grow(2)
    assert h.encode(np.arange(2)).shape == (2, OBS_DIM)


@pytest.mark.parametrize("scenario", ["mimo", "bursty"])
def test_simulator_observation_equals_encoder_fed_its_reports(scenario):
    """No training/serving skew: replaying the simulator's raw reports through a separate
    FeatureHistory (as the xApp does) reproduces the observation the learner saw."""
    from linkadapt.baselines import OllaPolicy
    from linkadapt.sim import Simulator

    n = 12
    sim = Simulator(scenario, n, seed=3, privileged=True)
    replay = FeatureHistory(n)
    policy = OllaPolicy(n)
    for _ in range(80):
        b = sim.observe()
        b.reports.validate()
        replay.update(b.rows, b.reports)
        assert b.obs.shape == (n, OBS_DIM + PRIVILEGED_DIM)
        np.testing.assert_array_equal(b.obs[:, :OBS_DIM], replay.encode(b.rows))
        sim.step(policy.act(b))
    # the encoder's OLLA and the OLLA baseline saw the same feedback
    np.testing.assert_allclose(replay.outer_loop.offset_db, policy.loop.offset_db)


def _reference_encode(history: FeatureHistory, rows: np.ndarray | None) -> np.ndarray:
    """The encoder as first written: each column computed elementwise in float64 and
    written into the [n, OBS_DIM] array; the fast encoder must match it bit for bit."""
    a = history._arrays
    at = slice(None) if rows is None else rows
    n = history.capacity if rows is None else len(rows)
    out = np.empty((n, OBS_DIM), dtype=np.float32)
    age = a["cqi_age"][at]
    valid = age >= 0
    cqi = np.where(valid, a["cqi"][at], 0)
    sinr = link_map.sinr_from_cqi(cqi, cqi_table=history.cqi_table)
    offset = history.outer_loop.offset_db[at]
    out[:, 0] = cqi / 15.0
    out[:, 1] = valid
    out[:, 2] = np.minimum(np.where(valid, age, AGE_CAP), AGE_CAP) / AGE_CAP
    out[:, 3] = np.where(valid, sinr, -10.0) / 30.0
    out[:, 4] = offset / 10.0
    out[:, 5] = link_map.illa_mcs(sinr - offset, table=history.mcs_table) * valid / 27.0
    out[:, 6] = a["ack_fast"][at]
    out[:, 7] = a["ack_slow"][at]
    h = 8 + HISTORY_LEN
    out[:, 8:h] = a["harq_ack"][:, at].T
    out[:, h : h + HISTORY_LEN] = a["harq_mcs"][:, at].T / 27.0
    c = h + HISTORY_LEN
    out[:, c] = np.minimum(a["feedback_age"][at], AGE_CAP) / AGE_CAP
    out[:, c + 1] = a["rank"][at] / 8
    out[:, c + 2] = np.log2(np.maximum(a["n_prb"][at], 1)) / np.log2(275)
    out[:, c + 3] = a["n_symbols"][at] / 14
    buf = a["buffer"][at]
    log_buf = np.log10(1.0 + np.maximum(buf, 0)) / 7.0
    out[:, c + 4] = np.where(buf < 0, 1.0, np.minimum(log_buf, 1.0))
    return out


@pytest.mark.parametrize("mcs_table", [1, 2])
def test_encode_is_bit_identical_to_the_elementwise_reference(mcs_table: int) -> None:
    rng = np.random.default_rng(11)
    n = 300
    history = FeatureHistory(n, mcs_table=mcs_table)
    for step in range(40):
        history.update(None, random_reports(rng, n))
        if step % 7 == 0:
            history.reset(rng.choice(n, 20, replace=False))
        rows = rng.permutation(n)[:100]
        for sel in (None, rows, rows[:5], rows[:0]):
            got = history.encode(sel)
            expected = _reference_encode(history, sel)
            assert got.flags.c_contiguous and got.dtype == np.float32
            assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), step


def test_full_encode_cache_follows_every_change_of_the_history() -> None:
    """``encode(None)`` reuses its last observation for rows whose inputs did not change:
    after updates of some rows, resets, a direct change of the OLLA offset, a NaN, a
    grow, it still equals the elementwise reference bit for bit, and callers own the
    arrays it returns."""
    rng = np.random.default_rng(12)
    n = 200
    history = FeatureHistory(n)
    history.update(None, random_reports(rng, n))
    first = history.encode(None)
    kept = first.copy()
    for step in range(30):
        rows = np.sort(rng.choice(history.capacity, 40, replace=False))
        history.update(rows, random_reports(rng, 40))
        if step == 5:
            history.outer_loop.offset_db[7] = 3.25  # behind the history's back
        if step == 9:
            history.outer_loop.offset_db[8] = np.nan
        if step == 12:
            history.reset(rows[:5])
        if step == 20:
            history.grow(history.capacity + 17)
        got = history.encode(None)
        expected = _reference_encode(history, None)
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), step
        got[:] = 0.0  # the caller's array: must not be the cache
    np.testing.assert_array_equal(first, kept)


def test_exported_history_encodes_the_same_in_another_history() -> None:
    """export_rows/import_rows (the xApp's state handover) carry every field, the last-8
    ACK/MCS rings included: the moved rows encode exactly as they did."""
    from linkadapt.reports import ReportBatch

    rng = np.random.default_rng(0)
    n = 20
    src = FeatureHistory(n)
    for _ in range(30):
        reports = ReportBatch.from_arrays(
            ue_id=np.arange(n),
            cqi=rng.integers(0, 16, n),
            cqi_age_slots=rng.integers(-1, 5, n),
            harq_ack=rng.integers(-1, 2, n),
            harq_mcs=rng.integers(0, 28, n),
            rank=np.ones(n, int),
            n_prb=np.full(n, 50),
            n_symbols=np.full(n, 12),
        )
        src.update(np.arange(n), reports)
    rows, dest_rows = np.array([3, 7, 11]), np.array([0, 2, 4])
    moved = src.export_rows(rows)
    assert moved["harq_ack"].shape == (3, 8)
    dest = FeatureHistory(5)
    dest.import_rows(dest_rows, moved)
    np.testing.assert_array_equal(dest.encode(dest_rows), src.encode(rows))
