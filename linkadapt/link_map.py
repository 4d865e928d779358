"""Mappings between SINR, CQI and MCS used by the UE (CQI) and the gNB (ILLA).

- CQI (38.214 §5.2.2.1): the UE reports the highest CQI whose (Qm, R) would be
  received with BLER ≤ 10 % at its effective SINR. We evaluate that with the BLER
  abstraction at the largest code-block size.
- CQI → SINR: the gNB's estimate is the lower edge of the reported CQI's SINR interval
  (the 10 %-BLER threshold of that CQI), the usual conservative choice.
- ILLA (inner-loop link adaptation): the highest MCS whose predicted BLER at the
  estimated SINR is ≤ the target.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from linkadapt import bler, nr

CQI0_MARGIN_DB = 3.0  # CQI 0 means "below CQI 1": assume that far below CQI 1's threshold


@cache
def cqi_thresholds_db(cqi_table: int = 2, bler_target: float = 0.1) -> np.ndarray:
    """float64 ``[16]``, read-only: SINR (dB) at which the (Qm, R) of CQI 1..15 of CQI
    table ``cqi_table`` (TS 38.214 Table 5.2.2.1-2/-3) reaches ``bler_target`` with the
    longest code block; entry 0 is −inf."""
    se = nr.cqi_spectral_efficiency(cqi_table)
    mcs_table = cqi_table  # CQI table 1 ↔ MCS table 1 (64QAM), 2 ↔ 2 (256QAM)
    th = bler.sinr_threshold_db(np.where(se > 0, se, 1.0), bler_target=bler_target, table=mcs_table)
    th[0] = -np.inf
    th.setflags(write=False)
    return th


def _highest_index_at_or_below(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Highest i with ``values[i] ≤ x`` (−1 if none), also for non-monotone ``values``.

    The suffix minimum g[i] = min(values[i:]) is non-decreasing and has the same answer:
    g[i] ≤ x iff some k ≥ i has values[k] ≤ x. Needed because 38.214 Table 5.1.3.1-1
    prints MCS 17 with a lower spectral efficiency than MCS 16.

    Arrays of :data:`LOOKUP_MIN_SIZE` or more go through :class:`StepLookup` (the same
    answer, a bucket table instead of a binary search: searchsorted mispredicts a branch
    at every level for unsorted keys, the simulator's and the xApp's hot path); smaller
    ones and scalars through ``searchsorted``.
    """
    x = np.asarray(x)
    if x.ndim == 0 or x.size < LOOKUP_MIN_SIZE or x.dtype.kind not in "fiu":
        suffix_min = np.minimum.accumulate(values[::-1])[::-1]
        return np.searchsorted(suffix_min, x, side="right") - 1
    lookup = _step_lookup(np.asarray(values, dtype=np.float64).tobytes())
    if lookup is None:
        suffix_min = np.minimum.accumulate(values[::-1])[::-1]
        return np.searchsorted(suffix_min, x, side="right") - 1
    return lookup(x)


LOOKUP_MIN_SIZE = 64  # below this, searchsorted is as fast as the table
LOOKUP_MAX_BUCKETS = 1 << 14  # thresholds closer than that allows: binary search instead
LOOKUP_EDGE_MARGIN = 1e-6  # in buckets: far above the rounding error of (x − lo) / width


class StepLookup:
    """Exact "highest i with g[i] ≤ x" for a non-decreasing g, by equal-width buckets.

    The buckets are narrower than the smallest gap between distinct finite thresholds,
    so each bucket holds at most one of them, and none sits within
    :data:`LOOKUP_EDGE_MARGIN` of a bucket edge. For x in bucket b the answer is
    ``below[b]`` (the answer at the bucket's left edge) unless x ≥ ``next_th[b]`` (the
    first threshold above that edge), then the answer at that threshold. The comparison
    is exact; the bucket index may round to a neighbour only within the margin, where no threshold
    lies, so the answer is that of ``searchsorted(g, x, side="right") − 1`` for every x,
    ±inf and NaN (sorted last by numpy: the last index) included.
    """

    def __init__(self, g: np.ndarray, lo: float, width: float, n_buckets: int) -> None:
        self.lo, self.inv_width, self.last = lo, 1.0 / width, float(n_buckets - 1)
        edges = lo + width * np.arange(n_buckets)
        self.below = np.searchsorted(g, edges, side="right") - 1
        higher = np.minimum(self.below + 1, g.size - 1)
        self.next_th = np.where(self.below + 1 < g.size, g[higher], np.inf)
        above = np.searchsorted(g, self.next_th, side="right") - 1
        above[~np.isfinite(self.next_th)] = g.size - 1
        # answers interleaved, [2b] below and [2b + 1] above: one gather per key
        self.answer = np.stack([self.below, above], axis=1).ravel()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        pos = np.subtract(x, self.lo, dtype=np.float64)
        pos *= self.inv_width
        # fmin/fmax drop NaN for the bound: NaN lands in the last bucket (answer: last index)
        np.fmin(pos, self.last, out=pos)
        np.fmax(pos, 0.0, out=pos)
        bucket = pos.astype(np.intp)
        up = x >= self.next_th[bucket]
        bucket <<= 1
        bucket += up
        return self.answer[bucket]


@lru_cache(maxsize=64)
def _step_lookup(values_bytes: bytes) -> StepLookup | None:
    """The :class:`StepLookup` of a threshold table (float64 bytes), None where the
    thresholds are too close together for a small table."""
    values = np.frombuffer(values_bytes, dtype=np.float64)
    g = np.minimum.accumulate(values[::-1])[::-1]
    finite = np.unique(g[np.isfinite(g)])
    if finite.size == 0 or np.isnan(g).any():
        return None
    gap = float(np.diff(finite).min()) if finite.size > 1 else 1.0
    width = gap / 4.0
    n_buckets = int(np.ceil((finite[-1] - finite[0]) / width)) + 8
    if n_buckets > LOOKUP_MAX_BUCKETS:
        return None
    for shift in np.linspace(0.5, 0.9, 5):  # move the edges off the thresholds
        lo = float(finite[0] - (2.0 + shift) * width)
        frac = np.modf((finite - lo) / width)[0]
        if np.all((frac > LOOKUP_EDGE_MARGIN) & (frac < 1.0 - LOOKUP_EDGE_MARGIN)):
            return StepLookup(g, lo, width, n_buckets)
    return None  # pragma: no cover - a threshold near an edge at every shift: binary search


@cache
def illa_thresholds_db(table: int = 2, bler_target: float = 0.1) -> np.ndarray:
    """float64 ``[n_mcs]``, read-only: SINR (dB) above which each MCS of ``table`` meets
    ``bler_target`` (longest code block, no offset; :func:`linkadapt.bler.mcs_thresholds_db`)."""
    th = bler.mcs_thresholds_db(table=table, bler_target=bler_target)
    th.setflags(write=False)
    return th


def cqi_from_sinr(sinr_db: np.ndarray, *, cqi_table: int = 2) -> np.ndarray:
    """The CQI a UE reports at effective SINR ``sinr_db`` (dB, any shape), TS 38.214 §5.2.2.1:
    the highest CQI (0..15) whose 10 %-BLER threshold is ≤ the SINR; int16, same shape."""
    return _highest_index_at_or_below(cqi_thresholds_db(cqi_table), sinr_db).astype(np.int16)


def sinr_from_cqi(cqi: np.ndarray, *, cqi_table: int = 2) -> np.ndarray:
    """The gNB's SINR estimate (dB, float64) for reported CQIs (int 0..15, any shape).

    The lower edge of the CQI's SINR interval (its 10 %-BLER threshold); CQI 0 ("out of
    range") maps to CQI 1's threshold minus ``CQI0_MARGIN_DB``.
    """
    return _cqi_sinr_table(cqi_table)[np.asarray(cqi)]


@cache
def _cqi_sinr_table(cqi_table: int) -> np.ndarray:
    """float64 ``[16]``, read-only: :func:`sinr_from_cqi` per CQI (built once, not per call:
    the encoder calls it for every batch)."""
    th = cqi_thresholds_db(cqi_table)
    table = np.concatenate([[th[1] - CQI0_MARGIN_DB], th[1:]])
    table.setflags(write=False)
    return table


def illa_mcs(sinr_db: np.ndarray, *, table: int = 2, bler_target: float = 0.1) -> np.ndarray:
    """Inner-loop link adaptation (ILLA): the highest MCS of ``table`` whose predicted
    code-block BLER at ``sinr_db`` (dB, any shape; longest code block) is ≤ ``bler_target``;
    MCS 0 when none is. int64, same shape."""
    return np.maximum(
        _highest_index_at_or_below(illa_thresholds_db(table, bler_target), sinr_db), 0
    )


def cqi_to_mcs(cqi: np.ndarray, *, table: int = 2) -> np.ndarray:
    """Fixed CQI → MCS mapping: for CQIs (int 0..15, any shape) of the CQI table that
    matches MCS ``table``, the highest MCS whose spectral efficiency is ≤ the CQI's
    (TS 38.214 Tables 5.2.2.1-2/-3 and 5.1.3.1-1/-2); MCS 0 for CQI 0. int64, same shape."""
    cqi_se = nr.cqi_spectral_efficiency(nr.CQI_TABLE_FOR_MCS_TABLE[table])
    mcs_se = nr.spectral_efficiency(table)
    return np.maximum(_highest_index_at_or_below(mcs_se, cqi_se[np.asarray(cqi)]), 0)
