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
from linkadapt.sim.scenario import ScenarioConfig

PF_AVERAGING = 0.02  # proportional-fair throughput EWMA factor per slot


class Scheduler:
    """Per-cell top-k scheduling of ``n`` UEs, vectorized over cells (no sort per slot).

    Parameters
    ----------
    cfg : ScenarioConfig
        The drop's scenario (``scheduler``, ``ues_per_slot``, ``n_cells``, ``n_prb``,
        ``mcs_table``).
    cell : int64 ``[n]``
        Serving cell of each UE (re-index with :meth:`index_cells` after handovers).
    """

    def __init__(self, cfg: ScenarioConfig, cell: np.ndarray) -> None:
        n = int(cell.shape[0])
        self.cfg = cfg
        self.rows = np.arange(n, dtype=np.int64)
        self.avg_rate = np.full(n, 1.0)  # PF: EWMA of bits sent per slot
        self.last_served = np.full(n, -1, np.int64)  # RR: slot last scheduled
        self.index_cells(cell)

    def index_cells(self, cell: np.ndarray) -> None:
        """Rebuild ``cell_grid`` int64 ``[cells, width]``: the UEs of each serving cell
        (−1 padding), from the serving cell of each UE ``cell [n]``."""
        n_cells = self.cfg.n_cells
        order = np.argsort(cell, kind="stable")
        counts = np.bincount(cell, minlength=n_cells)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        width = max(int(counts.max(initial=0)), 1)
        grid = np.full((n_cells, width), -1, np.int64)
        grid[cell[order], np.arange(order.size) - start[cell[order]]] = order
        self.cell_grid = grid

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
            Serving cell of each UE (as indexed by :meth:`index_cells`).

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
        if cfg.scheduler == "pf":
            se = nr.cqi_spectral_efficiency(cfg.mcs_table)[cqi] * ri
            metric = (se + 1e-3) / (self.avg_rate + 1.0)
        else:
            metric = (t - self.last_served).astype(np.float64) + self.rows / (10.0 * n)
        metric = np.where(eligible, metric, -np.inf)
        # top-k per cell on the [cells, width] grid of the cells' UEs: O(n) argpartition
        grid = np.where(self.cell_grid >= 0, metric[self.cell_grid], -np.inf)
        k = min(cfg.ues_per_slot, grid.shape[1])
        top = (
            np.argpartition(-grid, k - 1, axis=1)[:, :k]
            if k < grid.shape[1]
            else np.broadcast_to(np.arange(grid.shape[1]), grid.shape)
        )
        picked = np.take_along_axis(grid, top, axis=1)
        chosen = np.take_along_axis(self.cell_grid, top, axis=1)[np.isfinite(picked)]
        scheduled = np.zeros(n, bool)
        scheduled[chosen] = True
        self.last_served[chosen] = t
        n_sched = np.maximum(np.bincount(cell[chosen], minlength=cfg.n_cells), 1)
        share = np.maximum(cfg.n_prb // n_sched, 1)
        return scheduled, share[cell].astype(np.int32)

    def served(self, sent_bits: np.ndarray) -> None:
        """Fold the bits each UE was sent this slot (``[n]``, 0 if none) into R̄."""
        self.avg_rate *= 1.0 - PF_AVERAGING
        self.avg_rate += PF_AVERAGING * sent_bits
