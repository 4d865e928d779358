"""PHY abstraction of the simulator: the size of a transport block and its decoding probability.

For a transport block of MCS m (TS 38.214 Table 5.1.3.1-1/-2) on n_PRB PRBs and ν layers:

- TBS(m, ν, n_PRB) per TS 38.214 §5.1.3.2 and its segmentation into C code blocks of K'
  bits per TS 38.212 §5.2.2, precomputed for the slot format (:func:`linkadapt.nr.tbs_lookup`);
- the effective SINR of the per-subband, per-layer linear SINRs S_i (chase-combined over
  the block's transmissions), EESM with the MCS's β (:func:`linkadapt.bler.effective_sinr_db`):

      SINR_eff = −β·ln((1/S)·Σ_i exp(−S_i / β))

- TBLER = 1 − (1 − BLER_CB(SINR_eff, K'))^C with BLER_CB the calibrated code-block model
  shifted by the UE's threshold offset (:mod:`linkadapt.bler`).
"""

from __future__ import annotations

import numpy as np

from linkadapt import bler, nr
from linkadapt.sim.scenario import ScenarioConfig


class PhyAbstraction:
    """TBS tables and TBLER of one drop's slot format.

    Parameters
    ----------
    cfg : ScenarioConfig
        The drop's scenario (``mcs_table``, ``n_symbols``, ``n_dmrs_re``).
    bler_offset_db : float64 ``[n]``
        Each UE's BLER-threshold offset (dB, > 0: the UE decodes worse than its CQI says).

    Attributes: ``tbs``, ``n_cb``, ``k_cb`` int64 ``[n_mcs, 9, 276]`` (TBS bits, code
    blocks C, bits per code block K', indexed ``[mcs, layers, PRBs]``) and ``betas``
    float64 ``[n_mcs]`` (EESM β per MCS).
    """

    def __init__(self, cfg: ScenarioConfig, bler_offset_db: np.ndarray) -> None:
        self.mcs_table = cfg.mcs_table
        self.tbs, self.n_cb, self.k_cb = nr.tbs_lookup(cfg.mcs_table, cfg.n_symbols, cfg.n_dmrs_re)
        self.betas = bler.eesm_beta(np.arange(nr.n_mcs(cfg.mcs_table)), table=cfg.mcs_table)
        self.bler_offset_db = bler_offset_db

    @property
    def n_mcs(self) -> int:
        return int(self.tbs.shape[0])

    def tbler(
        self,
        sinr_lin: np.ndarray,
        mcs: np.ndarray,
        rank: np.ndarray,
        prb: np.ndarray,
        ue: np.ndarray,
    ) -> np.ndarray:
        """Transport-block error probability of ``k`` decoding attempts.

        Input
        -----
        sinr_lin : float32 ``[k, subbands]``
            Per-layer linear SINR per subband, summed over the block's transmissions.
        mcs, rank, prb : int ``[k]``
            The block's MCS index, layers and PRBs (of its first transmission).
        ue : int ``[k]``
            UE rows (select their BLER offsets).

        Output
        ------
        tbler : float64 ``[k]``
            Probability that the transport block fails its CRC.
        """
        eff_db = bler.effective_sinr_db(10.0 * np.log10(sinr_lin), self.betas[mcs])
        cb = bler.code_block_bler(
            eff_db,
            mcs,
            table=self.mcs_table,
            cb_bits=self.k_cb[mcs, rank, prb],
            offset_db=self.bler_offset_db[ue],
        )
        return bler.transport_block_bler(cb, self.n_cb[mcs, rank, prb])
