"""Link abstraction: code-block and transport-block BLER from effective SINR.

Model (calibrated in :mod:`linkadapt.sim.bler_calibration` against Sionna's AWGN LDPC
tables; parameters in ``data/bler_params.json``). For spectral efficiency SE = Qm·R/1024
and code-block size K bits:

    SNR_10(SE, K) = 10·log10(2^SE − 1) + a + b·SE + p·log10(2000 / K) + offset_db
    σ(K)          = w / √K                                       (dB)
    BLER_CB       = Φ((SNR_10 − 1.2816·σ − SINR_eff) / σ)

so BLER_CB = 10 % exactly at SNR_10, falls monotonically with SINR, and the waterfall is
steeper for longer blocks. ``offset_db`` shifts every threshold: the simulator's domain
randomization draws it (published tables disagree by a few dB).

Transport block: TBLER = 1 − (1 − BLER_CB)^C, the C code blocks of TS 38.212 §5.2.2
decoding independently. Effective SINR over subbands: EESM,
SINR_eff = −β·ln(mean_i exp(−SINR_i/β)) (K. Brueninghaus et al., "Link performance models
for system level simulations of broadband radio access systems", IEEE PIMRC 2005), with
Sionna's β per MCS. HARQ chase combining is the simulator's (:mod:`linkadapt.sim.harq`):
the linear per-subband SINRs of the transmissions add before EESM.

Every function broadcasts its array arguments like a ufunc; SINRs and offsets are in dB,
block sizes in bits, spectral efficiency in bit/s/Hz per layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from statistics import NormalDist

import numpy as np

from linkadapt import nr

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _ndtr_stdlib(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF Φ(x) = erfc(−x/√2)/2 (standard library, elementwise)."""
    # frompyfunc returns Python floats (an object array, or one float for a 0-d input)
    return np.asarray(0.5 * _erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)), np.float64)


@cache
def _ndtr() -> Callable[[np.ndarray], np.ndarray]:
    """Φ from scipy when installed (the simulator's hot path), else the standard library.

    Resolved on first use so that importing this module (the xApp does, for cached
    thresholds) never loads scipy.
    """
    try:
        from scipy.special import ndtr
    except ImportError:  # pragma: no cover - exercised by the serving-image test
        return _ndtr_stdlib
    return ndtr


Z_10 = 1.2815515655446004  # Φ⁻¹(0.9): 10 % BLER sits 1.28 σ above the 50 % point
MIN_CB_BITS, MAX_CB_BITS = 24, 8448


@cache
def _params(table: int) -> tuple[float, float, float, float]:
    """(a, b, p, w) of MCS table ``table`` from ``data/bler_params.json`` (module doc)."""
    raw = json.loads(resources.files("linkadapt.data").joinpath("bler_params.json").read_text())
    t = raw["tables"][str(table)]
    return (
        t["gap_db_intercept"],
        t["gap_db_per_se"],
        t["penalty_db_per_decade"],
        t["width_db_sqrt_bits"],
    )


@cache
def _eesm_betas(table: int) -> np.ndarray:
    """float64 ``[n_mcs]`` EESM β of MCS table ``table`` (``data/eesm_beta_table.json``)."""
    raw = json.loads(resources.files("linkadapt.data").joinpath("eesm_beta_table.json").read_text())
    return np.asarray(raw["index"][str(table)], dtype=np.float64)


def waterfall_parameters(table: int) -> tuple[float, float, float, float]:
    """``(a, b, p, w)`` of MCS table ``table``: SNR_10 = 10·log10(2^SE − 1) + a + b·SE +
    p·log10(2000 / K) + offset_db and σ = w / √K (module doc), for code that evaluates
    the model itself (the simulator's compiled TBLER)."""
    return _params(table)


def _waterfall(
    se: np.ndarray | float, cb_bits: np.ndarray | float, table: int, offset_db: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """(SNR_10 in dB, σ in dB) for spectral efficiency ``se`` and block size ``cb_bits``."""
    a, b, p, w = _params(table)
    k = np.clip(np.asarray(cb_bits, dtype=np.float64), MIN_CB_BITS, MAX_CB_BITS)
    se = np.asarray(se, dtype=np.float64)
    snr10 = (
        10.0 * np.log10(np.power(2.0, se) - 1.0) + a + b * se + p * np.log10(2000.0 / k) + offset_db
    )
    return snr10, w / np.sqrt(k)


def bler_at_se(
    sinr_db: np.ndarray | float,
    se: np.ndarray | float,
    *,
    table: int = 2,
    cb_bits: np.ndarray | float = MAX_CB_BITS,
    offset_db: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Code-block BLER of a code of spectral efficiency ``se`` at effective SINR ``sinr_db``.

        BLER_CB = Φ((SNR_10(SE, K) − 1.2816·σ(K) − SINR_eff) / σ(K))      (module doc)

    Input
    -----
    sinr_db : float, any shape
        Effective SINR (dB).
    se : float, any shape
        Spectral efficiency Qm·R/1024 (bit/s/Hz per layer).
    table : int
        MCS table (1 or 2) whose fitted parameters apply.
    cb_bits : float, any shape
        Code-block size K' (bits), clipped to [24, 8448] (default 8448, the longest).
    offset_db : float, any shape
        Threshold shift (dB); > 0 means the decoder needs more SINR.

    Output
    ------
    bler : float64, the broadcast shape
        In [0, 1], decreasing in ``sinr_db``.
    """
    snr10, sigma = _waterfall(se, cb_bits, table, offset_db)
    return _ndtr()((snr10 - Z_10 * sigma - np.asarray(sinr_db)) / sigma)


def code_block_bler(
    sinr_db: np.ndarray | float,
    mcs: np.ndarray | int,
    *,
    table: int = 2,
    cb_bits: np.ndarray | float = MAX_CB_BITS,
    offset_db: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Code-block BLER of MCS ``mcs`` at effective SINR ``sinr_db`` (dB).

    :func:`bler_at_se` at SE = Qm·R/1024 of MCS ``mcs`` of TS 38.214 Table 5.1.3.1-1
    (``table=1``) or 5.1.3.1-2 (``table=2``); ``mcs`` int, any shape, broadcasting with
    the other arguments. Output: float64 in [0, 1].
    """
    se = nr.spectral_efficiency(table)[np.asarray(mcs)]
    return bler_at_se(sinr_db, se, table=table, cb_bits=cb_bits, offset_db=offset_db)


def sinr_threshold_db(
    se: np.ndarray | float,
    *,
    bler_target: float = 0.1,
    table: int = 2,
    cb_bits: np.ndarray | float = MAX_CB_BITS,
    offset_db: np.ndarray | float = 0.0,
) -> np.ndarray:
    """SINR (dB) at which a code block of spectral efficiency ``se`` has ``bler_target``.

    The inverse of :func:`bler_at_se` in the SINR:
    SNR_10(SE, K) − 1.2816·σ(K) − Φ⁻¹(BLER_t)·σ(K). Same arguments (``bler_target`` in
    (0, 1)); float64 of the broadcast shape.
    """
    snr10, sigma = _waterfall(se, cb_bits, table, offset_db)
    return snr10 - Z_10 * sigma - NormalDist().inv_cdf(bler_target) * sigma


def mcs_thresholds_db(
    *, table: int = 2, bler_target: float = 0.1, cb_bits: float = MAX_CB_BITS
) -> np.ndarray:
    """float64 ``[n_mcs]``: SINR (dB) at which each MCS of ``table`` reaches ``bler_target``
    (code blocks of ``cb_bits``, no offset). Increasing for table 2; table 1 prints MCS 17
    below MCS 16 (TS 38.214 Table 5.1.3.1-1), so its thresholds dip there."""
    return sinr_threshold_db(
        nr.spectral_efficiency(table), bler_target=bler_target, table=table, cb_bits=cb_bits
    )


def transport_block_bler(cb_bler: np.ndarray, n_code_blocks: np.ndarray | int) -> np.ndarray:
    """Transport-block error rate TBLER = 1 − (1 − BLER_CB)^C.

    The TB fails its CRC if any of its C code blocks (TS 38.212 §5.2.2) fails; blocks
    fail independently. ``cb_bler`` float and ``n_code_blocks`` int broadcast together;
    float64 out.
    """
    return 1.0 - np.power(1.0 - np.asarray(cb_bler), np.asarray(n_code_blocks))


def eesm_beta(mcs: np.ndarray | int, *, table: int = 2) -> np.ndarray:
    """EESM β of MCS ``mcs`` (int, any shape) of ``table``: float64, same shape.

    Sionna's calibration (``data/eesm_beta_table.json``, attribution in
    ``data/NOTICE.md``).
    """
    return _eesm_betas(table)[np.asarray(mcs)]


def effective_sinr_db(sinr_db: np.ndarray, beta: np.ndarray | float, axis: int = -1) -> np.ndarray:
    """Exponential effective SINR mapping (EESM) over ``axis``.

        SINR_eff = −β·ln((1/S)·Σ_i exp(−SINR_i / β))        (linear SINRs, S terms)

    Input
    -----
    sinr_db : float ``[..., S, ...]``
        SINR (dB) of the S resources (subbands) along ``axis``.
    beta : float
        EESM β (linear), broadcasting against ``sinr_db`` with ``axis`` removed (e.g.
        ``[k]`` for ``sinr_db [k, S]``, or ``[1, n_mcs]`` for ``[n, 1, S]``).
    axis : int
        The axis to compress (default the last).

    Output
    ------
    sinr_eff_db : float64, ``sinr_db``'s shape without ``axis``
        Effective SINR (dB), floored at −120 dB; computed relative to the weakest
        resource, so exp() cannot underflow at high SINR.
    """
    lin = np.power(10.0, np.asarray(sinr_db, dtype=np.float64) / 10.0)
    beta = np.expand_dims(np.asarray(beta, dtype=np.float64), axis)
    # factor out the weakest subband so exp() cannot underflow to 0 at high SINR
    floor = np.min(lin, axis=axis, keepdims=True)
    eff = floor - beta * np.log(np.mean(np.exp(-(lin - floor) / beta), axis=axis, keepdims=True))
    return 10.0 * np.log10(np.maximum(np.squeeze(eff, axis), 1e-12))
