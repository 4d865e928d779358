"""3GPP NR tables and transport-block size (TS 38.214 V17, TS 38.212 V17).

- MCS tables (TS 38.214 §5.1.3.1), CQI tables (§5.2.2.1) and spectral efficiencies;
- the transport block size (TS 38.214 §5.1.3.2), its CRC, LDPC base graph and code-block
  segmentation (TS 38.212 §7.2.1, §7.2.2, §5.2.2);
- :func:`tbs_lookup`, all of it precomputed per slot format for the simulator.

All functions are vectorized over numpy arrays (broadcasting like ufuncs).
Code rates are given as ``R x 1024`` exactly as printed in the spec tables.
"""

from __future__ import annotations

from functools import cache

import numpy as np

# TS 38.214 Table 5.1.3.1-1 (64QAM): (Qm, R x 1024) for MCS 0..28.
MCS_TABLE_1 = np.array(
    [(2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526),
     (2, 602), (2, 679), (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616),
     (4, 658), (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719),
     (6, 772), (6, 822), (6, 873), (6, 910), (6, 948)],
    dtype=np.float64,
)  # fmt: skip

# TS 38.214 Table 5.1.3.1-2 (256QAM): (Qm, R x 1024) for MCS 0..27.
MCS_TABLE_2 = np.array(
    [(2, 120), (2, 193), (2, 308), (2, 449), (2, 602), (4, 378), (4, 434), (4, 490),
     (4, 553), (4, 616), (4, 658), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666),
     (6, 719), (6, 772), (6, 822), (6, 873), (8, 682.5), (8, 711), (8, 754), (8, 797),
     (8, 841), (8, 885), (8, 916.5), (8, 948)],
    dtype=np.float64,
)  # fmt: skip

# TS 38.214 Table 5.2.2.1-2 (CQI table 1, up to 64QAM): (Qm, R x 1024), CQI 0 = out of range.
CQI_TABLE_1 = np.array(
    [(0, 0), (2, 78), (2, 120), (2, 193), (2, 308), (2, 449), (2, 602), (4, 378),
     (4, 490), (4, 616), (6, 466), (6, 567), (6, 666), (6, 772), (6, 873), (6, 948)],
    dtype=np.float64,
)  # fmt: skip

# TS 38.214 Table 5.2.2.1-3 (CQI table 2, up to 256QAM).
CQI_TABLE_2 = np.array(
    [(0, 0), (2, 78), (2, 193), (2, 449), (4, 378), (4, 490), (4, 616), (6, 466),
     (6, 567), (6, 666), (6, 772), (6, 873), (8, 711), (8, 797), (8, 885), (8, 948)],
    dtype=np.float64,
)  # fmt: skip

# TS 38.214 Table 5.1.3.2-1: TBS for N_info <= 3824.
TBS_TABLE = np.array(
    [24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168,
     176, 184, 192, 208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432,
     456, 480, 504, 528, 552, 576, 608, 640, 672, 704, 736, 768, 808, 848, 888, 928, 984,
     1032, 1064, 1128, 1160, 1192, 1224, 1256, 1288, 1320, 1352, 1416, 1480, 1544, 1608,
     1672, 1736, 1800, 1864, 1928, 2024, 2088, 2152, 2216, 2280, 2408, 2472, 2536, 2600,
     2664, 2728, 2792, 2856, 2976, 3104, 3240, 3368, 3496, 3624, 3752, 3824],
    dtype=np.int64,
)  # fmt: skip

MCS_TABLES = {1: MCS_TABLE_1, 2: MCS_TABLE_2}
CQI_TABLES = {1: CQI_TABLE_1, 2: CQI_TABLE_2}
# The CQI table that matches each MCS table (same highest modulation).
CQI_TABLE_FOR_MCS_TABLE = {1: 1, 2: 2}

SUBCARRIERS_PER_PRB = 12
MAX_RE_PER_PRB = 156  # 38.214 5.1.3.2: N_RE per PRB is capped at 156


def mcs_table(table: int) -> np.ndarray:
    """float64 ``[n_mcs, 2]``: (Qm, R x 1024) per MCS of TS 38.214 Table 5.1.3.1-1
    (``table=1``, 64QAM, MCS 0..28) or 5.1.3.1-2 (``table=2``, 256QAM, MCS 0..27);
    ValueError for any other table."""
    try:
        return MCS_TABLES[table]
    except KeyError:
        raise ValueError(f"unknown MCS table {table}; expected 1 or 2") from None


def n_mcs(table: int) -> int:
    """Number of usable MCS indices (29 for table 1, 28 for table 2)."""
    return int(mcs_table(table).shape[0])


def spectral_efficiency(table: int = 2) -> np.ndarray:
    """float64 ``[n_mcs]``: spectral efficiency Qm·R/1024 (bit/s/Hz per layer) per MCS of
    MCS ``table`` (TS 38.214 Table 5.1.3.1-1/-2)."""
    t = mcs_table(table)
    return t[:, 0] * t[:, 1] / 1024.0


def cqi_spectral_efficiency(cqi_table: int = 2) -> np.ndarray:
    """float64 ``[16]``: spectral efficiency Qm·R/1024 per CQI index 0..15 of CQI table 1
    or 2 (TS 38.214 Table 5.2.2.1-2/-3); 0 for CQI 0 (out of range)."""
    t = CQI_TABLES[cqi_table]
    return t[:, 0] * t[:, 1] / 1024.0


def tbs(
    qm: np.ndarray | float,
    code_rate_x1024: np.ndarray | float,
    n_prb: np.ndarray | int,
    *,
    n_symbols: np.ndarray | int = 12,
    n_dmrs_re: np.ndarray | int = 12,
    n_overhead_re: np.ndarray | int = 0,
    n_layers: np.ndarray | int = 1,
    scaling: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Transport block size in bits, TS 38.214 §5.1.3.2 (both branches), vectorized.

    N'_RE = 12·N_symb − N_DMRS − N_oh;  N_RE = min(156, N'_RE)·n_PRB;
    N_info = S·N_RE·R·Qm·ν.
    N_info ≤ 3824: n = max(3, ⌊log2 N_info⌋ − 6), N'_info = max(24, 2^n·⌊N_info/2^n⌋),
    TBS = smallest entry of Table 5.1.3.2-1 ≥ N'_info.
    N_info > 3824: n = ⌊log2(N_info − 24)⌋ − 5, N'_info = max(3840, 2^n·round((N_info−24)/2^n));
    C = ⌈(N'_info+24)/3816⌉ if R ≤ 1/4, else ⌈(N'_info+24)/8424⌉ if N'_info > 8424, else 1;
    TBS = 8·C·⌈(N'_info+24)/(8·C)⌉ − 24.

    Input (arrays broadcast together)
    ---------------------------------
    qm : float
        Modulation order Qm (bits per symbol).
    code_rate_x1024 : float
        Target code rate R times 1024, as printed in the MCS tables.
    n_prb : int
        Allocated PRBs n_PRB.
    n_symbols : int
        PDSCH OFDM symbols in the slot N_symb^sh (default 12).
    n_dmrs_re : int
        DM-RS resource elements per PRB N_DMRS^PRB, incl. CDM groups without data
        (default 12).
    n_overhead_re : int
        xOverhead N_oh^PRB per PRB (0, 6, 12 or 18; default 0).
    n_layers : int
        MIMO layers ν (default 1).
    scaling : float
        TB scaling factor S (1, 0.5 or 0.25; 38.214 Table 5.1.3.2-2; default 1).

    Output
    ------
    tbs : int64, the broadcast shape
        Transport block size (bits); 0 where N_info is 0.
    """
    qm, rate, n_prb = np.broadcast_arrays(
        np.asarray(qm, dtype=np.float64),
        np.asarray(code_rate_x1024, dtype=np.float64) / 1024.0,
        np.asarray(n_prb, dtype=np.float64),
    )
    re_per_prb = np.minimum(
        MAX_RE_PER_PRB,
        SUBCARRIERS_PER_PRB * np.asarray(n_symbols)
        - np.asarray(n_dmrs_re)
        - np.asarray(n_overhead_re),
    )
    n_info = np.asarray(scaling) * re_per_prb * n_prb * rate * qm * np.asarray(n_layers)
    n_info = np.broadcast_to(n_info, np.broadcast_shapes(n_info.shape, qm.shape))
    rate = np.broadcast_to(rate, n_info.shape)
    out = np.zeros(n_info.shape, dtype=np.int64)

    small = (n_info > 0) & (n_info <= 3824)
    if np.any(small):
        ni = n_info[small]
        n = np.maximum(3, np.floor(np.log2(ni)) - 6)
        ni_q = np.maximum(24, 2**n * np.floor(ni / 2**n))
        out[small] = TBS_TABLE[np.searchsorted(TBS_TABLE, ni_q, side="left")]

    large = n_info > 3824
    if np.any(large):
        ni = n_info[large]
        n = np.floor(np.log2(ni - 24)) - 5
        # round half away from zero, as in the spec's round()
        ni_q = np.maximum(3840, 2**n * np.floor((ni - 24) / 2**n + 0.5))
        r = rate[large]
        c = np.where(
            r <= 0.25,
            np.ceil((ni_q + 24) / 3816),
            np.where(ni_q > 8424, np.ceil((ni_q + 24) / 8424), 1.0),
        )
        out[large] = (8 * c * np.ceil((ni_q + 24) / (8 * c)) - 24).astype(np.int64)
    return out


def transport_block_size(
    mcs: np.ndarray | int,
    n_prb: np.ndarray | int,
    *,
    table: int = 2,
    n_symbols: np.ndarray | int = 12,
    n_dmrs_re: np.ndarray | int = 12,
    n_overhead_re: np.ndarray | int = 0,
    n_layers: np.ndarray | int = 1,
    scaling: np.ndarray | float = 1.0,
) -> np.ndarray:
    """TBS (bits, int64) of MCS index/indices ``mcs`` of MCS ``table`` (see :func:`tbs`).

    Qm and R come from TS 38.214 Table 5.1.3.1-1/-2; the other arguments are
    :func:`tbs`'s. ValueError for an MCS index outside the table.
    """
    t = mcs_table(table)
    mcs = np.asarray(mcs)
    if np.any((mcs < 0) | (mcs >= t.shape[0])):
        raise ValueError(f"MCS index outside 0..{t.shape[0] - 1} for table {table}")
    return tbs(
        t[mcs, 0],
        t[mcs, 1],
        n_prb,
        n_symbols=n_symbols,
        n_dmrs_re=n_dmrs_re,
        n_overhead_re=n_overhead_re,
        n_layers=n_layers,
        scaling=scaling,
    )


def tb_crc_bits(tbs_bits: np.ndarray | int) -> np.ndarray:
    """Transport-block CRC length L_TB (bits): 24 if TBS > 3824 else 16 (TS 38.212 §7.2.1).

    ``tbs_bits`` int, any shape; int out, same shape.
    """
    return np.where(np.asarray(tbs_bits) > 3824, 24, 16)


def ldpc_base_graph(tbs_bits: np.ndarray | int, code_rate: np.ndarray | float) -> np.ndarray:
    """LDPC base graph (1 or 2), TS 38.212 §7.2.2.

    BG2 if A ≤ 292, or (A ≤ 3824 and R ≤ 0.67), or R ≤ 0.25; otherwise BG1.
    ``tbs_bits`` is A (bits), ``code_rate`` is R (not x1024); they broadcast; int out.
    """
    a = np.asarray(tbs_bits)
    r = np.asarray(code_rate)
    bg2 = (a <= 292) | ((a <= 3824) & (r <= 0.67)) | (r <= 0.25)
    return np.where(bg2, 2, 1)


def code_block_segmentation(
    tbs_bits: np.ndarray | int, code_rate: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Number of code blocks C and bits per code block K', TS 38.212 §5.2.2.

    B = A + L_TB; K_cb = 8448 (BG1) or 3840 (BG2). If B ≤ K_cb: C = 1, K' = B.
    Otherwise C = ⌈B / (K_cb − 24)⌉ and K' = (B + 24·C) / C (each block gets a 24-bit CRC).

    Input: ``tbs_bits`` A (int, bits) and ``code_rate`` R (not x1024), broadcasting.

    Output
    ------
    (C, K') : int64, the broadcast shape
        Code blocks per TB and bits per code block (incl. CRCs).
    """
    a = np.asarray(tbs_bits, dtype=np.int64)
    b = a + tb_crc_bits(a)
    k_cb = np.where(ldpc_base_graph(a, code_rate) == 1, 8448, 3840)
    c = np.where(b <= k_cb, 1, np.ceil(b / (k_cb - 24))).astype(np.int64)
    b_prime = np.where(c == 1, b, b + 24 * c)
    k_prime = np.ceil(b_prime / c).astype(np.int64)
    return c, k_prime


MAX_LAYERS = 8  # PDSCH layers of one UE (38.211 §7.3.1.3: up to 8, one or two codewords)
MAX_PRB = 275  # largest carrier in PRBs (38.211 §4.4.2: N_RB ≤ 275)


@cache
def tbs_lookup(
    table: int = 2, n_symbols: int = 12, n_dmrs_re: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precomputed (TBS, C, K') of every (MCS, layers, PRBs) for one slot format.

    :func:`tbs` (TS 38.214 §5.1.3.2, no xOverhead, S = 1) and
    :func:`code_block_segmentation` (TS 38.212 §5.2.2) for every MCS of ``table``, 0..8
    layers and 0..275 PRBs, with ``n_symbols`` PDSCH symbols and ``n_dmrs_re`` DM-RS REs
    per PRB, so the simulator's hot loop does a gather instead of the arithmetic. Cached.

    Output
    ------
    (tbs, n_cb, k_cb) : int64 ``[n_mcs, MAX_LAYERS + 1, MAX_PRB + 1]``, read-only
        Indexed ``[mcs, n_layers, n_prb]``: TBS (bits), code blocks C, bits per code
        block K'. Index 0 of layers or PRBs is an empty allocation: TBS 0 and C 0.
    """
    t = mcs_table(table)
    mcs = np.arange(t.shape[0])[:, None, None]
    layers = np.arange(MAX_LAYERS + 1)[None, :, None]
    prb = np.arange(MAX_PRB + 1)[None, None, :]
    sizes = tbs(
        t[mcs, 0], t[mcs, 1], prb, n_symbols=n_symbols, n_dmrs_re=n_dmrs_re, n_layers=layers
    )
    c, k = code_block_segmentation(sizes, t[mcs, 1] / 1024.0)
    c = np.where(sizes > 0, c, 0)
    for arr in (sizes, c, k):
        arr.setflags(write=False)
    return sizes, c, k
