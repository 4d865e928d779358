"""Time-domain MAC scheduler of the simulator: which UEs of each cell transmit in a slot.

Per serving cell and slot, up to ``ues_per_slot`` eligible UEs are picked by the
scheduler's metric, and the cell's ``n_prb`` PRBs are split equally among them
(⌊n_prb / k⌋ each, at least 1):

- proportional fair (``pf``): (SE_CQI·RI + 10⁻³) / (R̄ + 1), with SE_CQI the spectral
  efficiency of the UE's latest CQI (TS 38.214 Table 5.2.2.1-2/-3), RI its rank and R̄ an
  EWMA of the new-transmission bits it was sent per slot, R̄ ← (1 − α)·R̄ + α·bits with
  α = :data:`PF_AVERAGING` (the +10⁻³ and +1 keep CQI 0 and R̄ = 0 finite);
- round robin (``rr``): slots since the UE was last scheduled (ties broken by row).

A UE is eligible when a HARQ retransmission is due or it has a free process and data.
"""

from __future__ import annotations

import numpy as np

from linkadapt import nr
from linkadapt.sim.jit import kernel
from linkadapt.sim.scenario import ScenarioConfig

PF_AVERAGING = 0.02  # proportional-fair throughput EWMA factor per slot


class Scheduler:
    """Per-cell top-k scheduling of ``n`` UEs in one pass over the UEs (:func:`_schedule`).

    Among equal metrics the lower row goes first.

    Parameters
    ----------
    cfg : ScenarioConfig
        The drop's scenario (``scheduler``, ``ues_per_slot``, ``n_cells``, ``n_prb``,
        ``mcs_table``).
    n_ues : int
        UEs (rows of every array).
    """

    def __init__(self, cfg: ScenarioConfig, n_ues: int) -> None:
        n = int(n_ues)
        self.cfg = cfg
        self.rows = np.arange(n, dtype=np.int64)
        self.avg_rate = np.full(n, 1.0)  # PF: EWMA of bits sent per slot
        self.last_served = np.full(n, -1, np.int64)  # RR: slot last scheduled
        self.se_by_cqi = np.asarray(nr.cqi_spectral_efficiency(cfg.mcs_table), np.float64)

    def schedule(
        self, t: int, eligible: np.ndarray, cqi: np.ndarray, ri: np.ndarray, cell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pick the UEs that transmit in slot ``t``.

        Input
        -----
        t : int
            The slot.
        eligible : bool ``[n]``
            UEs with a retransmission due, or a free HARQ process and data.
        cqi, ri : int16 ``[n]``
            Latest CQI and rank indicator at the gNB (the PF metric).
        cell : int64 ``[n]``
            Serving cell of each UE.

        Output
        ------
        scheduled : bool ``[n]``
            At most ``ues_per_slot`` per cell.
        n_prb : int32 ``[n]``
            PRBs each UE would get: its cell's PRBs split equally among the cell's
            scheduled UEs (all PRBs where none is scheduled).
        """
        cfg = self.cfg
        n = self.rows.shape[0]
        scheduled = np.zeros(n, bool)
        n_prb = np.empty(n, np.int32)
        _schedule(
            t, cfg.scheduler == "pf", eligible, cqi, ri, cell, self.se_by_cqi, self.avg_rate,
            self.last_served, cfg.n_cells, cfg.ues_per_slot, cfg.n_prb, scheduled, n_prb,
        )  # fmt: skip
        return scheduled, n_prb

    def served(self, sent_bits: np.ndarray) -> None:
        """Fold the bits each UE was sent this slot (``[n]``, 0 if none) into R̄."""
        self.avg_rate *= 1.0 - PF_AVERAGING
        self.avg_rate += PF_AVERAGING * sent_bits


@kernel
def _schedule(
    t: int,
    proportional_fair: bool,
    eligible: np.ndarray,
    cqi: np.ndarray,
    ri: np.ndarray,
    cell: np.ndarray,
    se_by_cqi: np.ndarray,
    avg_rate: np.ndarray,
    last_served: np.ndarray,
    n_cells: int,
    per_cell: int,
    cell_prb: int,
    scheduled: np.ndarray,
    n_prb: np.ndarray,
) -> None:
    """The module doc's metric for each eligible UE, the ``per_cell`` largest per cell
    kept in a sorted list per cell (insertion: k is small), then the PRB split."""
    n = eligible.shape[0]
    best = np.full((n_cells, per_cell), -np.inf)
    best_row = np.full((n_cells, per_cell), -1, np.int64)
    for u in range(n):
        if not eligible[u]:
            continue
        if proportional_fair:
            metric = (se_by_cqi[cqi[u]] * ri[u] + 1e-3) / (avg_rate[u] + 1.0)
        else:
            metric = float(t - last_served[u]) + u / (10.0 * n)
        c = cell[u]
        if metric <= best[c, per_cell - 1]:
            continue  # ties keep the earlier (lower) row
        i = per_cell - 1
        while i > 0 and best[c, i - 1] < metric:
            best[c, i] = best[c, i - 1]
            best_row[c, i] = best_row[c, i - 1]
            i -= 1
        best[c, i] = metric
        best_row[c, i] = u
    share = np.empty(n_cells, np.int32)
    for c in range(n_cells):
        count = 0
        for i in range(per_cell):
            u = best_row[c, i]
            if u >= 0:
                scheduled[u] = True
                last_served[u] = t
                count += 1
        share[c] = max(cell_prb // max(count, 1), 1)
    for u in range(n):
        n_prb[u] = share[cell[u]]
