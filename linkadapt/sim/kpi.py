"""KPI accumulation per UE and per cell, and the summary the CLI and evaluations report.

- throughput (Mbit/s): delivered bits / simulated time, per UE (mean over UEs:
  ``throughput_mbps``) and per cell (``cell_throughput_mbps``, mean over cells);
- cell-edge throughput ``throughput_p5_mbps``: 5th percentile over UEs of the per-UE
  throughput (``np.percentile``, linear interpolation), and ``zero_ue_share``: the share
  of UEs that got no bit delivered. A policy can raise the mean by starving the cell edge;
  these two show it;
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
        """Scalar KPIs of the run: means and percentiles over UEs, cell throughput summed
        per cell then averaged over cells, BLERs and spectral efficiency pooled."""
        ue_tput = self.per_ue(slot_seconds)["throughput_mbps"]
        cell_tput = np.bincount(cell, weights=ue_tput)
        hertz_seconds = self.prb_slots.sum() * 12 * scs_hz * slot_seconds
        return {
            "throughput_mbps": float(ue_tput.mean()),
            "cell_throughput_mbps": float(cell_tput.mean()),
            "throughput_p5_mbps": _p5(ue_tput),
            "zero_ue_share": float(np.mean(self.delivered_bits == 0)),
            "bler": _ratio(self.first_tx_nack.sum(), self.first_tx.sum()),
            "residual_bler": _ratio(self.tb_lost.sum(), self.tb_done.sum()),
            "spectral_efficiency": _ratio(self.delivered_bits.sum(), hertz_seconds),
            "mean_mcs": _ratio(
                float(np.arange(self.mcs_hist.size) @ self.mcs_hist), self.mcs_hist.sum()
            ),
        }

    def per_ue(self, slot_seconds: float) -> dict[str, np.ndarray]:
        """Per-UE KPI arrays ``[n_ues]``: throughput (Mbit/s), first-tx and residual BLER,
        and whether the UE got nothing delivered (``zero``, bool)."""
        seconds = max(self.slots, 1) * slot_seconds
        return {
            "throughput_mbps": self.delivered_bits / seconds / 1e6,
            "bler": _ratios(self.first_tx_nack, self.first_tx),
            "residual_bler": _ratios(self.tb_lost, self.tb_done),
            "zero": self.delivered_bits == 0,
        }


def _p5(values: np.ndarray) -> float:
    """5th percentile (0 for no values)."""
    return float(np.percentile(values, 5)) if len(values) else 0.0


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(den)), where=np.asarray(den) > 0)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0
