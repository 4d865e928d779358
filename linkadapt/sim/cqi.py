"""CSI reporting: periodic CQI/RI measurement, quantization and delayed arrival at the gNB.

Per UE (TS 38.214 §5.2.2.1, periodic reporting): every ``period`` slots (random phase) the
UE measures its per-subband SINR with a Gaussian error of ``cqi_noise_db``, picks the rank
maximizing r·log2(1 + SINR_layer(r)) (EVM cap included), and reports the CQI whose 10 %
BLER point its EESM effective SINR reaches (CQI table 5.2.2.1-2/-3). The report reaches the
gNB ``delay`` slots later; until then the gNB keeps using the previous one.

State per UE: the latest landed (``cqi``, ``ri``, ``measured`` slot) and a small queue of
reports in flight.
"""

from __future__ import annotations

import numpy as np

from linkadapt import bler, link_map
from linkadapt.sim import channel
from linkadapt.sim.scenario import ScenarioConfig

CQI_EESM_MCS = 14  # the UE's CQI measurement uses the EESM β of a mid-range MCS


class CqiReporting:
    """Periodic CQI/RI reports of ``period`` [n], landing ``delay`` [n] slots late."""

    def __init__(
        self,
        cfg: ScenarioConfig,
        period: np.ndarray,
        phase: np.ndarray,
        delay: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        n = period.shape[0]
        self.cfg, self.period, self.phase, self.delay, self.rng = cfg, period, phase, delay, rng
        self.beta = float(bler.eesm_beta(np.array([CQI_EESM_MCS]), table=cfg.mcs_table)[0])
        queue = int(np.ceil(cfg.cqi_delay_slots[1] / cfg.cqi_period_slots[0])) + 1
        self.pending_cqi = np.zeros((n, queue), np.int16)
        self.pending_ri = np.ones((n, queue), np.int16)
        self.pending_measured = np.full((n, queue), -1, np.int64)
        self.pending_arrival = np.full((n, queue), -1, np.int64)
        self.pending_count = np.zeros(n, np.int64)
        self._next_arrival = 0
        self.cqi = np.zeros(n, np.int16)  # latest landed report
        self.ri = np.ones(n, np.int16)
        self.measured = np.full(n, -1, np.int64)  # slot it was measured (−1: none yet)

    def step(self, t: int, sinr_sb_lin: np.ndarray) -> None:
        """Measure where due (channel SINR ``[n, S]`` of slot ``t``) and land due reports."""
        cfg = self.cfg
        meas = np.flatnonzero((t - self.phase) % self.period == 0)
        if meas.size:
            # how many UEs measure depends on the slot only, so the stream stays paired
            noise = self.rng.standard_normal(meas.size) * cfg.cqi_noise_db
            measured = sinr_sb_lin[meas] * np.power(10.0, noise / 10.0).astype(np.float32)[:, None]
            wideband_db = 10.0 * np.log10(np.mean(measured, axis=1))
            ri = channel.best_rank(wideband_db, cfg.max_rank, cfg.n_tx, cfg.evm_sinr_db)
            layer = channel.layer_sinr_lin(measured, ri, cfg.n_tx, cfg.evm_sinr_db)
            eff = bler.effective_sinr_db(10.0 * np.log10(layer), self.beta)
            slot = self.pending_count[meas] % self.pending_cqi.shape[1]
            self.pending_cqi[meas, slot] = link_map.cqi_from_sinr(eff, cqi_table=cfg.mcs_table)
            self.pending_ri[meas, slot] = ri
            self.pending_measured[meas, slot] = t
            self.pending_arrival[meas, slot] = t + self.delay[meas]
            self.pending_count[meas] += 1
            self._next_arrival = min(
                self._next_arrival, int(self.pending_arrival[meas, slot].min())
            )
        if t < self._next_arrival:
            return
        due = self.pending_arrival == t
        ue = np.flatnonzero(due.any(axis=1))
        future = self.pending_arrival[self.pending_arrival > t]
        self._next_arrival = int(future.min()) if future.size else t + 1
        if ue.size:
            slot = due[ue].argmax(axis=1)
            self.cqi[ue] = self.pending_cqi[ue, slot]
            self.ri[ue] = self.pending_ri[ue, slot]
            self.measured[ue] = self.pending_measured[ue, slot]

    def age(self, t: int) -> np.ndarray:
        """int32 ``[n]`` slots since the landed report was measured (−1: none yet)."""
        return np.where(self.measured >= 0, t - self.measured, -1).astype(np.int32)

    def forget(self, ue: np.ndarray) -> None:
        """Drop the landed and in-flight reports of ``ue`` (a handover: new cell)."""
        self.pending_arrival[ue] = -1
        self.measured[ue] = -1
