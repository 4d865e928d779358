"""KPI accumulation per UE and per cell, and the summary the CLI and evaluations report.

- throughput (Mbit/s): delivered bits / simulated time, per UE (mean over UEs) and per cell;
- first-transmission BLER: NACKed first transmissions / first transmissions;
- residual BLER: transport blocks lost after the last HARQ transmission / finished TBs;
- spectral efficiency (bit/s/Hz): delivered bits / (allocated PRB-slots · 12 · SCS · T_slot),
  i.e. over the resources actually used, so retransmissions cost efficiency;
- MCS histogram of new transmissions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class KpiAccumulator:
    """Running per-UE counters of one simulation (arrays of shape ``[n_ues]``)."""

    delivered_bits: np.ndarray
    first_tx: np.ndarray
    first_tx_nack: np.ndarray
    tb_done: np.ndarray
    tb_lost: np.ndarray
    transmissions: np.ndarray
    prb_slots: np.ndarray
    mcs_hist: np.ndarray  # [n_mcs] new transmissions per MCS
    slots: int = 0

    @classmethod
    def zeros(cls, n_ues: int, n_mcs: int) -> KpiAccumulator:
        z = lambda: np.zeros(n_ues, np.int64)  # noqa: E731
        return cls(z(), z(), z(), z(), z(), z(), z(), np.zeros(n_mcs, np.int64))

    def summary(self, slot_seconds: float, scs_hz: float, cell: np.ndarray) -> dict[str, float]:
        """Scalar KPIs of the run (means over UEs; cell throughput summed per cell)."""
        seconds = max(self.slots, 1) * slot_seconds
        ue_tput = self.delivered_bits / seconds / 1e6
        cell_tput = np.bincount(cell, weights=ue_tput)
        hertz_seconds = self.prb_slots.sum() * 12 * scs_hz * slot_seconds
        return {
            "throughput_mbps": float(ue_tput.mean()),
            "cell_throughput_mbps": float(cell_tput.mean()),
            "bler": _ratio(self.first_tx_nack.sum(), self.first_tx.sum()),
            "residual_bler": _ratio(self.tb_lost.sum(), self.tb_done.sum()),
            "spectral_efficiency": _ratio(self.delivered_bits.sum(), hertz_seconds),
            "mean_mcs": _ratio(float(np.arange(self.mcs_hist.size) @ self.mcs_hist),
                               self.mcs_hist.sum()),
        }


    def per_ue(self, slot_seconds: float) -> dict[str, np.ndarray]:
        """Per-UE KPI arrays ``[n_ues]``: throughput (Mbit/s), first-tx and residual BLER."""
        seconds = max(self.slots, 1) * slot_seconds
        return {
            "throughput_mbps": self.delivered_bits / seconds / 1e6,
            "bler": _ratios(self.first_tx_nack, self.first_tx),
            "residual_bler": _ratios(self.tb_lost, self.tb_done),
        }

    def per_cell(self, slot_seconds: float, cell: np.ndarray) -> dict[str, np.ndarray]:
        """Per-cell KPI arrays ``[n_cells]``: summed throughput, pooled BLERs."""
        seconds = max(self.slots, 1) * slot_seconds

        def pooled(values: np.ndarray) -> np.ndarray:
            return np.bincount(cell, weights=values)

        return {
            "throughput_mbps": pooled(self.delivered_bits) / seconds / 1e6,
            "bler": _ratios(pooled(self.first_tx_nack), pooled(self.first_tx)),
            "residual_bler": _ratios(pooled(self.tb_lost), pooled(self.tb_done)),
        }


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(den)), where=np.asarray(den) > 0)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0
