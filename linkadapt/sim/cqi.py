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
from linkadapt.sim import channel
from linkadapt.sim.scenario import ScenarioConfig

CQI_EESM_MCS = 14  # the UE's CQI measurement uses the EESM β of a mid-range MCS


class CqiReporting:
    """Periodic CQI/RI reports of ``period`` [n], landing ``delay`` [n] slots late.

    :meth:`step` is called once per slot, t = 0, 1, 2, ...
    """

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
        meas = np.flatnonzero(self.next_measurement <= t)
        if meas.size:
            self.next_measurement[meas] = t + self.period[meas]
            # how many UEs measure depends on the slot only, so the stream stays paired
            noise = self.rng.standard_normal(meas.size) * cfg.cqi_noise_db
            measured = sinr_sb_lin[meas] * np.power(10.0, noise / 10.0).astype(np.float32)[:, None]
            wideband_db = 10.0 * np.log10(np.mean(measured, axis=1))
            ri = channel.best_rank(wideband_db, cfg.max_rank, cfg.n_tx, cfg.evm_sinr_db)
            layer = channel.layer_sinr_lin(measured, ri, cfg.n_tx, cfg.evm_sinr_db)
            eff = bler.effective_sinr_db(10.0 * np.log10(layer), self.beta)
            slot = (t + self.delay[meas]) % self.ring
            self.ring_cqi[slot, meas] = link_map.cqi_from_sinr(eff, cqi_table=cfg.mcs_table)
            self.ring_ri[slot, meas] = ri
            self.ring_measured[slot, meas] = t
        landing = self.ring_measured[t % self.ring]  # a view: cleared below
        ue = np.flatnonzero(landing >= 0)
        if ue.size:
            self.cqi[ue] = self.ring_cqi[t % self.ring, ue]
            self.ri[ue] = self.ring_ri[t % self.ring, ue]
            self.measured[ue] = landing[ue]
            landing[ue] = -1

    def age(self, t: int) -> np.ndarray:
        """int32 ``[n]`` slots since the landed report was measured (−1: none yet)."""
        return np.where(self.measured >= 0, t - self.measured, -1).astype(np.int32)

    def forget(self, ue: np.ndarray) -> None:
        """Drop the landed and in-flight reports of ``ue`` (a handover: new cell)."""
        self.ring_measured[:, ue] = -1
        self.measured[ue] = -1
