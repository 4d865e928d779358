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

import math

import numpy as np

from linkadapt import bler, nr
from linkadapt.sim.jit import kernel
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
        # per MCS, the part of SNR_10 that depends on the MCS only (bler._waterfall's
        # left-to-right sum up to b·SE)
        a, b, self._penalty, self._width = bler.waterfall_parameters(cfg.mcs_table)
        se = np.asarray(nr.spectral_efficiency(cfg.mcs_table), np.float64)
        self._snr10_base = 10.0 * np.log10(np.power(2.0, se) - 1.0) + a + b * se

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
        out = np.empty(len(ue))
        _tbler(
            sinr_lin, mcs, rank, prb, ue, self.betas, self._snr10_base, self._penalty,
            self._width, self.k_cb, self.n_cb, self.bler_offset_db, out,
        )  # fmt: skip
        return out


@kernel
def _tbler(
    sinr: np.ndarray,
    mcs: np.ndarray,
    rank: np.ndarray,
    prb: np.ndarray,
    ue: np.ndarray,
    betas: np.ndarray,
    snr10_base: np.ndarray,
    penalty: float,
    width: float,
    k_cb: np.ndarray,
    n_cb: np.ndarray,
    offset_db: np.ndarray,
    out: np.ndarray,
) -> None:
    """The module doc's TBLER per attempt: EESM of the linear SINRs (relative to the
    weakest subband, as :func:`linkadapt.bler.effective_sinr_db`), the code-block
    waterfall Φ((SNR_10 − 1.2816·σ − SINR_eff) / σ) with Φ(x) = erfc(−x/√2)/2, and
    1 − (1 − BLER_CB)^C. The numpy functions took the SINRs through float32 dB and back;
    the kernel stays linear, so the two agree to ~1e-5 absolute (tests)."""
    n_sub = sinr.shape[1]
    for i in range(sinr.shape[0]):
        m, r, p = mcs[i], rank[i], prb[i]
        beta = betas[m]
        floor = np.inf
        for k in range(n_sub):
            floor = min(floor, np.float64(sinr[i, k]))
        total = 0.0
        for k in range(n_sub):
            total += np.exp(-(np.float64(sinr[i, k]) - floor) / beta)
        eff_db = 10.0 * np.log10(max(floor - beta * np.log(total / n_sub), 1e-12))
        cb_bits = min(max(np.float64(k_cb[m, r, p]), bler.MIN_CB_BITS), bler.MAX_CB_BITS)
        snr10 = snr10_base[m] + penalty * np.log10(2000.0 / cb_bits) + offset_db[ue[i]]
        sigma = width / np.sqrt(cb_bits)
        cb = 0.5 * math.erfc(-((snr10 - bler.Z_10 * sigma - eff_db) / sigma) / math.sqrt(2.0))
        out[i] = 1.0 - (1.0 - cb) ** n_cb[m, r, p]
