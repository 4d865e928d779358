"""The shadow comparison's parts in isolation: the ACK model behind the predicted KPIs,
tallies, outcome matching and its bounds, candidate paths, promotion bounds, and the
registry's swap / rollback."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from service_testing import write_model_dir

from linkadapt import bler, nr
from service.errors import InvalidArgument
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.shadow import MIN_WINDOW_OUTCOMES, PromotionBounds, resolve_candidate_dir
from service.shadow_stats import SINR_SPREAD_DB, AckModel, OutcomeMatcher, Tally, compare


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def test_ack_model_is_the_conditional_threshold_probability() -> None:
    t = 0.1
    model = AckModel(2, t)
    thr = bler.mcs_thresholds_db(table=2)
    z = 1.2815515655446004  # Φ⁻¹(0.9)
    a = 12
    for c in (13, 15, 20):  # ACK at a, higher MCS: P(S >= T_c | S >= T_a)
        d = (thr[c] - thr[a]) / SINR_SPREAD_DB
        assert model.p_ack[1, a, c] == pytest.approx((1 - _phi(d - z)) / (1 - t))
    for c in (11, 9, 4):  # NACK at a, lower MCS: P(T_c <= S < T_a | S < T_a)
        d = (thr[c] - thr[a]) / SINR_SPREAD_DB
        assert model.p_ack[0, a, c] == pytest.approx((t - _phi(d - z)) / t)
    # what the outcome settles: an ACK carries down, a NACK carries up, same MCS = outcome
    assert np.all(model.p_ack[1, a, : a + 1] == 1.0)
    assert np.all(model.p_ack[0, a, a:] == 0.0)
    # monotone: a more aggressive candidate never decodes more often
    assert np.all(np.diff(model.p_ack[1, a, a:]) <= 0)
    assert np.all(np.diff(model.p_ack[0, a, : a + 1]) <= 0)
    assert model.p_ack.shape == (2, 28, 28) and model.p_ack.min() >= 0 and model.p_ack.max() <= 1


def test_tbs_bits_is_38214_capped_by_the_buffer() -> None:
    model = AckModel(2, 0.1)
    mcs, rank, prb, sym = (
        np.array([5, 20]),
        np.array([1, 2]),
        np.array([20, 100]),
        np.array([12, 12]),
    )
    t = nr.mcs_table(2)[mcs]
    full = nr.tbs(t[:, 0], t[:, 1], prb, n_symbols=sym, n_layers=rank)
    got = model.tbs_bits(mcs, rank, prb, sym, np.array([-1, -1]))
    np.testing.assert_array_equal(got, full)
    got = model.tbs_bits(mcs, rank, prb, sym, np.array([10, 10**9]))
    np.testing.assert_array_equal(got, [80.0, full[1]])


def test_tally_compare_and_summary() -> None:
    tally = compare(np.array([10, 10, 10, 10]), np.array([10, 11, 8, 10]), cell_slots=2)
    assert (tally.compared, tally.agree, tally.agree_one, tally.mcs_diff) == (4, 2, 3, -1)
    total = Tally()
    total.add(tally)
    total.add(Tally(first_tx=4, active_bits=100.0, candidate_bits=110.0, candidate_nacks=1.0))
    s = total.summary()
    assert s["cell_slots"] == 2 and s["agreement"] == 0.5 and s["agreement_within_one"] == 0.75
    assert s["mean_mcs_difference"] == -0.25 and s["matched_outcomes"] == 4
    assert s["predicted_throughput_change"] == pytest.approx(0.1)
    assert s["predicted_first_tx_bler_change"] == pytest.approx(0.25)
    empty = Tally().summary()
    assert empty["agreement"] == 0 and empty["predicted_throughput_change"] == 0


def _columns(active: list[int], cand: list[int]) -> np.ndarray:
    n = len(active)
    return np.stack([active, cand, [1] * n, [50] * n, [12] * n, [-1] * n]).astype(np.int64)


def test_outcome_matching() -> None:
    model = AckModel(2, 0.1)
    m = OutcomeMatcher(model)
    m.add(7, 100, np.array([30, 10, 20]), _columns([10, 12, 14], [10, 13, 12]))
    report = {
        "ue_id": np.array([10, 20, 30, 40, 50]),
        "first_tx_ack": np.array([1, 0, 1, 1, -1]),  # 40: no such UE; 50: a retransmission
        "mcs": np.array([12, 14, 11, 0, 0]),  # 30 was sent with 11, not the active 10
    }
    got = m.match(7, 100, report)
    assert (got.matched, got.unmatched, got.not_followed) == (2, 1, 1)
    tbs = model.tbs_bits(np.arange(28), *(np.full(28, v) for v in (1, 50, 12, -1)))
    t = got.tally
    assert t.first_tx == 2 and t.active_bits == pytest.approx(tbs[12])  # UE 10 ACK at 12
    p10, p20 = model.p_ack[1, 12, 13], model.p_ack[0, 14, 12]
    assert t.candidate_bits == pytest.approx(p10 * tbs[13] + p20 * tbs[12])
    assert t.active_nacks == 1 and t.candidate_nacks == pytest.approx(2 - p10 - p20)
    # each decision's outcome counts once (all three seen: the request is forgotten);
    # other slots and cells do not match
    assert len(m) == 0
    again = m.match(7, 100, report)
    assert again.matched == 0 and again.unmatched == 4
    assert m.match(7, 101, report).unmatched == 4 and m.match(8, 100, report).unmatched == 4


def test_pending_decisions_are_bounded() -> None:
    m = OutcomeMatcher(AckModel(2, 0.1), max_requests=3, max_ues=5)
    for slot in range(5):
        m.add(1, slot, np.array([1, 2]), _columns([3, 3], [4, 4]))
        assert len(m) <= 3 and m.n_ues <= 5
    assert (len(m), m.n_ues) == (2, 4)  # the UE bound bites first
    report = {"ue_id": np.array([1]), "first_tx_ack": np.array([1])}
    assert m.match(1, 2, report).unmatched == 1  # dropped (oldest first)
    assert m.match(1, 4, report).matched == 1
    m.add(1, 4, np.array([1, 2, 3]), _columns([3, 3, 3], [4, 4, 4]))  # same key: replaced
    assert (len(m), m.n_ues) == (2, 5)
    m.add(1, 5, np.array([1]), _columns([3], [4]))  # 6 UEs: slot 3 goes
    assert (len(m), m.n_ues) == (2, 4) and m.match(1, 3, report).unmatched == 1
    m.clear()
    assert (len(m), m.n_ues) == (0, 0)


def test_candidate_dir_must_lie_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "cand").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert resolve_candidate_dir("cand", root) == (root / "cand").resolve()
    assert resolve_candidate_dir(str(root / "cand"), root) == (root / "cand").resolve()
    assert resolve_candidate_dir("cand/../cand", root) == (root / "cand").resolve()
    for bad in ("../secret", str(tmp_path / "secret"), "link", "", "  ", None, 3, "a\x00b"):
        with pytest.raises(InvalidArgument) as err:
            resolve_candidate_dir(bad, root)
        assert err.value.field == "model_dir"


def test_promotion_bounds() -> None:
    b = PromotionBounds(min_agreement=0.8, min_throughput_change=0.0, max_bler_change=0.01)
    ok = {
        "matched_outcomes": MIN_WINDOW_OUTCOMES,
        "agreement_within_one": 0.8,
        "predicted_throughput_change": 0.0,
        "predicted_first_tx_bler_change": 0.01,
    }
    assert b.inside(ok)
    for key, value in (
        ("matched_outcomes", MIN_WINDOW_OUTCOMES - 1),  # too little evidence
        ("agreement_within_one", 0.79),
        ("predicted_throughput_change", -0.001),
        ("predicted_first_tx_bler_change", 0.011),
    ):
        assert not b.inside({**ok, key: value}), key


def test_registry_swap_rollback_and_unchanged_reload(tmp_path: Path) -> None:
    seen: list[tuple[str | None, str]] = []
    a = write_model_dir(tmp_path / "a", seed=0, version="a")
    reg = ModelRegistry(a, metrics=ServiceMetrics())
    reg.add_swap_listener(lambda old, new: seen.append((old and old.version, new.version)))
    assert reg.rollback() is None  # nothing to roll back to
    assert reg.reload()[0] and reg.previous is None
    first = reg.current
    assert first is not None
    assert reg.reload()[0] and reg.current is first and len(seen) == 1  # same model: no swap
    b = reg.load(write_model_dir(tmp_path / "b", seed=1, version="b"))
    reg.swap(b, "promoted")
    assert reg.current is b and reg.previous is first and reg.model_dir == tmp_path / "b"
    assert reg.info()["previous_version"] == first.version
    assert reg.rollback() is first and reg.current is first and reg.previous is b
    assert reg.rollback() is b  # a second rollback undoes the first
    assert [new for _, new in seen] == [first.version, b.version, first.version, b.version]
    assert not reg.changed()
    write_model_dir(tmp_path / "b", seed=2, version="b2")  # hot reload follows b's directory
    os.utime(tmp_path / "b" / "model.onnx")
    assert reg.changed() and reg.reload()[0] and reg.current.version.startswith("b2+")
