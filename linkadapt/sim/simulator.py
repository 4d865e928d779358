"""The vectorized link-level simulator: N UEs in M cells, one slot per call, no loop over UEs.

Per slot, :meth:`Simulator.observe` advances the channel and returns the
:class:`~linkadapt.policy.DecisionBatch` (reports and observation), and
:meth:`Simulator.step` transmits with the policy's MCS and draws the decoding outcomes.
The parts, each in its module (docs/simulator.md has the model and its 3GPP clauses):
geometry, mobility and handover (:mod:`~linkadapt.sim.geometry`), fading, interference and
MIMO layers (:mod:`~linkadapt.sim.channel`), CQI/RI reporting (:mod:`~linkadapt.sim.cqi`),
HARQ processes (:mod:`~linkadapt.sim.harq`), scheduling (:mod:`~linkadapt.sim.scheduler`),
traffic (:mod:`~linkadapt.sim.traffic`), TBS and TBLER (:mod:`~linkadapt.sim.phy`), reward
(:mod:`~linkadapt.sim.reward`) and KPIs (:mod:`~linkadapt.sim.kpi`).

Per-layer SINR of subband i, what a transmission of rank ν sees (linear):

    SINR_i = 1 / (1 / (Γ·g_i·G(ν)) + 1 / SINR_EVM),   G(ν) = (n_tx / ν²)·10^(−(ν − 1)/10)

with Γ the large-scale S / (N + I) (or a drive-test trace's SINR), g_i the fading power
gain (diversity order of the rank), G the per-layer precoding, power-split and
inter-layer gain, and the EVM cap applied after precoding, so a large array cannot lift a
layer above the impairment floor. HARQ chase combining sums these per subband before EESM,
as a receiver does (adding effective SINRs after EESM is 0.8-1 dB optimistic on a
frequency-selective channel).

Handover resets the UE's context as a gNB's MAC reset does: its HARQ processes are
flushed (payload back to the buffer, no loss counted, decisions credited 0), its pending
CQI is dropped, its report history restarts, and ``DecisionBatch.attached`` flags the row
so stateful policies reset it (:meth:`Simulator.run` does).

Random numbers come from streams independent of the decisions (one per process,
docs/simulator.md "Random streams and compiled kernels"), so two policies run with the
same seed see the same channel (paired runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkadapt import bler
from linkadapt.features import FeatureHistory, privileged_features
from linkadapt.policy import DecisionBatch, Policy
from linkadapt.reports import ReportBatch
from linkadapt.sim import channel
from linkadapt.sim.cqi import CQI_EESM_MCS, CqiReporting
from linkadapt.sim.geometry import Geometry
from linkadapt.sim.harq import Feedback, HarqProcesses
from linkadapt.sim.kpi import KpiAccumulator
from linkadapt.sim.phy import PhyAbstraction
from linkadapt.sim.reward import Credit, RewardConfig, harq_credit
from linkadapt.sim.scenario import ScenarioConfig, load_scenario
from linkadapt.sim.scheduler import Scheduler
from linkadapt.sim.trace import load_trace
from linkadapt.sim.traffic import Traffic

LARGE_SCALE_UPDATE_SLOTS = 20  # mobility/shadowing/handover cadence (≤ 0.5 m at 150 km/h)


@dataclass(frozen=True)
class StepResult:
    """Outcome of one slot (:meth:`Simulator.step`); arrays are ``[n_ues]``.

    Attributes:
        reward: float32, the ``first_tx`` reward of each new transmission (all zeros
            with the ``harq`` reward, whose credits come from :meth:`Simulator.pop_credits`).
        new_tx: bool, a new transport block was sent with the policy's MCS.
        sent_bits: int64, payload bits of those new transmissions (0 elsewhere).
    """

    reward: np.ndarray
    new_tx: np.ndarray
    sent_bits: np.ndarray


class Simulator:
    """Downlink link-adaptation simulator of ``n_ues`` UEs; reproducible from (scenario, seed).

    One instance is one run of one policy: :meth:`observe` then :meth:`step` per slot (or
    :meth:`run`), then :meth:`summary`. Two instances with the same scenario and seed see
    the same channel whatever their policies do (paired runs, see the module doc).

    Parameters
    ----------
    scenario : str | ScenarioConfig
        A preset name, a scenario file (.json/.yaml) or a config (:func:`load_scenario`).
    n_ues : int
        Number of UEs; UE ``i`` is row ``i`` of every array.
    seed : int
        Seeds every random stream (:mod:`linkadapt.seeds` says which seeds are for what).
    privileged : bool
        Append the privileged features (true effective SINR, Doppler) to the
        observation, for privileged teachers (:func:`linkadapt.features.privileged_features`).
    reward : RewardConfig | str
        ``"harq"`` (default) or ``"first_tx"``, or a full :class:`RewardConfig`
        (:mod:`linkadapt.sim.reward`).
    """

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

    # ------------------------------------------------------------------ drop
    def drop(self) -> None:
        """Start a new drop: new deployment (if randomized), positions, UE parameters.

        Each drop spawns fresh child streams of the seed (the k-th drop of a seed is the
        same in every run, successive drops differ); KPIs, HARQ processes, CQI reports
        and the report history start empty.
        """
        drop_seq, chan_seq, dec_seq, mob_seq = self._seed_seq.spawn(4)
        # one stream per process, so that none shifts another (docs/simulator.md)
        fading_seq, interference_seq, traffic_seq, csi_seq = chan_seq.spawn(4)
        rng = np.random.default_rng(drop_seq)
        self.dec_rng = np.random.default_rng(dec_seq)
        cfg = self.cfg = self.base.sample(rng)
        n = self.n
        self.t = 0
        self.speed_kmh = rng.uniform(*cfg.speed_kmh, n)
        self.geometry = Geometry(cfg, self.speed_kmh, rng, np.random.default_rng(mob_seq))
        self.large = self.geometry.large_scale()
        self.trace_offset_s: np.ndarray | None = None
        if self.trace is not None:
            self.trace_offset_s = rng.uniform(0.0, max(self.trace.duration_s, 1.0), n)
            _, self.speed_kmh = self.trace.at(self.trace_offset_s)
        self.fading = channel.RayleighFading(
            channel.fading_correlation(self.speed_kmh, cfg), cfg.subbands, fading_seq
        )
        self.interferers = channel.InterferenceActivity(n, cfg.interference_load, interference_seq)
        self._wideband = np.empty(n)  # this slot's large-scale SINR (reused buffer)
        period = rng.integers(cfg.cqi_period_slots[0], cfg.cqi_period_slots[1] + 1, n)
        phase = rng.integers(0, period)
        delay = rng.integers(cfg.cqi_delay_slots[0], cfg.cqi_delay_slots[1] + 1, n)
        self.csi = CqiReporting(cfg, period, phase, delay, csi_seq)
        harq_delay = rng.integers(cfg.harq_delay_slots[0], cfg.harq_delay_slots[1] + 1, n)
        self.bler_offset = rng.uniform(*cfg.bler_offset_db, n)
        bursty = np.zeros(n, bool)
        if cfg.traffic == "bursty":
            bursty[:] = True
        elif cfg.traffic == "mixed":
            bursty = rng.random(n) < 0.5
        self.traffic = Traffic(cfg, bursty, traffic_seq)
        self.harq = HarqProcesses(
            cfg.harq_processes, cfg.subbands, harq_delay, cfg.harq_delay_slots[1]
        )
        self._credits: list[Credit] = []
        self.attached = np.zeros(n, bool)  # context restarted this slot (handover)
        self.phy = PhyAbstraction(cfg, self.bler_offset)
        self.kpi = KpiAccumulator.zeros(n, self.phy.n_mcs)
        ranks = np.arange(1, 9)
        self.diversity_by_rank = np.concatenate(
            [[1.0], channel.diversity_order(ranks, cfg.n_tx, cfg.ue_rx_antennas)]
        )
        # 1/√L per rank, float32 (channel.diversity_gain)
        self.diversity_scale = (1.0 / np.sqrt(self.diversity_by_rank)).astype(np.float32)
        self.handovers = np.zeros(n, np.int64)
        self.scheduler = Scheduler(cfg, n)
        self.layer_sinr = channel.LayerSinr(cfg.n_tx, cfg.evm_sinr_db)
        self.report_symbols = np.full(n, cfg.n_symbols, np.int16)
        self.history = FeatureHistory(n, mcs_table=cfg.mcs_table)
        self._batch: DecisionBatch | None = None

    # ------------------------------------------------------------------ one slot
    def observe(self) -> DecisionBatch:
        """Advance the channel to slot ``t`` and return the decision batch of every UE.

        In order: every ``LARGE_SCALE_UPDATE_SLOTS`` slots UEs move and hand over; fading
        and interference advance; HARQ feedback due this slot lands; CQI/RI reports are
        measured and land; the scheduler picks this slot's transmissions; the reports are
        folded into the feature history (:class:`~linkadapt.features.FeatureHistory`).

        Output
        ------
        batch : DecisionBatch
            ``n = n_ues`` rows: ``obs`` float32 ``[n, OBS_DIM]`` (+ ``PRIVILEGED_DIM``
            with ``privileged``); ``reports`` (:class:`~linkadapt.reports.ReportBatch`);
            ``rows`` int64 ``[n]``; ``true_sinr_db`` float32 ``[n, subbands]``, the
            per-layer SINR (dB) of the module doc at the UE's reported rank; ``new_tx``
            bool ``[n]``, where the policy's MCS will be used (a new transport block; a due
            retransmission reuses its MCS, an unscheduled UE sends nothing);
            ``bler_offset_db`` float64 ``[n]``, each UE's BLER-threshold offset (dB);
            ``attached`` bool ``[n]``, the UEs that handed over (reset their policy state).
        """
        cfg = self.cfg
        self.attached[:] = False
        if self.trace is None and self.t > 0 and self.t % LARGE_SCALE_UPDATE_SLOTS == 0:
            handed = self.geometry.move(
                LARGE_SCALE_UPDATE_SLOTS * cfg.slot_seconds, LARGE_SCALE_UPDATE_SLOTS
            )
            self.large = self.geometry.large_scale()
            if handed.size:
                self._hand_over(handed)
        # per-subband channel SINR Γ·g_i (a buffer the fading reuses every slot)
        self._sinr_sb_lin = self.fading.step(
            self._wideband_sinr_lin(), self.diversity_scale, self.ri
        )
        feedback = self._deliver_feedback()
        self.csi.step(self.t, self._sinr_sb_lin)
        self._schedule()
        rank = self.ri
        reports = ReportBatch(
            cell_id=self.report_cell,
            ue_id=self.rows,
            cqi=self.cqi,
            cqi_age_slots=self.csi.age(self.t),
            harq_ack=feedback.harq_ack,
            harq_mcs=feedback.harq_mcs,
            rank=rank,
            n_prb=self.alloc_prb,
            n_symbols=self.report_symbols,
            buffer_bytes=self.traffic.buffer_bytes(),
            harq_tx_index=feedback.harq_tx_index,
        )
        self.history.update(None, reports)  # None: all rows in order, the fast path
        obs = self.history.encode(None)
        self._layer_lin, layer_db = self.layer_sinr(self._sinr_sb_lin, rank)
        if self.privileged:
            eff = bler.effective_sinr_db(layer_db, self.phy.betas[CQI_EESM_MCS])
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
        """Transmit in slot ``t`` with the policy's MCS, draw the decoding outcomes, advance.

        New transport blocks (``new_tx``) carry P = min(TBS(mcs, ν, n_PRB), buffer) bits
        (TS 38.214 §5.1.3.2); due retransmissions reuse the MCS, PRBs and layers of their
        first transmission and chase-combine. An attempt decodes when a uniform draw is
        ≥ its TBLER (:meth:`~linkadapt.sim.phy.PhyAbstraction.tbler`); one uniform is
        drawn per UE per slot whatever the decisions, so paired runs stay paired.

        Input
        -----
        mcs : int ``[n_ues]``
            MCS index per UE (0 … n_mcs − 1 of the scenario's table, TS 38.214 Table
            5.1.3.1-1/-2); read only where the batch's ``new_tx`` is True.

        Output
        ------
        result : StepResult
            ``reward`` float32 ``[n]`` (``first_tx`` only: P·𝟙[decoded] / B_max),
            ``new_tx`` bool ``[n]``, ``sent_bits`` int64 ``[n]``.

        Raises RuntimeError without a preceding :meth:`observe`, ValueError for an ``mcs``
        of the wrong shape or out of range.
        """
        if self._batch is None:
            raise RuntimeError("call observe() before step()")
        n_mcs, tbs = self.phy.n_mcs, self.phy.tbs
        mcs = np.asarray(mcs)
        if mcs.shape != (self.n,) or mcs.min() < 0 or mcs.max() >= n_mcs:
            raise ValueError(f"mcs must be int [{self.n}] within 0..{n_mcs - 1}")
        decode_u = self.dec_rng.random(self.n)
        reward = np.zeros(self.n, np.float32)
        sent = np.zeros(self.n, np.int64)
        harq = self.harq

        new = np.flatnonzero(self.new_tx)
        if new.size:
            proc = self.idle_proc[new]
            m = mcs[new].astype(np.int16)
            rank, prb = self.ri[new], self.alloc_prb[new]
            tb = tbs[m, rank, prb]
            payload = self.traffic.send(new, tb)
            harq.acc[new, proc] = self._layer_lin[new]
            ok = decode_u[new] >= self.phy.tbler(harq.acc[new, proc], m, rank, prb, new)
            max_bits = tbs[n_mcs - 1, rank, prb]
            harq.start(self.t, new, proc, m, payload, ok, prb, rank, max_bits)
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
            m = harq.mcs[re, proc]
            rank, prb = harq.rank[re, proc], harq.prb[re, proc]
            # a retransmission keeps the layers it was first sent with
            harq.acc[re, proc] += channel.layer_sinr_lin(
                self._sinr_sb_lin[re], rank, self.cfg.n_tx, self.cfg.evm_sinr_db
            )
            ok = decode_u[re] >= self.phy.tbler(harq.acc[re, proc], m, rank, prb, re)
            harq.retransmitted(self.t, re, proc, ok)
            self.kpi.prb_slots[re] += prb

        self.kpi.transmissions[new] += 1
        self.kpi.transmissions[re] += 1
        self.traffic.arrivals()
        self.scheduler.served(sent)
        self.kpi.slots += 1
        self.t += 1
        self._batch = None
        return StepResult(reward=reward, new_tx=self.new_tx.copy(), sent_bits=sent)

    def run(self, policy: Policy, n_slots: int) -> dict[str, float]:
        """Drive ``policy`` for ``n_slots`` slots: :meth:`observe`, ``policy.reset`` of the
        rows that handed over (a new cell is a new context), ``policy.act``, :meth:`step`.

        Input: ``policy`` (:class:`~linkadapt.policy.Policy` built for ``n_ues`` rows) and
        ``n_slots`` (int). Output: :meth:`summary` after the last slot.
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
        """Scalar KPIs of the run so far (:meth:`linkadapt.sim.kpi.KpiAccumulator.summary`).

        Output
        ------
        kpis : dict[str, float]
            ``throughput_mbps`` (mean UE throughput, Mbit/s), ``cell_throughput_mbps``
            (summed per serving cell, averaged over cells), ``throughput_p5_mbps``
            (5th-percentile UE throughput), ``zero_ue_share``, ``bler`` (first-transmission
            BLER), ``residual_bler`` (blocks lost after the last transmission / finished
            blocks), ``spectral_efficiency`` (bit/s/Hz over the PRBs used) and
            ``mean_mcs`` (of new transmissions).
        """
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
        trace, offset_s = self.trace, self.trace_offset_s
        if trace is not None and offset_s is not None:  # both set together by drop()
            sinr_db, speed = trace.at(offset_s + self.t * self.cfg.slot_seconds)
            if self.t % int(round(1.0 / self.cfg.slot_seconds)) == 0:  # once a second
                self.fading.retune(channel.fading_correlation(speed, self.cfg))
                self.speed_kmh = speed
            return np.power(10.0, sinr_db / 10.0)
        ls = self.large
        return self.interferers.wideband_sinr(
            self.t,
            ls.signal_mw,
            ls.strong_interf_mw,
            ls.background_interf_mw,
            ls.noise_mw,
            self._wideband,
        )

    def _deliver_feedback(self) -> Feedback:
        """Land the HARQ feedback due this slot; count delivered and lost blocks, credit
        the decisions of finished blocks (``harq`` reward)."""
        fb = self.harq.collect(self.t, self.cfg.max_transmissions)
        ue, decoded, finished = fb.ue, fb.decoded, fb.finished
        self.kpi.delivered_bits[ue] += (fb.payload * decoded).astype(np.int64)
        self.kpi.tb_done[ue] += finished
        self.kpi.tb_lost[ue] += ~decoded & finished  # NACK of the last transmission
        if self.reward.kind == "harq" and finished.any():
            f_ue, f_proc = ue[finished], fb.proc[finished]
            credit = harq_credit(
                self.reward,
                fb.payload[finished],
                decoded[finished],
                fb.n_tx[finished],
                self.harq.max_bits[f_ue, f_proc],
            )
            self._credits.append(Credit(f_ue, self.harq.decision[f_ue, f_proc], credit))
        return fb

    def _schedule(self) -> None:
        """Pick this slot's transmissions: ``retx`` / ``new_tx`` (bool ``[n]``), the
        process each uses (``retx_proc`` / ``idle_proc``) and ``alloc_prb``."""
        has_retx, self.retx_proc, has_idle, self.idle_proc = self.harq.pending()
        eligible = has_retx | (has_idle & (self.traffic.buffer_bits > 0))
        scheduled, self.alloc_prb = self.scheduler.schedule(
            self.t, eligible, self.cqi, self.ri, self.large.cell
        )
        self.retx = scheduled & has_retx
        self.new_tx = scheduled & ~has_retx

    def _hand_over(self, ue: np.ndarray) -> None:
        """Restart the context of UEs ``ue`` in their new cell (see module doc)."""
        rows, decisions, payload_bits = self.harq.flush(ue)
        if self.reward.kind == "harq" and rows.size:
            self._credits.append(Credit(rows, decisions, np.zeros(rows.size, np.float32)))
        self.traffic.requeue(ue, payload_bits)
        self.csi.forget(ue)
        self.history.reset(ue)
        self.attached[ue] = True
        self.handovers[ue] += 1
