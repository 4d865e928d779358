"""The HARQ-aware reward: hand-computed credits, the outage ordering, delayed delivery."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from linkadapt.sim import PRESETS, Simulator
from linkadapt.sim.reward import Credit, RewardConfig, harq_credit


class ConstantMcs:
    name = "constant"

    def __init__(self, mcs: int) -> None:
        self.mcs = mcs

    def reset(self, rows: np.ndarray) -> None:
        pass

    def act(self, batch) -> np.ndarray:
        return np.full(len(batch), self.mcs)


def test_block_decoded_at_its_third_transmission_by_hand() -> None:
    cfg = RewardConfig("harq", retx_charge=0.5, loss_penalty=1.0)
    # payload 8000 bits, decoded at transmission 3, MCS-max capacity 40 000 bits:
    # (8000 − 0.5·2·8000 − 0) / 40 000 = 0
    assert harq_credit(
        cfg, np.array([8000.0]), np.array([True]), np.array([3]), np.array([40_000])
    )[0] == pytest.approx(0.0)
    cfg = RewardConfig("harq", retx_charge=0.25, loss_penalty=1.0)
    # (8000 − 0.25·2·8000) / 40 000 = 0.1
    assert harq_credit(
        cfg, np.array([8000.0]), np.array([True]), np.array([3]), np.array([40_000])
    )[0] == pytest.approx(0.1)
    # lost after 4 transmissions: (0 − 0.25·3·8000 − 8000) / 40 000 = −0.35
    assert harq_credit(
        cfg, np.array([8000.0]), np.array([False]), np.array([4]), np.array([40_000])
    )[0] == pytest.approx(-0.35)


def test_in_an_outage_the_smallest_payload_scores_strictly_best() -> None:
    cfg = RewardConfig()
    payload = np.array([200.0, 5000.0, 40_000.0])  # MCS 0, a mid MCS, a high MCS
    lost = harq_credit(cfg, payload, np.zeros(3, bool), np.full(3, 4), np.full(3, 50_000))
    assert lost[0] > lost[1] > lost[2]
    # MCS 0 decoded at the 4th attempt still beats a mid MCS lost
    late = harq_credit(cfg, payload[:1], np.array([True]), np.array([4]), np.array([50_000]))
    assert late[0] > lost[1]


def test_reward_config_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="reward"):
        RewardConfig("bits")


def _outage_cfg():
    # a single cell far too weak for MCS 0 even after four chase-combined transmissions
    return dataclasses.replace(PRESETS["scsu"], tx_power_dbm=-45.0, n_cells=1, ues_per_slot=2)


def test_simulated_outage_mcs0_collects_more_credit_than_an_undecodable_mcs() -> None:
    totals = {}
    for mcs in (0, 15):
        sim = Simulator(_outage_cfg(), 4, seed=3)
        credit = []
        for _ in range(300):
            sim.step(np.full(4, mcs) * sim.observe().new_tx)
            credit.append(sim.pop_credits())
        c = Credit.concat(credit)
        assert c.row.size > 0 and sim.kpi.delivered_bits.sum() == 0
        totals[mcs] = float(c.reward.sum()) / c.row.size
    assert totals[0] > totals[15]


def test_every_decision_is_credited_exactly_once_and_in_reward_units() -> None:
    sim = Simulator("mimo", 60, seed=10_000)
    credits = []
    policy = ConstantMcs(12)
    for _ in range(400):
        batch = sim.observe()
        credits.append(sim.pop_credits())
        sim.step(policy.act(batch))
    credits.append(sim.pop_credits())
    c = Credit.concat(credits)
    keys = c.row * 1_000_000 + c.index
    assert np.unique(keys).size == keys.size  # no decision credited twice
    outstanding = (sim.harq.state != 0).sum()
    assert c.row.size + outstanding == sim.harq.decisions.sum()
    assert np.all(c.reward <= 1.0) and np.all(c.reward >= -(1.0 * 3 + 1.0))


def test_first_tx_reward_is_immediate_and_emits_no_credit() -> None:
    sim = Simulator("mimo", 30, seed=1, reward="first_tx")
    got = 0.0
    for _ in range(50):
        got += float(sim.step(np.full(30, 10) * sim.observe().new_tx).reward.sum())
        assert sim.pop_credits().row.size == 0
    assert got > 0.0
