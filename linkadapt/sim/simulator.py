"""The vectorized link-level simulator: N UEs in M cells, one slot per call, no loop over UEs.

Per slot ``t`` (see docs/simulator.md):

1. :meth:`Simulator.observe` advances fading and interference, delivers HARQ feedback
   that is due (ACK → bits delivered; NACK → retransmission or, after the last
   transmission, a residual loss), lands CQI/RI reports that are due, moves UEs and hands
   them over every ``LARGE_SCALE_UPDATE_SLOTS`` (:mod:`linkadapt.sim.geometry`), schedules
   UEs (round-robin or proportional-fair per serving cell, PRBs split equally), and
   returns the :class:`~linkadapt.policy.DecisionBatch` with the raw reports and their
   observation.
2. :meth:`Simulator.step` applies the policy's MCS to the UEs starting a new transport
   block (``new_tx``), sends due retransmissions with their original MCS and layers,
   draws decoding outcomes from the BLER abstraction, and returns the :class:`StepResult`.

Per-layer SINR per subband: channel SINR × fading × layer gain, then the EVM cap (after
precoding, so a large array cannot lift a layer above the impairment floor). HARQ chase
combining keeps each process's accumulated per-subband linear SINR and applies EESM at
each decoding attempt (combining before EESM, as a receiver does; adding effective SINRs
after EESM is 0.8-1 dB optimistic on a frequency-selective channel).

Reward (for RL): :mod:`linkadapt.sim.reward`. ``harq`` credits a decision with its
block's whole HARQ life when the block finishes (:meth:`Simulator.pop_credits`);
``first_tx`` is the immediate first-attempt reward in :attr:`StepResult.reward`.

Handover resets the UE's context as a gNB's MAC reset does: its HARQ processes are
flushed (payload back to the buffer, no loss counted, decisions credited 0), its pending
CQI is dropped, its report history restarts, and ``DecisionBatch.attached`` flags the row
so stateful policies reset it (:meth:`Simulator.run` does).

Random numbers are drawn for every UE every slot from streams independent of the
decisions, so two policies run with the same seed see the same channel (paired runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkadapt import bler, nr
from linkadapt.features import FeatureHistory, privileged_features
from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch
from linkadapt.sim import channel
from linkadapt.sim.cqi import CQI_EESM_MCS, CqiReporting
from linkadapt.sim.geometry import Geometry
from linkadapt.sim.kpi import KpiAccumulator
from linkadapt.sim.reward import Credit, RewardConfig, harq_credit
from linkadapt.sim.scenario import ScenarioConfig, load_scenario
from linkadapt.sim.trace import load_trace

PF_AVERAGING = 0.02  # proportional-fair throughput EWMA factor per slot
IDLE, WAITING, NEEDS_RETX = 0, 1, 2
LARGE_SCALE_UPDATE_SLOTS = 20  # mobility/shadowing/handover cadence (≤ 0.5 m at 150 km/h)


@dataclass(frozen=True)
class StepResult:
    """Outcome of one slot; arrays are ``[n_ues]``."""

    reward: np.ndarray  # float32, ``first_tx`` reward (zeros with the ``harq`` reward)
    new_tx: np.ndarray  # bool, a new transport block was sent with the policy's MCS
    sent_bits: np.ndarray  # int64, payload bits of new transmissions


class Simulator:
    """Link-adaptation simulator for ``n_ues`` UEs; reproducible from (scenario, seed)."""

    def __init__(
        self,
        scenario: str | ScenarioConfig,
        n_ues: int,
        seed: int = 0,
        *,
        privileged: bool = False,
        reward: RewardConfig | str = "harq",
    ) -> None:
        self.base = load_scenario(scenario)
        self.n = int(n_ues)
        self.privileged = privileged
        self.reward = RewardConfig(reward) if isinstance(reward, str) else reward
        self.rows = np.arange(self.n, dtype=np.int64)
        self._seed_seq = np.random.SeedSequence(seed)
        self.trace = (
            load_trace(self.base.trace, self.base.trace_columns) if self.base.trace else None
        )
        self.drop()

    # ------------------------------------------------------------------ drop / reset
    def drop(self) -> None:
        """Start a new drop: new deployment (if randomized), positions, UE parameters."""
        drop_seq, chan_seq, dec_seq, mob_seq = self._seed_seq.spawn(4)
        rng = np.random.default_rng(drop_seq)
        self.chan_rng = np.random.default_rng(chan_seq)
        self.dec_rng = np.random.default_rng(dec_seq)
        cfg = self.cfg = self.base.sample(rng)
        n = self.n
        self.t = 0
        self.speed_kmh = rng.uniform(*cfg.speed_kmh, n)
        self.geometry = Geometry(cfg, self.speed_kmh, rng, np.random.default_rng(mob_seq))
        self.large = self.geometry.large_scale()
        self.trace_offset_s = None
        if self.trace is not None:
            self.trace_offset_s = rng.uniform(0.0, max(self.trace.duration_s, 1.0), n)
            _, self.speed_kmh = self.trace.at(self.trace_offset_s)
        self.fading = channel.RayleighFading(
            channel.fading_correlation(self.speed_kmh, cfg), cfg.subbands, self.chan_rng
        )
        self.interferers = channel.InterferenceActivity(n, cfg.interference_load, self.chan_rng)
        period = rng.integers(cfg.cqi_period_slots[0], cfg.cqi_period_slots[1] + 1, n)
        phase = rng.integers(0, period)
        delay = rng.integers(cfg.cqi_delay_slots[0], cfg.cqi_delay_slots[1] + 1, n)
        self.csi = CqiReporting(cfg, period, phase, delay, self.chan_rng)
        self.harq_delay = rng.integers(cfg.harq_delay_slots[0], cfg.harq_delay_slots[1] + 1, n)
        self.bler_offset = rng.uniform(*cfg.bler_offset_db, n)
        self.bursty = np.zeros(n, bool)
        if cfg.traffic == "bursty":
            self.bursty[:] = True
        elif cfg.traffic == "mixed":
            self.bursty = rng.random(n) < 0.5
        self.buffer_bits = np.where(self.bursty, 0.0, np.inf)
        self._reset_state(cfg)

    def _reset_state(self, cfg: ScenarioConfig) -> None:
        n, h = self.n, cfg.harq_processes
        self.p_state = np.zeros((n, h), np.int8)
        self.p_mcs = np.zeros((n, h), np.int16)
        self.p_payload = np.zeros((n, h), np.float64)
        self.p_ntx = np.zeros((n, h), np.int16)
        self.p_acc = np.zeros((n, h, cfg.subbands), np.float32)  # combined per-subband SINR
        self.p_max_bits = np.ones((n, h), np.float64)  # B_max of the first transmission
        self.p_decision = np.zeros((n, h), np.int64)  # which decision opened the block
        self.decisions = np.zeros(n, np.int64)  # decisions made per UE since the drop
        self._credits: list[Credit] = []
        self.attached = np.zeros(n, bool)  # context restarted this slot (handover)
        self.p_ok = np.zeros((n, h), bool)
        # feedback_due[ue, slot % R]: the HARQ process whose ACK/NACK lands in that slot
        # (−1: none). One transmission per UE per slot and a fixed per-UE delay make this a
        # ring, so delivering feedback is O(n) instead of a scan of every process.
        self.feedback_ring = int(cfg.harq_delay_slots[1]) + 1
        self.feedback_due = np.full((n, self.feedback_ring), -1, np.int16)
        self.p_prb = np.ones((n, h), np.int32)
        self.p_rank = np.ones((n, h), np.int16)
        self.avg_rate = np.full(n, 1.0)
        self.tbs, self.n_cb, self.k_cb = nr.tbs_lookup(cfg.mcs_table, cfg.n_symbols, cfg.n_dmrs_re)
        self.betas = bler.eesm_beta(np.arange(nr.n_mcs(cfg.mcs_table)), table=cfg.mcs_table)
        self.kpi = KpiAccumulator.zeros(self.n, nr.n_mcs(cfg.mcs_table))
        ranks = np.arange(1, 9)
        self.layer_gain_db = np.concatenate([[0.0], channel.layer_sinr_gain_db(ranks, cfg.n_tx)])
        self.diversity_by_rank = np.concatenate(
            [[1.0], channel.diversity_order(ranks, cfg.n_tx, cfg.ue_rx_antennas)]
        )
        self.last_served = np.full(n, -1, np.int64)  # round-robin: slot last scheduled
        self.handovers = np.zeros(n, np.int64)
        self._index_cells()
        self.report_symbols = np.full(self.n, cfg.n_symbols, np.int16)
        self.history = FeatureHistory(self.n, mcs_table=cfg.mcs_table)
        self._batch: DecisionBatch | None = None

    # ------------------------------------------------------------------ one slot
    def observe(self) -> DecisionBatch:
        """Advance the channel to slot ``t`` and return the decision batch (all UEs)."""
        cfg = self.cfg
        self.attached[:] = False
        if self.trace is None and self.t > 0 and self.t % LARGE_SCALE_UPDATE_SLOTS == 0:
            handed = self.geometry.move(
                LARGE_SCALE_UPDATE_SLOTS * cfg.slot_seconds, LARGE_SCALE_UPDATE_SLOTS
            )
            self.large = self.geometry.large_scale()
            if handed.size:
                self._hand_over(handed)
        gain = channel.diversity_gain(self.fading.step(), self.diversity_by_rank[self.ri])
        self._sinr_sb_lin = self._wideband_sinr_lin().astype(np.float32)[:, None] * gain
        harq_ack, harq_mcs, harq_tx = self._deliver_feedback()
        self.csi.step(self.t, self._sinr_sb_lin)
        self._schedule()
        rank = self.ri
        reports = ReportBatch(
            cell_id=self.report_cell,
            ue_id=self.rows,
            cqi=self.cqi,
            cqi_age_slots=self.csi.age(self.t),
            harq_ack=harq_ack,
            harq_mcs=harq_mcs,
            rank=rank,
            n_prb=self.alloc_prb,
            n_symbols=self.report_symbols,
            buffer_bytes=self._buffer_bytes(),
            harq_tx_index=harq_tx,
        )
        self.history.update(None, reports)  # None: all rows in order, the fast path
        obs = self.history.encode(None)
        self._layer_lin = channel.layer_sinr_lin(self._sinr_sb_lin, rank, cfg.n_tx, cfg.evm_sinr_db)
        layer_db = np.float32(10.0) * np.log10(np.maximum(self._layer_lin, np.float32(1e-12)))
        if self.privileged:
            eff = bler.effective_sinr_db(layer_db, self.betas[CQI_EESM_MCS])
            doppler = channel.doppler_hz(self.speed_kmh, cfg)
            obs = np.concatenate([obs, privileged_features(eff, doppler)], axis=1)
        self._batch = DecisionBatch(
            obs=obs,
            reports=reports,
            rows=self.rows,
            true_sinr_db=layer_db,
            new_tx=self.new_tx,
            bler_offset_db=self.bler_offset,
            n_dmrs_re=cfg.n_dmrs_re,
            attached=self.attached.copy(),
        )
        return self._batch

    def step(self, mcs: np.ndarray) -> StepResult:
        """Transmit with the policy's ``mcs`` (int ``[n]``; used where ``new_tx``)."""
        if self._batch is None:
            raise RuntimeError("call observe() before step()")
        n_mcs = self.tbs.shape[0]
        mcs = np.asarray(mcs)
        if mcs.shape != (self.n,) or mcs.min() < 0 or mcs.max() >= n_mcs:
            raise ValueError(f"mcs must be int [{self.n}] within 0..{n_mcs - 1}")
        decode_u = self.dec_rng.random(self.n)
        reward = np.zeros(self.n, np.float32)
        sent = np.zeros(self.n, np.int64)

        new = np.flatnonzero(self.new_tx)
        if new.size:
            proc = self.idle_proc[new]
            m = mcs[new].astype(np.int16)
            rank, prb = self.ri[new], self.alloc_prb[new]
            tb = self.tbs[m, rank, prb]
            payload = np.minimum(tb, self.buffer_bits[new])
            self.buffer_bits[new] -= payload
            self.p_acc[new, proc] = self._layer_lin[new]
            ok = decode_u[new] >= self._tbler(self.p_acc[new, proc], m, rank, prb, new)
            max_bits = self.tbs[n_mcs - 1, rank, prb]
            self._start_process(new, proc, m, payload, ok, prb, rank, max_bits)
            if self.reward.kind == "first_tx":
                reward[new] = payload * ok / np.maximum(max_bits, 1)
            sent[new] = payload
            self.kpi.first_tx[new] += 1
            self.kpi.first_tx_nack[new] += ~ok
            self.kpi.mcs_hist += np.bincount(m, minlength=n_mcs)
            self.kpi.prb_slots[new] += prb

        re = np.flatnonzero(self.retx)
        if re.size:
            proc = self.retx_proc[re]
            m = self.p_mcs[re, proc]
            rank, prb = self.p_rank[re, proc], self.p_prb[re, proc]
            # a retransmission keeps the layers it was first sent with
            self.p_acc[re, proc] += channel.layer_sinr_lin(
                self._sinr_sb_lin[re], rank, self.cfg.n_tx, self.cfg.evm_sinr_db
            )
            ok = decode_u[re] >= self._tbler(self.p_acc[re, proc], m, rank, prb, re)
            self.p_ok[re, proc] = ok
            self.p_ntx[re, proc] += 1
            self.p_state[re, proc] = WAITING
            self._expect_feedback(re, proc)
            self.kpi.prb_slots[re] += prb

        self.kpi.transmissions[new] += 1
        self.kpi.transmissions[re] += 1
        self._arrivals()
        self.avg_rate *= 1.0 - PF_AVERAGING
        self.avg_rate += PF_AVERAGING * sent
        self.kpi.slots += 1
        self.t += 1
        self._batch = None
        return StepResult(reward=reward, new_tx=self.new_tx.copy(), sent_bits=sent)

    def run(self, policy, n_slots: int) -> dict[str, float]:
        """Drive ``policy`` for ``n_slots`` slots; returns :meth:`summary`.

        Rows that handed over are reset in the policy first (a new cell is a new context).
        """
        for _ in range(n_slots):
            batch = self.observe()
            if batch.attached is not None and batch.attached.any():
                policy.reset(batch.rows[batch.attached])
            self.step(policy.act(batch))
        return self.summary()

    def pop_credits(self) -> Credit:
        """The ``harq`` credits of blocks that finished since the last call (see reward.py)."""
        out = Credit.concat(self._credits)
        self._credits = []
        return out

    def summary(self) -> dict[str, float]:
        """Scalar KPIs so far (see :mod:`linkadapt.sim.kpi`)."""
        return self.kpi.summary(self.cfg.slot_seconds, self.cfg.scs_khz * 1e3, self.large.cell)

    @property
    def report_cell(self) -> np.ndarray:
        """int64 ``[n]`` serving cell of each UE, as its reports name it (changes on handover).

        A fresh array whenever the large scale is recomputed, so earlier batches keep theirs.
        """
        return self.large.cell

    @property
    def cqi(self) -> np.ndarray:
        """int16 ``[n]`` the latest CQI each UE's report brought to the gNB."""
        return self.csi.cqi

    @property
    def ri(self) -> np.ndarray:
        """int16 ``[n]`` the latest rank indicator (the layers of the next transmission)."""
        return self.csi.ri

    # ------------------------------------------------------------------ internals
    def _wideband_sinr_lin(self) -> np.ndarray:
        """Large-scale SINR (linear) of this slot: trace, or signal / (noise + interference)."""
        if self.trace is not None:
            t_s = self.trace_offset_s + self.t * self.cfg.slot_seconds
            sinr_db, speed = self.trace.at(t_s)
            if self.t % int(round(1.0 / self.cfg.slot_seconds)) == 0:
                rho = channel.fading_correlation(speed, self.cfg)
                self.fading.rho[:, 0] = rho
                self.fading.innov[:, 0] = np.sqrt(1.0 - rho**2)
                self.speed_kmh = speed
            return np.power(10.0, sinr_db / 10.0)
        ls = self.large
        active = self.interferers.step()
        interference = (ls.strong_interf_mw * active).sum(
            axis=1
        ) + self.cfg.interference_load * ls.background_interf_mw
        return ls.signal_mw / (ls.noise_mw + interference)

    def _deliver_feedback(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HARQ feedback due this slot: (harq_ack, harq_mcs, harq_tx_index) per UE."""
        column = self.t % self.feedback_ring
        due = self.feedback_due[:, column]
        harq_ack = np.full(self.n, -1, np.int8)
        harq_mcs = np.zeros(self.n, np.int16)
        harq_tx = np.full(self.n, -1, np.int16)
        ue = np.flatnonzero(due >= 0)
        if ue.size:
            proc = due[ue].astype(np.int64)
            due[ue] = -1
            ok = self.p_ok[ue, proc]
            ntx = self.p_ntx[ue, proc]
            harq_ack[ue] = ok
            harq_mcs[ue] = self.p_mcs[ue, proc]
            harq_tx[ue] = ntx - 1
            payload = self.p_payload[ue, proc]
            self.kpi.delivered_bits[ue] += (payload * ok).astype(np.int64)
            last = ntx >= self.cfg.max_transmissions
            finished = ok | last
            self.kpi.tb_done[ue] += finished
            self.kpi.tb_lost[ue] += ~ok & last
            self.p_state[ue, proc] = np.where(finished, IDLE, NEEDS_RETX)
            if self.reward.kind == "harq" and finished.any():
                f_ue, f_proc = ue[finished], proc[finished]
                self._credits.append(
                    Credit(
                        f_ue,
                        self.p_decision[f_ue, f_proc],
                        harq_credit(
                            self.reward,
                            payload[finished],
                            ok[finished],
                            ntx[finished],
                            self.p_max_bits[f_ue, f_proc],
                        ),
                    )
                )
        return harq_ack, harq_mcs, harq_tx

    def _schedule(self) -> None:
        """Pick up to ``ues_per_slot`` UEs per serving cell; split the cell's PRBs among them.

        Per cell, the eligible UEs (a retransmission due, or a free process and data) are
        ranked by the scheduler's metric: proportional fair (CQI rate / average rate) or
        round robin (longest since last scheduled).
        """
        cfg = self.cfg
        needs = self.p_state == NEEDS_RETX
        has_retx = needs.any(axis=1)
        self.retx_proc = needs.argmax(axis=1)  # lowest-numbered process awaiting retransmission
        idle = self.p_state == IDLE
        self.idle_proc = idle.argmax(axis=1)
        eligible = has_retx | (idle.any(axis=1) & (self.buffer_bits > 0))
        cell = self.large.cell
        if cfg.scheduler == "pf":
            se = nr.cqi_spectral_efficiency(cfg.mcs_table)[self.cqi] * self.ri
            metric = (se + 1e-3) / (self.avg_rate + 1.0)
        else:
            metric = (self.t - self.last_served).astype(np.float64) + self.rows / (10.0 * self.n)
        metric = np.where(eligible, metric, -np.inf)
        # top-k per cell on a [cells, width] grid of the cells' UEs (O(n), no sort per slot)
        grid = np.where(self._cell_grid >= 0, metric[self._cell_grid], -np.inf)
        k = min(cfg.ues_per_slot, grid.shape[1])
        top = (
            np.argpartition(-grid, k - 1, axis=1)[:, :k]
            if k < grid.shape[1]
            else np.broadcast_to(np.arange(grid.shape[1]), grid.shape)
        )
        picked = np.take_along_axis(grid, top, axis=1)
        chosen = np.take_along_axis(self._cell_grid, top, axis=1)[np.isfinite(picked)]
        scheduled = np.zeros(self.n, bool)
        scheduled[chosen] = True
        self.last_served[chosen] = self.t
        n_sched = np.maximum(np.bincount(cell[chosen], minlength=cfg.n_cells), 1)
        share = np.maximum(cfg.n_prb // n_sched, 1)
        self.alloc_prb = share[cell].astype(np.int32)
        self.retx = scheduled & has_retx
        self.new_tx = scheduled & ~has_retx

    def _index_cells(self) -> None:
        """``_cell_grid [cells, width]``: the UEs of each serving cell (−1 padding)."""
        cell = self.large.cell
        order = np.argsort(cell, kind="stable")
        counts = np.bincount(cell, minlength=self.cfg.n_cells)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        width = max(int(counts.max(initial=0)), 1)
        grid = np.full((self.cfg.n_cells, width), -1, np.int64)
        grid[cell[order], np.arange(order.size) - start[cell[order]]] = order
        self._cell_grid = grid

    def _tbler(
        self,
        acc_lin: np.ndarray,
        mcs: np.ndarray,
        rank: np.ndarray,
        prb: np.ndarray,
        ue: np.ndarray,
    ) -> np.ndarray:
        """TBLER of blocks with combined per-subband SINR ``acc_lin [k, S]`` (EESM at decode)."""
        eff_db = bler.effective_sinr_db(10.0 * np.log10(acc_lin), self.betas[mcs])
        cb = bler.code_block_bler(
            eff_db,
            mcs,
            table=self.cfg.mcs_table,
            cb_bits=self.k_cb[mcs, rank, prb],
            offset_db=self.bler_offset[ue],
        )
        return bler.transport_block_bler(cb, self.n_cb[mcs, rank, prb])

    def _start_process(self, ue, proc, mcs, payload, ok, prb, rank, max_bits) -> None:
        self.p_state[ue, proc] = WAITING
        self.p_mcs[ue, proc] = mcs
        self.p_payload[ue, proc] = payload
        self.p_ntx[ue, proc] = 1
        self.p_ok[ue, proc] = ok
        self._expect_feedback(ue, proc)
        self.p_prb[ue, proc] = prb
        self.p_rank[ue, proc] = rank
        self.p_max_bits[ue, proc] = max_bits
        self.p_decision[ue, proc] = self.decisions[ue]
        self.decisions[ue] += 1

    def _expect_feedback(self, ue: np.ndarray, proc: np.ndarray) -> None:
        self.feedback_due[ue, (self.t + self.harq_delay[ue]) % self.feedback_ring] = proc

    def _hand_over(self, ue: np.ndarray) -> None:
        """Restart the context of UEs ``ue`` in their new cell (see module doc)."""
        busy = self.p_state[ue] != IDLE  # [k, h]
        if self.reward.kind == "harq" and busy.any():
            k, proc = np.nonzero(busy)
            self._credits.append(
                Credit(ue[k], self.p_decision[ue[k], proc], np.zeros(k.size, np.float32))
            )
        self.buffer_bits[ue] += np.where(busy, self.p_payload[ue], 0.0).sum(axis=1)
        self.p_state[ue] = IDLE
        self.feedback_due[ue] = -1
        self.csi.forget(ue)
        self.history.reset(ue)
        self.attached[ue] = True
        self.handovers[ue] += 1
        self._index_cells()

    def _buffer_bytes(self) -> np.ndarray:
        """Reported buffer: bytes queued for bursty UEs, −1 (unknown) for full buffer."""
        finite = np.where(self.bursty, self.buffer_bits, 0.0)
        return np.where(self.bursty, np.floor(finite / 8.0), -1).astype(np.int64)

    def _arrivals(self) -> None:
        """Bursty traffic: Poisson packet arrivals with exponential sizes (drawn for all UEs)."""
        cfg = self.cfg
        packets = self.chan_rng.poisson(cfg.packets_per_slot, self.n)
        sizes = self.chan_rng.exponential(cfg.packet_bytes * 8.0, self.n)
        self.buffer_bits += np.where(self.bursty, packets * sizes, 0.0)
