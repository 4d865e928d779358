"""CSI reporting: periodic CQI/RI measurement, quantization and delayed arrival at the gNB.

Per UE (TS 38.214 §5.2.2.1, periodic reporting): every ``period`` slots (random phase) the
UE measures its per-subband SINR with a Gaussian error of ``cqi_noise_db``, picks the rank
maximizing r·log2(1 + SINR_layer(r)) (EVM cap included), and reports the CQI whose 10 %
BLER point its EESM effective SINR reaches (CQI table 5.2.2.1-2/-3). The report reaches the
gNB ``delay`` slots later; until then the gNB keeps using the previous one.

State per UE: the latest landed (``cqi``, ``ri``, ``measured`` slot), the slot of its next
measurement, and the reports in flight in an arrival ring: ``ring_*[slot % R, ue]`` with
R = the largest delay + 1 holds the report that lands in ``slot`` (with a fixed delay per
UE and one measurement per slot, at most one report of a UE lands in any slot, and it
lands before the ring comes round). Landing reads one ring row, O(n), instead of
searching every report in flight.
"""

from __future__ import annotations

import numpy as np

from linkadapt import bler, link_map
from linkadapt.sim import channel, rng
from linkadapt.sim.jit import kernel
from linkadapt.sim.scenario import ScenarioConfig

CQI_EESM_MCS = 14  # the UE's CQI measurement uses the EESM β of a mid-range MCS


class CqiReporting:
    """Periodic CQI/RI reports of ``period`` [n], landing ``delay`` [n] slots late.

    :meth:`step` is called once per slot, t = 0, 1, 2, ...; one kernel
    (:func:`_csi_step`) measures the UEs due (in row order, one N(0, 1) error each from
    the ``seed`` stream: how many depends on the slot only, so paired runs stay paired)
    and lands the reports due.
    """

    def __init__(
        self,
        cfg: ScenarioConfig,
        period: np.ndarray,
        phase: np.ndarray,
        delay: np.ndarray,
        seed: np.random.SeedSequence,
    ) -> None:
        n = period.shape[0]
        self.cfg, self.period, self.phase, self.delay = cfg, period, phase, delay
        self.state = rng.new_state(seed)  # measurement errors
        self.beta = float(bler.eesm_beta(np.array([CQI_EESM_MCS]), table=cfg.mcs_table)[0])
        # the measurement kernel's constants (module doc; channel.best_rank, LayerSinr)
        ranks = np.arange(1, cfg.max_rank + 1)
        gain_db = channel.layer_sinr_gain_db(ranks, cfg.n_tx)
        self._rank_gain = np.concatenate([[1.0], np.power(10.0, gain_db / 10.0)])
        self._inv_evm = 10.0 ** (-cfg.evm_sinr_db / 10.0)
        self.layer = channel.LayerSinr(cfg.n_tx, cfg.evm_sinr_db)
        self._cqi_thresholds = np.asarray(link_map.cqi_thresholds_db(cfg.mcs_table), np.float64)
        self.ring = int(max(cfg.cqi_delay_slots[1], int(np.max(delay, initial=0)))) + 1
        self.ring_cqi = np.zeros((self.ring, n), np.int16)
        self.ring_ri = np.ones((self.ring, n), np.int16)
        self.ring_measured = np.full((self.ring, n), -1, np.int64)  # −1: nothing lands
        # first t ≥ 0 with (t − phase) % period == 0
        self.next_measurement = np.mod(phase, period).astype(np.int64)
        self.cqi = np.zeros(n, np.int16)  # latest landed report
        self.ri = np.ones(n, np.int16)
        self.measured = np.full(n, -1, np.int64)  # slot it was measured (−1: none yet)

    def step(self, t: int, sinr_sb_lin: np.ndarray) -> None:
        """Measure where due (channel SINR ``[n, S]`` of slot ``t``) and land due reports."""
        cfg = self.cfg
        _csi_step(
            t, sinr_sb_lin, self.next_measurement, self.period, self.delay, self.state,
            float(cfg.cqi_noise_db), cfg.max_rank, self._rank_gain, self._inv_evm,
            self.layer.gain_by_rank, self.layer.inv_evm, self.beta, self._cqi_thresholds,
            self.ring_cqi, self.ring_ri, self.ring_measured, self.cqi, self.ri, self.measured,
        )  # fmt: skip

    def age(self, t: int) -> np.ndarray:
        """int32 ``[n]`` slots since the landed report was measured (−1: none yet)."""
        return np.where(self.measured >= 0, t - self.measured, -1).astype(np.int32)

    def forget(self, ue: np.ndarray) -> None:
        """Drop the landed and in-flight reports of ``ue`` (a handover: new cell)."""
        self.ring_measured[:, ue] = -1
        self.measured[ue] = -1


@kernel
def _csi_step(
    t: int,
    sinr_sb: np.ndarray,
    next_measurement: np.ndarray,
    period: np.ndarray,
    delay: np.ndarray,
    state: np.ndarray,
    noise_std_db: float,
    max_rank: int,
    rank_gain: np.ndarray,
    inv_evm: float,
    gain_by_rank: np.ndarray,
    inv_evm32: np.float32,
    beta: float,
    cqi_thresholds: np.ndarray,
    ring_cqi: np.ndarray,
    ring_ri: np.ndarray,
    ring_measured: np.ndarray,
    cqi: np.ndarray,
    ri: np.ndarray,
    measured: np.ndarray,
) -> None:
    """One slot of :class:`CqiReporting`: measure (:func:`_report`) into the ring row of
    the arrival slot, then land the ring row of slot ``t``."""
    ring = ring_measured.shape[0]
    buffers = np.empty((2, sinr_sb.shape[1]))
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for u in range(next_measurement.shape[0]):
        if next_measurement[u] > t:
            continue
        next_measurement[u] = t + period[u]
        z, s0, s1, s2, s3 = rng.normal(s0, s1, s2, s3)
        row = (t + delay[u]) % ring
        ring_cqi[row, u], ring_ri[row, u] = _report(
            sinr_sb[u], z * noise_std_db, max_rank, rank_gain, inv_evm, gain_by_rank,
            inv_evm32, beta, cqi_thresholds, buffers,
        )  # fmt: skip
        ring_measured[row, u] = t
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    row = t % ring
    for u in range(ring_measured.shape[1]):
        if ring_measured[row, u] >= 0:
            cqi[u] = ring_cqi[row, u]
            ri[u] = ring_ri[row, u]
            measured[u] = ring_measured[row, u]
            ring_measured[row, u] = -1


@kernel
def _measure(
    meas: np.ndarray,
    noise_db: np.ndarray,
    sinr_sb: np.ndarray,
    max_rank: int,
    rank_gain: np.ndarray,
    inv_evm: float,
    gain_by_rank: np.ndarray,
    inv_evm32: np.float32,
    beta: float,
    cqi_thresholds: np.ndarray,
    slot: np.ndarray,
    ring_cqi: np.ndarray,
    ring_ri: np.ndarray,
) -> None:
    """:func:`_report` of UEs ``meas`` with the errors ``noise_db``, into
    ``ring_*[slot[i], meas[i]]`` (what :func:`_csi_step` does for the UEs due)."""
    buffers = np.empty((2, sinr_sb.shape[1]))
    for i in range(meas.shape[0]):
        u = meas[i]
        ring_cqi[slot[i], u], ring_ri[slot[i], u] = _report(
            sinr_sb[u], noise_db[i], max_rank, rank_gain, inv_evm, gain_by_rank, inv_evm32,
            beta, cqi_thresholds, buffers,
        )  # fmt: skip


@kernel
def _report(
    sinr: np.ndarray,
    noise_db: float,
    max_rank: int,
    rank_gain: np.ndarray,
    inv_evm: float,
    gain_by_rank: np.ndarray,
    inv_evm32: np.float32,
    beta: float,
    cqi_thresholds: np.ndarray,
    buffers: np.ndarray,
) -> tuple[int, int]:
    """``(cqi, rank)`` of one UE whose channel SINR is ``sinr [S]``: the SINR measured
    with an error of ``noise_db`` dB; the rank maximizing r·log2(1 + SINR_layer(r))
    on the wideband mean (:func:`channel.best_rank`), compared as (1 + SINR_layer)^r,
    which orders the same without a logarithm; the CQI whose threshold the EESM effective
    SINR of that rank's layer SINRs reaches (:func:`link_map.cqi_from_sinr`; the CQI
    thresholds increase). The numpy version went through dB and back between steps; the
    kernel stays linear, which moves the effective SINR by ~1e-7 relative (a CQI differs
    only within ~1e-6 dB of a threshold: the tests bound it). ``buffers`` is float64
    ``[2, S]`` scratch."""
    n_sub = sinr.shape[0]
    one32 = np.float32(1.0)
    measured = buffers[0]
    layer = buffers[1]
    factor = np.float32(10.0 ** (noise_db / 10.0))
    total = np.float32(0.0)
    for k in range(n_sub):
        value = sinr[k] * factor
        measured[k] = value
        total += value
    wideband = np.float64(total / np.float32(n_sub))
    rank = 1
    best = -1.0
    for r in range(1, max_rank + 1):
        per_layer = 1.0 / (1.0 / (wideband * rank_gain[r]) + inv_evm)
        capacity = 1.0  # (1 + SINR)^r = 2^(r·log2(1 + SINR)): the same order
        for _ in range(r):
            capacity *= 1.0 + per_layer
        if capacity > best:  # the first maximum, as argmax
            best = capacity
            rank = r
    gain = gain_by_rank[rank]
    floor = np.inf
    for k in range(n_sub):
        layer[k] = one32 / (one32 / (np.float32(measured[k]) * gain) + inv_evm32)
        floor = min(floor, layer[k])
    mean = 0.0
    for k in range(n_sub):
        mean += np.exp(-(layer[k] - floor) / beta)
    eff = floor - beta * np.log(mean / n_sub)
    eff_db = 10.0 * np.log10(max(eff, 1e-12))
    cqi = cqi_thresholds.shape[0] - 1
    while cqi > 0 and cqi_thresholds[cqi] > eff_db:
        cqi -= 1
    return cqi, rank
