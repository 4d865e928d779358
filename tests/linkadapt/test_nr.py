"""TS 38.214 §5.1.3 tables and TBS, TS 38.212 §7.2.2 base graph and §5.2.2 segmentation.

Every expected TBS below was worked by hand from the spec's formulas (the derivation
is in the comment next to it), not produced by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkadapt import nr

# --------------------------------------------------------------------------- tables


def test_mcs_table_2_spot_values():
    t = nr.MCS_TABLE_2
    assert t.shape == (28, 2)
    assert tuple(t[0]) == (2, 120)
    assert tuple(t[5]) == (4, 378)
    assert tuple(t[11]) == (6, 466)
    assert tuple(t[20]) == (8, 682.5)
    assert tuple(t[26]) == (8, 916.5)
    assert tuple(t[27]) == (8, 948)
    se = nr.spectral_efficiency(2)
    assert se[27] == pytest.approx(7.40625)
    assert se[0] == pytest.approx(0.234375)
    assert se[20] == pytest.approx(5.33203125)
    assert nr.n_mcs(2) == 28


def test_mcs_table_1_spot_values():
    t = nr.MCS_TABLE_1
    assert t.shape == (29, 2)
    assert tuple(t[9]) == (2, 679)
    assert tuple(t[10]) == (4, 340)
    assert tuple(t[16]) == (4, 658)
    assert tuple(t[17]) == (6, 438)
    assert tuple(t[28]) == (6, 948)
    se = nr.spectral_efficiency(1)
    assert se[28] == pytest.approx(6 * 948 / 1024)
    assert se[10] == pytest.approx(1.328125)
    assert nr.n_mcs(1) == 29


def test_cqi_tables_spot_values():
    c1, c2 = nr.cqi_spectral_efficiency(1), nr.cqi_spectral_efficiency(2)
    assert c1.shape == c2.shape == (16,)
    assert c1[0] == c2[0] == 0.0
    assert c1[1] == pytest.approx(2 * 78 / 1024) == c2[1]
    assert c1[7] == pytest.approx(4 * 378 / 1024)  # 1.4766
    assert c1[10] == pytest.approx(6 * 466 / 1024)  # 2.7305
    assert c1[15] == pytest.approx(6 * 948 / 1024)  # 5.5547
    assert c2[4] == pytest.approx(4 * 378 / 1024)
    assert c2[12] == pytest.approx(8 * 711 / 1024)  # 5.5547
    assert c2[15] == pytest.approx(7.40625)
    for c in (c1, c2):
        assert np.all(np.diff(c) > 0)


def test_mcs_table_2_spectral_efficiency_strictly_increasing():
    assert np.all(np.diff(nr.spectral_efficiency(2)) > 0)


def test_tbs_table_has_93_sorted_entries():
    t = nr.TBS_TABLE
    assert t.shape == (93,)
    assert t[0] == 24 and t[-1] == 3824
    assert np.all(np.diff(t) > 0)
    assert np.all(t % 8 == 0)
    # a few entries printed in Table 5.1.3.2-1
    for v in (304, 408, 984, 1032, 1064, 1128, 2024, 2976, 3104, 3752):
        assert v in t


def test_unknown_table_raises():
    with pytest.raises(ValueError):
        nr.mcs_table(3)
    with pytest.raises(ValueError):
        nr.n_mcs(0)


# --------------------------------------------------------------------------- TBS, hand cases


def test_tbs_minimum_is_24():
    # N_RE = 132, N_info = 132·(120/1024)·2 = 30.94; n = 3; N' = max(24, 8·3) = 24 -> 24
    assert int(nr.tbs(2, 120, 1)) == 24
    assert int(nr.tbs(2, 120, 1, n_symbols=2, n_dmrs_re=12)) == 24  # N_info = 2.8 -> 24


def test_tbs_small_branch_table_lookup():
    # N_RE = 1320, N_info = 309.375; n = max(3, 8 - 6) = 3; N' = 8·38 = 304 -> table 304
    assert int(nr.tbs(2, 120, 10)) == 304


def test_tbs_small_branch_rounds_up_to_next_table_entry():
    # xOverhead 12: N'_RE = 144 - 12 - 12 = 120, N_RE = 1200, N_info = 281.25;
    # n = 3, N' = 8·35 = 280 -> smallest table entry >= 280 is 288
    assert int(nr.tbs(2, 120, 10, n_overhead_re=12)) == 288


def test_tbs_large_branch_two_code_blocks():
    # N_RE = 6600, N_info = 6600·(616/1024)·4 = 15881.25; n = floor(log2 15857.25) - 5 = 8;
    # N' = 256·round(61.94) = 15872 > 8424 -> C = ceil(15896/8424) = 2;
    # TBS = 16·ceil(15896/16) - 24 = 16·994 - 24 = 15880
    assert int(nr.tbs(4, 616, 50)) == 15880


def test_tbs_low_rate_branch_c9():
    # 4 layers: N_RE = 132·273 = 36036, N_info = 36036·(120/1024)·2·4 = 33783.75;
    # n = 15 - 5 = 10, N' = 1024·round(32.97) = 33792; R <= 1/4 -> C = ceil(33816/3816) = 9;
    # TBS = 72·ceil(33816/72) - 24 = 72·470 - 24 = 33816
    assert int(nr.tbs(2, 120, 273, n_layers=4)) == 33816


def test_tbs_large_branch_single_code_block():
    # N_RE = 2640, N_info = 2640·(378/1024)·4 = 3898.125 > 3824; n = 11 - 5 = 6;
    # N' = 64·round(60.53) = 3904 <= 8424 -> TBS = 8·ceil(3928/8) - 24 = 3904
    assert int(nr.tbs(4, 378, 20)) == 3904


def test_tbs_widely_cited_maximum():
    # 14 symbols: N'_RE = 168 - 12 = 156; N_RE = 42588; N_info = 42588·948/1024·8·4
    # = 1261669.5; n = 20 - 5 = 15; N' = 32768·39 = 1277952; C = ceil(1277976/8424) = 152;
    # TBS = 1216·ceil(1277976/1216) - 24 = 1216·1051 - 24 = 1277992
    assert int(nr.transport_block_size(27, 273, n_layers=4, n_symbols=14)) == 1277992


def test_tbs_re_per_prb_capped_at_156():
    a = nr.tbs(8, 948, 100, n_symbols=14, n_dmrs_re=0)  # 168 RE -> capped at 156
    b = nr.tbs(8, 948, 100, n_symbols=14, n_dmrs_re=12)  # exactly 156
    assert int(a) == int(b)
    assert int(nr.tbs(8, 948, 100, n_symbols=14, n_dmrs_re=18)) < int(b)


def test_tbs_xoverhead_equivalent_to_fewer_res():
    for oh in (6, 12, 18):
        assert np.array_equal(
            nr.tbs(4, 616, np.arange(1, 60), n_overhead_re=oh),
            nr.tbs(4, 616, np.arange(1, 60), n_dmrs_re=12 + oh),
        )
    assert int(nr.tbs(4, 616, 50, n_overhead_re=18)) < int(nr.tbs(4, 616, 50))


def test_tb_scaling():
    # S = 0.5 on 50 PRB gives the same N_info as 25 PRB: 7940.625; n = 12 - 5 = 7;
    # N' = 128·round(61.85) = 7936 <= 8424 -> TBS = 8·ceil(7960/8) - 24 = 7936
    assert int(nr.tbs(4, 616, 50, scaling=0.5)) == 7936
    assert int(nr.tbs(4, 616, 25)) == 7936
    prb = np.arange(1, 276, 4)
    assert np.array_equal(nr.tbs(6, 666, 2 * prb, scaling=0.5), nr.tbs(6, 666, prb))
    assert np.array_equal(nr.tbs(6, 666, 4 * prb[:60], scaling=0.25), nr.tbs(6, 666, prb[:60]))


def test_tbs_zero_prb_is_zero():
    assert int(nr.tbs(2, 120, 0)) == 0
    out = nr.tbs(2, 120, np.array([0, 1, 10]))
    assert out.tolist() == [0, 24, 304]
    assert out.dtype.kind == "i"


def test_tbs_vectorized_matches_scalar_calls():
    qm = np.array([2, 4, 6, 8, 2])
    rate = np.array([120, 616, 666, 948, 602])
    prb = np.array([[1], [50], [273]])
    out = nr.tbs(qm, rate, prb, n_layers=2)
    assert out.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            assert out[i, j] == int(nr.tbs(qm[j], rate[j], prb[i, 0], n_layers=2))


def test_transport_block_size_equals_tbs_of_table_entry():
    for table in (1, 2):
        t = nr.mcs_table(table)
        for mcs in range(t.shape[0]):
            assert int(nr.transport_block_size(mcs, 37, table=table, n_layers=2)) == int(
                nr.tbs(t[mcs, 0], t[mcs, 1], 37, n_layers=2)
            )


@pytest.mark.parametrize("bad", [-1, 28, 100])
def test_invalid_mcs_raises(bad):
    with pytest.raises(ValueError):
        nr.transport_block_size(bad, 10)
    with pytest.raises(ValueError):
        nr.transport_block_size(np.array([0, bad]), 10)


def test_mcs_28_valid_only_in_table_1():
    assert int(nr.transport_block_size(28, 10, table=1)) > 0
    with pytest.raises(ValueError):
        nr.transport_block_size(28, 10, table=2)


def _reference_tbs(qm, r1024, prb, n_symbols=12, n_dmrs=12, layers=1, oh=0, scale=1.0):
    """Straight scalar transcription of 38.214 §5.1.3.2 (independent of the vectorized code)."""
    n_re = min(156, 12 * n_symbols - n_dmrs - oh) * prb
    n_info = scale * n_re * (r1024 / 1024) * qm * layers
    if n_info <= 3824:
        n = max(3, math.floor(math.log2(n_info)) - 6)
        n_q = max(24, 2**n * math.floor(n_info / 2**n))
        return next(int(v) for v in nr.TBS_TABLE if v >= n_q)
    n = math.floor(math.log2(n_info - 24)) - 5
    x = (n_info - 24) / 2**n
    n_q = max(3840, 2**n * math.floor(x + 0.5))
    if r1024 / 1024 <= 0.25:
        c = math.ceil((n_q + 24) / 3816)
        return 8 * c * math.ceil((n_q + 24) / (8 * c)) - 24
    if n_q > 8424:
        c = math.ceil((n_q + 24) / 8424)
        return 8 * c * math.ceil((n_q + 24) / (8 * c)) - 24
    return 8 * math.ceil((n_q + 24) / 8) - 24


@settings(max_examples=200, deadline=None)
@given(
    table=st.sampled_from([1, 2]),
    mcs=st.integers(0, 28),
    prb=st.integers(1, 275),
    layers=st.integers(1, 8),
    n_symbols=st.integers(4, 14),
    n_dmrs=st.sampled_from([6, 12, 18, 24, 36]),
    oh=st.sampled_from([0, 6, 12, 18]),
    scale=st.sampled_from([1.0, 0.5, 0.25]),
)
def test_tbs_matches_scalar_transcription(table, mcs, prb, layers, n_symbols, n_dmrs, oh, scale):
    mcs = min(mcs, nr.n_mcs(table) - 1)
    if 12 * n_symbols - n_dmrs - oh <= 0:
        return
    qm, r = nr.mcs_table(table)[mcs]
    got = int(
        nr.transport_block_size(
            mcs,
            prb,
            table=table,
            n_layers=layers,
            n_symbols=n_symbols,
            n_dmrs_re=n_dmrs,
            n_overhead_re=oh,
            scaling=scale,
        )
    )
    assert got == _reference_tbs(qm, r, prb, n_symbols, n_dmrs, layers, oh, scale)


@settings(max_examples=80, deadline=None)
@given(
    table=st.sampled_from([2]),
    prb=st.integers(1, 274),
    layers=st.integers(1, 8),
    n_symbols=st.integers(2, 14),
)
def test_tbs_monotone_in_mcs_and_prb(table, prb, layers, n_symbols):
    mcs = np.arange(nr.n_mcs(table))
    kw = dict(table=table, n_layers=layers, n_symbols=n_symbols)
    by_mcs = nr.transport_block_size(mcs, prb, **kw)
    assert np.all(np.diff(by_mcs) >= 0)
    more = nr.transport_block_size(mcs, prb + 1, **kw)
    assert np.all(more >= by_mcs)
    assert np.all(by_mcs >= 24)


def test_tbs_monotone_in_prb_full_grid():
    sizes, _, _ = nr.tbs_lookup(2)
    assert np.all(np.diff(sizes[:, 1:, 1:], axis=2) >= 0)
    assert np.all(np.diff(sizes[:, 1:, 1:], axis=0) >= 0)
    assert np.all(np.diff(sizes[:, 1:, 1:], axis=1) >= 0)


def test_tbs_large_branch_structure():
    """Every large TBS makes TBS + 24 divisible by 8·C (the spec's construction)."""
    sizes, c, _ = nr.tbs_lookup(2)
    big = sizes > 3824
    assert big.any()
    assert np.all((sizes[big] + 24) % (8 * c[big]) == 0)
    small = (sizes > 0) & ~big
    assert np.all(np.isin(sizes[small], nr.TBS_TABLE))


# --------------------------------------------------------------------------- 38.212


def test_tb_crc_bits():
    assert nr.tb_crc_bits(np.array([24, 3824, 3825, 100000])).tolist() == [16, 16, 24, 24]


@pytest.mark.parametrize(
    "a, r, bg",
    [
        (292, 0.95, 2),  # A <= 292 -> BG2 whatever R
        (293, 0.95, 1),
        (3824, 0.67, 2),  # A <= 3824 and R <= 0.67
        (3824, 0.68, 1),
        (3825, 0.5, 1),
        (100000, 0.25, 2),  # R <= 0.25
        (100000, 0.26, 1),
        (8000, 0.3, 1),
        (24, 0.1, 2),
    ],
)
def test_ldpc_base_graph(a, r, bg):
    assert int(nr.ldpc_base_graph(a, r)) == bg


def test_ldpc_base_graph_vectorized():
    got = nr.ldpc_base_graph(
        np.array([292, 293, 3824, 3824, 100000]), np.array([0.9, 0.9, 0.67, 0.7, 0.2])
    )
    assert got.tolist() == [2, 1, 2, 1, 2]


def test_segmentation_single_block_below_kcb():
    # BG1: B = 8424 + 24 = 8448 <= 8448 -> one block, K' = B
    c, k = nr.code_block_segmentation(8424, 0.9)
    assert (int(c), int(k)) == (1, 8448)
    # BG2: A = 3824 has a 16-bit CRC, B = 3840 <= 3840 -> one block
    c, k = nr.code_block_segmentation(3824, 0.2)
    assert (int(c), int(k)) == (1, 3840)
    # A = 3825: 24-bit CRC, B = 3849 > 3840 -> C = ceil(3849/3816) = 2, K' = (3849+48)/2
    c, k = nr.code_block_segmentation(3825, 0.2)
    assert (int(c), int(k)) == (2, 1949)
    # small TB: 16-bit CRC, B = 304 + 16
    c, k = nr.code_block_segmentation(304, 0.1)
    assert (int(c), int(k)) == (1, 320)


def test_segmentation_multiple_blocks():
    # 15880 (R 0.6, BG1): B = 15904 > 8448 -> C = ceil(15904/8424) = 2, K' = (15904+48)/2
    c, k = nr.code_block_segmentation(15880, 616 / 1024)
    assert (int(c), int(k)) == (2, 7976)
    # 33816 (R 0.117, BG2): B = 33840 -> C = ceil(33840/3816) = 9, K' = (33840+216)/9
    c, k = nr.code_block_segmentation(33816, 120 / 1024)
    assert (int(c), int(k)) == (9, 3784)
    # 8425 at high rate: B = 8449 > 8448 -> C = 2
    c, _ = nr.code_block_segmentation(8425, 0.9)
    assert int(c) == 2
    # maximum TBS: B = 1278016 -> C = ceil(1278016/8424) = 152, K' = (B + 24·152)/152
    c, k = nr.code_block_segmentation(1277992, 948 / 1024)
    assert (int(c), int(k)) == (152, (1278016 + 24 * 152) // 152)


def test_segmentation_formula_over_grid():
    a = np.array([24, 500, 3824, 3825, 5000, 8424, 8425, 20000, 100000, 1277992])
    for r in (0.1, 0.3, 0.5, 0.7, 0.93):
        c, k = nr.code_block_segmentation(a, r)
        bg = nr.ldpc_base_graph(a, r)
        b = a + nr.tb_crc_bits(a)
        kcb = np.where(bg == 1, 8448, 3840)
        exp_c = np.where(b <= kcb, 1, np.ceil(b / (kcb - 24))).astype(int)
        assert np.array_equal(c, exp_c)
        exp_k = np.where(exp_c == 1, b, np.ceil((b + 24 * exp_c) / exp_c)).astype(int)
        assert np.array_equal(k, exp_k)
        assert np.all(k <= kcb)


def test_tbs_lookup_matches_direct_calls():
    rng = np.random.default_rng(0)
    for table, n_symbols, n_dmrs in ((2, 12, 12), (1, 14, 24), (2, 8, 6)):
        sizes, c, k = nr.tbs_lookup(table, n_symbols, n_dmrs)
        n = nr.n_mcs(table)
        assert sizes.shape == c.shape == k.shape == (n, nr.MAX_LAYERS + 1, nr.MAX_PRB + 1)
        assert not sizes.flags.writeable
        assert np.all(sizes[:, 0, :] == 0) and np.all(sizes[:, :, 0] == 0)
        mcs = rng.integers(0, n, 200)
        layers = rng.integers(1, nr.MAX_LAYERS + 1, 200)
        prb = rng.integers(1, nr.MAX_PRB + 1, 200)
        direct = nr.transport_block_size(
            mcs, prb, table=table, n_layers=layers, n_symbols=n_symbols, n_dmrs_re=n_dmrs
        )
        assert np.array_equal(sizes[mcs, layers, prb], direct)
        rate = nr.mcs_table(table)[mcs, 1] / 1024
        dc, dk = nr.code_block_segmentation(direct, rate)
        assert np.array_equal(c[mcs, layers, prb], dc)
        assert np.array_equal(k[mcs, layers, prb], dk)
