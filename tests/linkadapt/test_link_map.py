"""SINR ↔ CQI ↔ MCS mappings (UE CQI report, gNB CQI→SINR, ILLA, fixed table)."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt import bler, link_map, nr

SINR = np.linspace(-25.0, 45.0, 7001)


@pytest.mark.parametrize("cqi_table", [1, 2])
def test_cqi_thresholds_increasing(cqi_table):
    th = link_map.cqi_thresholds_db(cqi_table)
    assert th.shape == (16,)
    assert th[0] == -np.inf
    assert np.all(np.diff(th[1:]) > 0)
    assert not th.flags.writeable


@pytest.mark.parametrize("cqi_table", [1, 2])
def test_cqi_threshold_is_ten_percent_point_of_cqi_se(cqi_table):
    th = link_map.cqi_thresholds_db(cqi_table)
    se = nr.cqi_spectral_efficiency(cqi_table)
    np.testing.assert_allclose(bler.bler_at_se(th[1:], se[1:], table=cqi_table), 0.1)


@pytest.mark.parametrize("cqi_table", [1, 2])
def test_cqi_sinr_round_trip(cqi_table):
    cqi = np.arange(16)
    sinr = link_map.sinr_from_cqi(cqi, cqi_table=cqi_table)
    assert np.all(np.diff(sinr) > 0)
    assert np.array_equal(link_map.cqi_from_sinr(sinr, cqi_table=cqi_table), cqi)
    # CQI 0 is assumed CQI0_MARGIN_DB below CQI 1
    assert sinr[1] - sinr[0] == pytest.approx(link_map.CQI0_MARGIN_DB)


@pytest.mark.parametrize("cqi_table", [1, 2])
def test_cqi_from_sinr_monotone_bounded_conservative(cqi_table):
    cqi = link_map.cqi_from_sinr(SINR, cqi_table=cqi_table)
    assert cqi.dtype == np.int16
    assert np.all(np.diff(cqi) >= 0)
    assert cqi.min() == 0 and cqi.max() == 15
    # the gNB's estimate never exceeds the SINR that produced the CQI (for CQI >= 1)
    est = link_map.sinr_from_cqi(cqi, cqi_table=cqi_table)
    assert np.all(est[cqi > 0] <= SINR[cqi > 0])
    # the reported CQI meets 10 % BLER; the next CQI would not
    se = nr.cqi_spectral_efficiency(cqi_table)
    pos = (cqi > 0) & (cqi < 15)
    assert np.all(bler.bler_at_se(SINR[pos], se[cqi[pos]], table=cqi_table) <= 0.1 + 1e-9)
    assert np.all(bler.bler_at_se(SINR[pos], se[cqi[pos] + 1], table=cqi_table) > 0.1 - 1e-9)


def test_cqi_from_sinr_vectorized_shape():
    s = np.array([[-30.0, 0.0], [10.0, 60.0]])
    out = link_map.cqi_from_sinr(s)
    assert out.shape == (2, 2)
    assert out[0, 0] == 0 and out[1, 1] == 15


@pytest.mark.parametrize("table", [1, 2])
def test_illa_monotone_and_clipped(table):
    mcs = link_map.illa_mcs(SINR, table=table)
    assert np.all(np.diff(mcs) >= 0)
    assert mcs.min() == 0 and mcs.max() == nr.n_mcs(table) - 1
    assert int(link_map.illa_mcs(-100.0, table=table)) == 0
    assert int(link_map.illa_mcs(100.0, table=table)) == nr.n_mcs(table) - 1


@pytest.mark.parametrize("table", [1, 2])
def test_illa_is_highest_mcs_meeting_target(table):
    """ILLA's definition, brute force: the highest MCS whose BLER at the SINR <= target."""
    n = nr.n_mcs(table)
    th = bler.mcs_thresholds_db(table=table)
    # a dense grid plus points just above every threshold
    s = np.sort(np.concatenate([np.linspace(th.min() - 1, th.max() + 1, 4001), th + 1e-3]))
    b = bler.code_block_bler(s[:, None], np.arange(n)[None, :], table=table)
    ok = b <= 0.1 + 1e-9
    expected = np.where(ok.any(axis=1), n - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    got = link_map.illa_mcs(s, table=table)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, (
        f"table {table}: illa_mcs at {s[bad[:3]]} dB gave {got[bad[:3]]}, "
        f"highest MCS meeting 10 % is {expected[bad[:3]]}"
    )


@pytest.mark.parametrize("table", [1, 2])
def test_illa_scalar_calls_match_definition(table):
    """One SINR at a time (how a caller with one UE uses it), just above each threshold.

    MCS table 1 is not monotone in spectral efficiency (MCS 16: 4·658 = 2.5703,
    MCS 17: 6·438 = 2.5664 bit/s/Hz), so its thresholds are not sorted either.
    """
    n = nr.n_mcs(table)
    th = bler.mcs_thresholds_db(table=table)
    for s in np.concatenate([th + 1e-3, th + 5e-3]):
        b = bler.code_block_bler(s, np.arange(n), table=table)
        expected = int(np.flatnonzero(b <= 0.1 + 1e-9).max())
        got = int(link_map.illa_mcs(s, table=table))
        assert got == expected, f"table {table}: illa_mcs({s:.4f} dB) = {got}, expected {expected}"


@pytest.mark.parametrize("table", [1, 2])
def test_illa_vectorized_equals_elementwise(table):
    th = bler.mcs_thresholds_db(table=table)
    s = np.concatenate([th + 1e-3, th - 1e-3, np.linspace(-10, 30, 41)])
    vec = link_map.illa_mcs(s, table=table)
    one = np.array([int(link_map.illa_mcs(x, table=table)) for x in s])
    assert np.array_equal(vec, one), s[vec != one]


def test_illa_bler_target_changes_choice():
    s = np.linspace(-5, 25, 301)
    strict = link_map.illa_mcs(s, bler_target=0.01)
    loose = link_map.illa_mcs(s, bler_target=0.3)
    assert np.all(strict <= link_map.illa_mcs(s)) and np.all(link_map.illa_mcs(s) <= loose)
    assert np.any(strict < loose)


@pytest.mark.parametrize("table", [1, 2])
def test_cqi_to_mcs_picks_highest_se_not_above_cqi(table):
    cqi_se = nr.cqi_spectral_efficiency(nr.CQI_TABLE_FOR_MCS_TABLE[table])
    mcs_se = nr.spectral_efficiency(table)
    got = link_map.cqi_to_mcs(np.arange(16), table=table)
    for c in range(16):
        fits = np.flatnonzero(mcs_se <= cqi_se[c] + 1e-12)
        assert got[c] == (fits.max() if fits.size else 0), c
        if fits.size:
            assert mcs_se[got[c]] <= cqi_se[c] + 1e-12
    assert np.all(np.diff(got) >= 0)
    assert got[0] == 0 and got[15] == nr.n_mcs(table) - 1


def test_cqi_to_mcs_exact_matches_table_2():
    # CQI table 2 entries that also exist in MCS table 2 map onto them exactly
    got = link_map.cqi_to_mcs(np.array([2, 3, 4, 6, 7, 12, 15]), table=2)
    assert got.tolist() == [1, 3, 5, 9, 11, 21, 27]


def _searchsorted_reference(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The binary search the bucket table replaces (highest i with suffix-min ≤ x)."""
    suffix_min = np.minimum.accumulate(values[::-1])[::-1]
    return np.searchsorted(suffix_min, x, side="right") - 1


def _adversarial_inputs(thresholds: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    finite = thresholds[np.isfinite(thresholds)]
    at = np.concatenate([finite, np.nextafter(finite, -np.inf), np.nextafter(finite, np.inf)])
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e300])
    wide = rng.uniform(finite.min() - 20, finite.max() + 20, 5000)
    return [
        np.concatenate([at, special, wide]),
        np.concatenate([at, wide]).astype(np.float32),
        np.arange(-40, 60, dtype=np.int64).repeat(2),
        rng.uniform(-30, 40, (50, 40)),  # 2-D
    ]


@pytest.mark.parametrize(
    "thresholds",
    [
        link_map.cqi_thresholds_db(1),
        link_map.cqi_thresholds_db(2),
        link_map.illa_thresholds_db(1),  # not monotone: MCS 17 below MCS 16
        link_map.illa_thresholds_db(2),
        link_map.illa_thresholds_db(2, 0.01),
        link_map.illa_thresholds_db(1, 0.3),
    ],
)
def test_bucket_lookup_equals_binary_search(thresholds: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    for x in _adversarial_inputs(np.asarray(thresholds), rng):
        got = link_map._highest_index_at_or_below(thresholds, x)
        expected = _searchsorted_reference(thresholds, x)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        bad = np.flatnonzero(got.ravel() != expected.ravel())
        assert bad.size == 0, (x.ravel()[bad[:5]], got.ravel()[bad[:5]])


def test_bucket_lookup_equals_binary_search_on_random_tables() -> None:
    """Random tables, duplicates and a −inf entry included; tables whose thresholds are
    too close for a small bucket table fall back to the binary search."""
    rng = np.random.default_rng(3)
    for trial in range(60):
        m = int(rng.integers(1, 30))
        values = np.sort(rng.uniform(-20, 30, m)) if trial % 3 else rng.uniform(-20, 30, m)
        if trial % 4 == 0:
            values[: m // 3] = values[m // 3]  # duplicates
        if trial % 5 == 0:
            values[0] = -np.inf
        if trial % 7 == 0 and m > 2:
            values[2] = values[1] + 1e-9  # nearly equal: no bucket table
        for x in _adversarial_inputs(values, rng):
            got = link_map._highest_index_at_or_below(values, x)
            assert np.array_equal(got, _searchsorted_reference(values, x)), (trial, values)


def test_bucket_lookup_keeps_scalar_and_small_results() -> None:
    th = link_map.illa_thresholds_db(2)
    assert np.ndim(link_map.illa_mcs(10.0)) == 0
    small = np.linspace(-10, 30, 10)
    assert np.array_equal(
        link_map._highest_index_at_or_below(th, small), _searchsorted_reference(th, small)
    )
