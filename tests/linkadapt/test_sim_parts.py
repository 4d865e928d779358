"""The simulator's parts on their own: HARQ processes, scheduler, traffic, PHY abstraction."""

from __future__ import annotations

import dataclasses

import numpy as np

from linkadapt import bler, nr
from linkadapt.sim import PRESETS
from linkadapt.sim.harq import IDLE, NEEDS_RETX, WAITING, HarqProcesses
from linkadapt.sim.phy import PhyAbstraction
from linkadapt.sim.scheduler import Scheduler
from linkadapt.sim.traffic import Traffic

ONE = np.array([0])


def _start(h: HarqProcesses, t: int, ue: np.ndarray, proc: np.ndarray, ok: bool) -> None:
    k = ue.size
    h.start(
        t,
        ue,
        proc,
        mcs=np.full(k, 9),
        payload=np.full(k, 1000.0),
        decoded=np.full(k, ok),
        prb=np.full(k, 10),
        rank=np.full(k, 2),
        max_bits=np.full(k, 5000.0),
    )


def test_feedback_lands_after_the_ue_delay_and_frees_the_process() -> None:
    h = HarqProcesses(8, 4, delay=np.array([3, 5]), max_delay=6)
    _start(h, 10, np.array([0, 1]), np.array([0, 0]), ok=True)
    assert (h.state[:, 0] == WAITING).all() and h.decisions.tolist() == [1, 1]
    seen = {}
    for t in range(11, 17):
        fb = h.collect(t, max_transmissions=4)
        for u in fb.ue:
            seen[int(u)] = t
        if t == 13:
            assert fb.harq_ack.tolist() == [1, -1] and fb.harq_mcs.tolist() == [9, 0]
            assert fb.harq_tx_index.tolist() == [0, -1] and fb.finished.tolist() == [True]
    assert seen == {0: 13, 1: 15}
    assert (h.state[:, 0] == IDLE).all()


def test_nack_waits_for_a_retransmission_until_the_last_attempt() -> None:
    h = HarqProcesses(8, 4, delay=np.array([2]), max_delay=2)
    _start(h, 0, ONE, ONE, ok=False)
    fb = h.collect(2, max_transmissions=2)
    assert fb.harq_ack.tolist() == [0] and not fb.finished[0]
    has_retx, retx_proc, _, idle_proc = h.pending()
    assert has_retx[0] and retx_proc[0] == 0 and idle_proc[0] == 1
    assert h.state[0, 0] == NEEDS_RETX
    h.retransmitted(3, ONE, ONE, decoded=np.array([False]))
    fb = h.collect(5, max_transmissions=2)
    assert fb.harq_tx_index.tolist() == [1] and fb.n_tx.tolist() == [2]
    assert fb.finished.tolist() == [True] and not fb.decoded[0]  # a residual loss
    assert h.state[0, 0] == IDLE


def test_flush_returns_blocks_in_flight_and_cancels_their_feedback() -> None:
    h = HarqProcesses(8, 4, delay=np.array([4, 4]), max_delay=4)
    _start(h, 0, np.array([0, 1]), np.array([0, 0]), ok=True)
    _start(h, 1, np.array([0]), np.array([1]), ok=True)
    rows, decisions, bits = h.flush(np.array([0]))
    assert rows.tolist() == [0, 0] and sorted(decisions.tolist()) == [0, 1]
    assert bits.tolist() == [2000.0]
    assert (h.state[0] == IDLE).all() and h.state[1, 0] == WAITING
    landed = [int(u) for t in range(2, 8) for u in h.collect(t, 4).ue]
    assert landed == [1]  # UE 0's feedback no longer arrives


def test_scheduler_picks_at_most_k_per_cell_and_splits_prbs() -> None:
    cfg = dataclasses.replace(PRESETS["mimo"], n_cells=2, ues_per_slot=2, scheduler="rr")
    cell = np.array([0, 0, 0, 1, 1, 0])
    s = Scheduler(cfg, cell.size)
    eligible = np.array([True, True, True, True, False, False])
    cqi, ri = np.full(6, 7, np.int16), np.ones(6, np.int16)
    scheduled, prb = s.schedule(0, eligible, cqi, ri, cell)
    assert scheduled.sum() == 3 and scheduled[3] and not scheduled[4] and not scheduled[5]
    assert np.bincount(cell[scheduled], minlength=2).tolist() == [2, 1]
    assert prb[cell == 0].tolist() == [cfg.n_prb // 2] * 4 and prb[3] == cfg.n_prb
    # round robin: the UE of cell 0 left out now goes first
    left_out = int(np.flatnonzero(~scheduled[:3])[0])
    assert s.schedule(1, eligible, cqi, ri, cell)[0][left_out]


def test_traffic_sends_what_is_queued_and_takes_back_flushed_bits() -> None:
    cfg = dataclasses.replace(PRESETS["bursty"], packets_per_slot=5.0)
    tr = Traffic(cfg, np.array([False, True]), np.random.SeedSequence(0))
    assert tr.buffer_bytes().tolist() == [-1, 0]
    assert tr.send(np.array([0, 1]), np.array([500, 500])).tolist() == [500.0, 0.0]
    tr.arrivals()
    queued = tr.buffer_bits[1]
    assert queued > 0 and np.isinf(tr.buffer_bits[0])
    assert tr.send(np.array([1]), np.array([10**9]))[0] == queued
    tr.requeue(np.array([1]), np.array([800.0]))
    assert tr.buffer_bytes()[1] == 100


def test_phy_tbler_is_the_bler_model_of_the_block() -> None:
    cfg = PRESETS["mimo"]
    offset = np.array([0.0, 0.5, 0.0])
    phy = PhyAbstraction(cfg, bler_offset_db=offset)
    sinr_db = 13.25
    sinr = np.full((3, cfg.subbands), 10.0 ** (sinr_db / 10.0), np.float32)  # flat: EESM = it
    mcs, rank, prb = np.array([15, 15, 15]), np.array([1, 1, 2]), np.array([3, 3, 50])
    got = phy.tbler(sinr, mcs, rank, prb, np.arange(3))
    rate = nr.mcs_table(cfg.mcs_table)[15, 1] / 1024
    c, k = nr.code_block_segmentation(nr.transport_block_size(mcs, prb, n_layers=rank), rate)
    assert c.tolist()[:2] == [1, 1] and c[2] > 1
    cb = bler.code_block_bler(sinr_db, mcs, cb_bits=k, offset_db=offset)
    np.testing.assert_allclose(got, 1 - (1 - cb) ** c, rtol=1e-4)
    assert 0.01 < got[0] < got[1] < 0.99  # in the waterfall; a positive offset decodes worse
    assert phy.n_mcs == nr.n_mcs(cfg.mcs_table)
