"""The vectorized link-level simulator: N UEs in M cells, one slot per call, no loop over UEs.

Per slot ``t`` (see docs/simulator.md):

1. :meth:`Simulator.observe` advances fading and interference, delivers HARQ feedback
   that is due (ACK → bits delivered; NACK → retransmission or, after the last
   transmission, a residual loss), lands CQI/RI reports that are due, schedules UEs
   (round-robin or proportional-fair, PRBs split equally), and returns the
   :class:`~linkadapt.policy.DecisionBatch` with the raw reports and their observation.
2. :meth:`Simulator.step` applies the policy's MCS to the UEs starting a new transport
   block (``new_tx``), sends due retransmissions with their original MCS (chase combining:
   effective SINRs add), draws decoding outcomes from the BLER abstraction, and returns
   the per-UE reward.

Reward (for RL): bits delivered by a new transmission's *first* attempt, divided by the
bits MCS 27 would carry on the same allocation, so it lies in [0, 1] whatever the
bandwidth or rank; 0 for UEs without a new transmission. This is the quantity the genie
maximizes in expectation.

Random numbers are drawn for every UE every slot from streams independent of the
decisions, so two policies run with the same seed see the same channel (paired runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkadapt import bler, link_map, nr
from linkadapt.features import FeatureHistory, privileged_features
from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch
from linkadapt.sim import channel
from linkadapt.sim.kpi import KpiAccumulator
from linkadapt.sim.scenario import ScenarioConfig, load_scenario
from linkadapt.sim.trace import load_trace

CQI_EESM_MCS = 14  # the UE's CQI measurement uses the EESM β of a mid-range MCS
PF_AVERAGING = 0.02  # proportional-fair throughput EWMA factor per slot
IDLE, WAITING, NEEDS_RETX = 0, 1, 2


@dataclass(frozen=True)
class StepResult:
    """Outcome of one slot; arrays are ``[n_ues]``."""

    reward: np.ndarray  # float32, normalized first-attempt delivered bits (see module doc)
    new_tx: np.ndarray  # bool, a new transport block was sent with the policy's MCS
    sent_bits: np.ndarray  # int64, payload bits of new transmissions


class Simulator:
    """Link-adaptation simulator for ``n_ues`` UEs; reproducible from (scenario, seed)."""

    def __init__(self, scenario: str | ScenarioConfig, n_ues: int, seed: int = 0, *,
                 privileged: bool = False) -> None:
        self.base = load_scenario(scenario)
        self.n = int(n_ues)
        self.privileged = privileged
        self.rows = np.arange(self.n, dtype=np.int64)
        self._seed_seq = np.random.SeedSequence(seed)
        self.trace = (load_trace(self.base.trace, self.base.trace_columns)
                      if self.base.trace else None)
        self.drop()

    # ------------------------------------------------------------------ drop / reset
    def drop(self) -> None:
        """Start a new drop: new deployment (if randomized), positions, UE parameters."""
        drop_seq, chan_seq, dec_seq = self._seed_seq.spawn(3)
        rng = np.random.default_rng(drop_seq)
        self.chan_rng = np.random.default_rng(chan_seq)
        self.dec_rng = np.random.default_rng(dec_seq)
        cfg = self.cfg = self.base.sample(rng)
        n = self.n
        self.t = 0
        self.large = channel.drop_ues(cfg, n, rng)
        self.speed_kmh = rng.uniform(*cfg.speed_kmh, n)
        self.trace_offset_s = None
        if self.trace is not None:
            self.trace_offset_s = rng.uniform(0.0, max(self.trace.duration_s, 1.0), n)
            _, self.speed_kmh = self.trace.at(self.trace_offset_s)
        self.fading = channel.RayleighFading(
            channel.fading_correlation(self.speed_kmh, cfg), cfg.subbands, self.chan_rng)
        self.interferers = channel.InterferenceActivity(n, cfg.interference_load, self.chan_rng)
        self.cqi_period = rng.integers(cfg.cqi_period_slots[0], cfg.cqi_period_slots[1] + 1, n)
        self.cqi_phase = rng.integers(0, self.cqi_period)
        self.cqi_delay = rng.integers(cfg.cqi_delay_slots[0], cfg.cqi_delay_slots[1] + 1, n)
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
        queue = int(np.ceil(cfg.cqi_delay_slots[1] / cfg.cqi_period_slots[0])) + 1
        self.pending_cqi = np.zeros((n, queue), np.int16)
        self.pending_ri = np.ones((n, queue), np.int16)
        self.pending_measured = np.full((n, queue), -1, np.int64)
        self.pending_arrival = np.full((n, queue), -1, np.int64)
        self.pending_count = np.zeros(n, np.int64)
        self._next_cqi_arrival = 0
        self.cqi = np.zeros(n, np.int16)
        self.ri = np.ones(n, np.int16)
        self.cqi_measured = np.full(n, -1, np.int64)
        self.p_state = np.zeros((n, h), np.int8)
        self.p_mcs = np.zeros((n, h), np.int16)
        self.p_payload = np.zeros((n, h), np.float64)
        self.p_ntx = np.zeros((n, h), np.int16)
        self.p_acc = np.zeros((n, h), np.float64)
        self.p_ok = np.zeros((n, h), bool)
        # feedback_due[ue, slot % R]: the HARQ process whose ACK/NACK lands in that slot
        # (−1: none). One transmission per UE per slot and a fixed per-UE delay make this a
        # ring, so delivering feedback is O(n) instead of a scan of every process.
        self.feedback_ring = int(cfg.harq_delay_slots[1]) + 1
        self.feedback_due = np.full((n, self.feedback_ring), -1, np.int16)
        self.p_prb = np.ones((n, h), np.int32)
        self.p_rank = np.ones((n, h), np.int16)
        self.avg_rate = np.full(n, 1.0)
        self.rr_pointer = 0
        self.tbs, self.n_cb, self.k_cb = nr.tbs_lookup(cfg.mcs_table, cfg.n_symbols,
                                                       cfg.n_dmrs_re)
        self.betas = bler.eesm_beta(np.arange(nr.n_mcs(cfg.mcs_table)), table=cfg.mcs_table)
        self.kpi = KpiAccumulator.zeros(self.n, nr.n_mcs(cfg.mcs_table))
        ranks = np.arange(1, 9)
        self.layer_gain_db = np.concatenate([[0.0], channel.layer_sinr_gain_db(ranks, cfg.n_tx)])
        self.diversity_by_rank = np.concatenate(
            [[1.0], channel.diversity_order(ranks, cfg.n_tx, cfg.ue_rx_antennas)])
        self.report_cell = self.large.cell.astype(np.int64)
        self.report_symbols = np.full(self.n, cfg.n_symbols, np.int16)
        self.history = FeatureHistory(self.n, mcs_table=cfg.mcs_table)
        self._batch: DecisionBatch | None = None

    # ------------------------------------------------------------------ one slot
    def observe(self) -> DecisionBatch:
        """Advance the channel to slot ``t`` and return the decision batch (all UEs)."""
        cfg = self.cfg
        gain = channel.diversity_gain(self.fading.step(), self.diversity_by_rank[self.ri])
        sinr_lin = self._wideband_sinr_lin().astype(np.float32)[:, None] * gain  # [n, S]
        self._sinr_sb_db = np.float32(10.0) * np.log10(np.maximum(sinr_lin, np.float32(1e-12)))
        harq_ack, harq_mcs = self._deliver_feedback()
        self._measure_and_land_cqi()
        self._schedule()
        rank = self.ri
        reports = ReportBatch(
            cell_id=self.report_cell,
            ue_id=self.rows,
            cqi=self.cqi,
            cqi_age_slots=np.where(self.cqi_measured >= 0, self.t - self.cqi_measured, -1)
            .astype(np.int32),
            harq_ack=harq_ack,
            harq_mcs=harq_mcs,
            rank=rank,
            n_prb=self.alloc_prb,
            n_symbols=self.report_symbols,
            buffer_bytes=self._buffer_bytes(),
        )
        self.history.update(None, reports)  # None: all rows in order, the fast path
        obs = self.history.encode(None)
        layer_gain = self.layer_gain_db[rank].astype(np.float32)
        layer_db = self._sinr_sb_db + layer_gain[:, None]
        if self.privileged:
            eff = bler.effective_sinr_db(layer_db, self.betas[CQI_EESM_MCS])
            doppler = channel.doppler_hz(self.speed_kmh, cfg)
            obs = np.concatenate([obs, privileged_features(eff, doppler)], axis=1)
        self._layer_db = layer_db
        self._batch = DecisionBatch(obs=obs, reports=reports, rows=self.rows,
                                    true_sinr_db=layer_db, new_tx=self.new_tx,
                                    bler_offset_db=self.bler_offset,
                                    n_dmrs_re=cfg.n_dmrs_re)
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
            eff = self._eff_sinr_lin(new, m)
            ok = decode_u[new] >= self._tbler(eff, m, rank, prb, new)
            self._start_process(new, proc, m, payload, eff, ok, prb, rank)
            max_bits = self.tbs[n_mcs - 1, rank, prb]
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
            self.p_acc[re, proc] += self._eff_sinr_lin(re, m, rank)
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
        """Drive ``policy`` for ``n_slots`` slots; returns :meth:`summary`."""
        for _ in range(n_slots):
            self.step(policy.act(self.observe()))
        return self.summary()

    def summary(self) -> dict[str, float]:
        """Scalar KPIs so far (see :mod:`linkadapt.sim.kpi`)."""
        return self.kpi.summary(self.cfg.slot_seconds, self.cfg.scs_khz * 1e3, self.large.cell)

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
            return self._with_evm(np.power(10.0, sinr_db / 10.0))
        ls = self.large
        active = self.interferers.step()
        interference = ((ls.strong_interf_mw * active).sum(axis=1)
                        + self.cfg.interference_load * ls.background_interf_mw)
        return self._with_evm(ls.signal_mw / (ls.noise_mw + interference))

    def _with_evm(self, sinr_lin: np.ndarray) -> np.ndarray:
        """Impairments cap the SINR: 1/SINR = 1/SINR_channel + 1/SINR_EVM."""
        evm = 10.0 ** (self.cfg.evm_sinr_db / 10.0)
        return 1.0 / (1.0 / sinr_lin + 1.0 / evm)

    def _deliver_feedback(self) -> tuple[np.ndarray, np.ndarray]:
        column = self.t % self.feedback_ring
        due = self.feedback_due[:, column]
        harq_ack = np.full(self.n, -1, np.int8)
        harq_mcs = np.zeros(self.n, np.int16)
        ue = np.flatnonzero(due >= 0)
        if ue.size:
            proc = due[ue].astype(np.int64)
            due[ue] = -1
            ok = self.p_ok[ue, proc]
            harq_ack[ue] = ok
            harq_mcs[ue] = self.p_mcs[ue, proc]
            self.kpi.delivered_bits[ue] += (self.p_payload[ue, proc] * ok).astype(np.int64)
            last = self.p_ntx[ue, proc] >= self.cfg.max_transmissions
            finished = ok | last
            self.kpi.tb_done[ue] += finished
            self.kpi.tb_lost[ue] += ~ok & last
            self.p_state[ue, proc] = np.where(finished, IDLE, NEEDS_RETX)
        return harq_ack, harq_mcs

    def _measure_and_land_cqi(self) -> None:
        cfg, t = self.cfg, self.t
        meas = np.flatnonzero((t - self.cqi_phase) % self.cqi_period == 0)
        if meas.size:
            # how many UEs measure depends on the slot only, so the stream stays paired
            noise = self.chan_rng.standard_normal(meas.size) * cfg.cqi_noise_db
            wideband_db = 10.0 * np.log10(np.mean(np.power(10.0, self._sinr_sb_db[meas] / 10.0),
                                                  axis=1)) + noise
            ri = channel.best_rank(wideband_db, cfg.max_rank, cfg.n_tx)
            layer_db = (self._sinr_sb_db[meas] + noise[:, None]
                        + channel.layer_sinr_gain_db(ri, cfg.n_tx)[:, None])
            eff = bler.effective_sinr_db(layer_db, self.betas[CQI_EESM_MCS])
            slot = self.pending_count[meas] % self.pending_cqi.shape[1]
            self.pending_cqi[meas, slot] = link_map.cqi_from_sinr(eff, cqi_table=cfg.mcs_table)
            self.pending_ri[meas, slot] = ri
            self.pending_measured[meas, slot] = t
            self.pending_arrival[meas, slot] = t + self.cqi_delay[meas]
            self.pending_count[meas] += 1
            self._next_cqi_arrival = min(self._next_cqi_arrival,
                                         int(self.pending_arrival[meas, slot].min()))
        if t < self._next_cqi_arrival:
            return
        due = self.pending_arrival == t
        ue = np.flatnonzero(due.any(axis=1))
        future = self.pending_arrival[self.pending_arrival > t]
        self._next_cqi_arrival = int(future.min()) if future.size else t + 1
        if ue.size:
            slot = due[ue].argmax(axis=1)
            self.cqi[ue] = self.pending_cqi[ue, slot]
            self.ri[ue] = self.pending_ri[ue, slot]
            self.cqi_measured[ue] = self.pending_measured[ue, slot]

    def _schedule(self) -> None:
        """Pick up to ``ues_per_slot`` UEs per cell; split the cell's PRBs among them."""
        cfg = self.cfg
        needs = self.p_state == NEEDS_RETX
        has_retx = needs.any(axis=1)
        self.retx_proc = needs.argmax(axis=1)  # lowest-numbered process awaiting retransmission
        idle = self.p_state == IDLE
        self.idle_proc = idle.argmax(axis=1)
        eligible = has_retx | (idle.any(axis=1) & (self.buffer_bits > 0))
        m = cfg.n_cells
        within = self.rows // m  # UE i is the (i // M)-th UE of cell i % M
        per_cell = np.bincount(self.large.cell, minlength=m)
        if cfg.scheduler == "pf":
            se = nr.cqi_spectral_efficiency(cfg.mcs_table)[self.cqi] * self.ri
            metric = (se + 1e-3) / (self.avg_rate + 1.0)
        else:
            metric = -((within - self.rr_pointer) % per_cell[self.large.cell]).astype(float)
        metric = np.where(eligible, metric, -np.inf)
        k = min(cfg.ues_per_slot, int(per_cell.max()))
        rows_per_cell = int(np.ceil(self.n / m))
        padded = np.full(rows_per_cell * m, -np.inf)
        padded[: self.n] = metric
        grid = padded.reshape(rows_per_cell, m)
        top = np.argpartition(-grid, k - 1, axis=0)[:k] if k < rows_per_cell else \
            np.broadcast_to(np.arange(rows_per_cell)[:, None], (rows_per_cell, m))
        chosen = (top * m + np.arange(m)[None, :]).ravel()
        chosen = chosen[chosen < self.n]
        scheduled = np.zeros(self.n, bool)
        scheduled[chosen] = np.isfinite(metric[chosen])
        n_sched = np.maximum(np.bincount(self.large.cell[scheduled], minlength=m), 1)
        share = np.maximum(cfg.n_prb // np.minimum(n_sched, k), 1)
        self.alloc_prb = share[self.large.cell].astype(np.int32)
        self.retx = scheduled & has_retx
        self.new_tx = scheduled & ~has_retx
        self.rr_pointer += k

    def _eff_sinr_lin(self, ue: np.ndarray, mcs: np.ndarray,
                      rank: np.ndarray | None = None) -> np.ndarray:
        """EESM effective SINR (linear) of UEs ``ue`` at their MCS's β."""
        layer_db = self._layer_db[ue]
        if rank is not None:  # a retransmission keeps the layers it was first sent with
            gain = channel.layer_sinr_gain_db(rank, self.cfg.n_tx) - \
                channel.layer_sinr_gain_db(self.ri[ue], self.cfg.n_tx)
            layer_db = layer_db + gain[:, None]
        eff_db = bler.effective_sinr_db(layer_db, self.betas[mcs])
        return np.power(10.0, eff_db / 10.0)

    def _tbler(self, eff_lin: np.ndarray, mcs: np.ndarray, rank: np.ndarray,
               prb: np.ndarray, ue: np.ndarray) -> np.ndarray:
        cb = bler.code_block_bler(10.0 * np.log10(eff_lin), mcs, table=self.cfg.mcs_table,
                                  cb_bits=self.k_cb[mcs, rank, prb],
                                  offset_db=self.bler_offset[ue])
        return bler.transport_block_bler(cb, self.n_cb[mcs, rank, prb])

    def _start_process(self, ue, proc, mcs, payload, eff, ok, prb, rank) -> None:
        self.p_state[ue, proc] = WAITING
        self.p_mcs[ue, proc] = mcs
        self.p_payload[ue, proc] = payload
        self.p_ntx[ue, proc] = 1
        self.p_acc[ue, proc] = eff
        self.p_ok[ue, proc] = ok
        self._expect_feedback(ue, proc)
        self.p_prb[ue, proc] = prb
        self.p_rank[ue, proc] = rank

    def _expect_feedback(self, ue: np.ndarray, proc: np.ndarray) -> None:
        self.feedback_due[ue, (self.t + self.harq_delay[ue]) % self.feedback_ring] = proc

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
