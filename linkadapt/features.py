"""The feature encoder: per-UE report history → float32 observation (schema v1).

It is the only encoder in the project: the simulator (training, evaluation) and the
xApp (serving) both keep a :class:`FeatureHistory` and call :meth:`FeatureHistory.encode`,
so the same reports always give the same observation. Rows are UE slots allocated by
the caller (the simulator uses ``arange(n_ues)``; the xApp maps (cell, UE) to rows).

Schema v1 (order = column order; every value is scaled to roughly [−1, 1]):

==================  =========================================================
name                meaning and scaling
==================  =========================================================
cqi                 latest CQI / 15 (0 when none yet)
cqi_valid           1 if any CQI has been received
cqi_age             slots since that CQI was measured, min(age, 40) / 40
cqi_sinr_db         SINR implied by the CQI (link_map.sinr_from_cqi), dB / 30
olla_offset_db      OLLA offset (Δ_up 1 dB, target 10 %), dB / 10; first-tx feedback (see below)
olla_mcs            ILLA(cqi_sinr − olla_offset) / 27: what OLLA would send
ack_rate_fast       EWMA of ACK (1) / NACK (0), α = 0.3, starts at 0.9
ack_rate_slow       EWMA of ACK / NACK, α = 0.05, starts at 0.9
harq_ack_0..7       last 8 feedbacks, newest first: +1 ACK, −1 NACK, 0 none
harq_mcs_0..7       the MCS of those transmissions / 27 (0 when none)
feedback_age        slots since the last feedback, min(age, 40) / 40
rank                layers of the coming transmission / 8
log_prb             log2(PRBs) / log2(275)
n_symbols           PDSCH symbols / 14
buffer              min(log10(1 + bytes) / 7, 1); 1 when unknown (full buffer)
==================  =========================================================

Privileged extension (appended only for privileged teachers, never for students):
``true_sinr_db`` (effective SINR of the coming transmission, dB / 30) and
``doppler_hz`` (maximum Doppler shift, Hz / 1000).

``olla_offset_db`` follows the feedback of first transmissions only: feedback whose
``harq_tx_index`` is > 0 (a retransmission) does not move the loop; index 0 or -1
(unknown, the default) counts. The ``harq_ack_*`` / ``harq_mcs_*`` / ``ack_rate_*``
features record every feedback.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from linkadapt import link_map
from linkadapt.nr import MAX_LAYERS, MAX_PRB
from linkadapt.olla import OuterLoop
from linkadapt.reports import MAX_SYMBOLS, ReportBatch
from linkadapt.rings import PackedRing

OBS_SCHEMA_VERSION = "1"
HISTORY_LEN = 8
AGE_CAP = 40
MCS_SCALE = 27.0
FAST_ALPHA, SLOW_ALPHA, ACK_RATE_PRIOR = 0.3, 0.05, 0.9

FEATURE_NAMES: tuple[str, ...] = (
    "cqi",
    "cqi_valid",
    "cqi_age",
    "cqi_sinr_db",
    "olla_offset_db",
    "olla_mcs",
    "ack_rate_fast",
    "ack_rate_slow",
    *(f"harq_ack_{i}" for i in range(HISTORY_LEN)),
    *(f"harq_mcs_{i}" for i in range(HISTORY_LEN)),
    "feedback_age",
    "rank",
    "log_prb",
    "n_symbols",
    "buffer",
)
PRIVILEGED_NAMES: tuple[str, ...] = ("true_sinr_db", "doppler_hz")
OBS_DIM = len(FEATURE_NAMES)
PRIVILEGED_DIM = len(PRIVILEGED_NAMES)


class FeatureHistory:
    """Per-UE report history for ``capacity`` UE rows, and the schema-v1 observation.

    :meth:`update` folds one slot's reports into the rows' history; :meth:`encode` reads
    the observation (see the module doc for each feature and its scaling). Both are
    vectorized over rows; rows within one call must be unique.

    Parameters
    ----------
    capacity : int
        UE rows (the caller maps UEs to rows); :meth:`grow` adds more.
    mcs_table : int
        MCS table 1 or 2 (TS 38.214 Table 5.1.3.1-1/-2) of the ``olla_mcs`` feature; the
        CQI table is the one with the same top modulation (Table 5.2.2.1-2/-3).

    The ``olla_offset_db`` feature is an :class:`~linkadapt.olla.OuterLoop` with BLER
    target 10 % and Δ_up 1 dB (Nakamura et al., WPMC 2002; steps as in Pedersen et al.,
    VTC 2007-Fall).
    """

    def __init__(self, capacity: int, *, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table
        self.cqi_table = mcs_table
        self.outer_loop = OuterLoop(0)
        # the last-8 rings are packed per row (linkadapt.rings); _arrays holds their
        # [HISTORY_LEN, capacity] views next to the per-row fields, in schema order
        self._rings = {k: PackedRing(0, HISTORY_LEN, dt) for k, dt in _RING_DTYPES.items()}
        self._arrays: dict[str, np.ndarray] = {}
        self._scalars = _empty_scalars(0)
        self._link_arrays()
        self._cache: _EncodeCache | None = None
        self.grow(capacity)

    def _link_arrays(self) -> None:
        rings = {k: r.view for k, r in self._rings.items()}
        self._arrays = {k: rings[k] if k in rings else self._scalars[k] for k in _FIELDS}

    @property
    def capacity(self) -> int:
        """Number of UE rows."""
        return self.outer_loop.capacity

    def grow(self, capacity: int) -> None:
        """Extend to ``capacity`` rows; existing rows keep their history."""
        old = self.capacity
        if capacity <= old:
            return
        fresh = _empty_scalars(capacity - old)
        self._scalars = {k: np.concatenate([self._scalars[k], v]) for k, v in fresh.items()}
        for ring in self._rings.values():
            ring.grow(capacity)
        self._link_arrays()
        self.outer_loop.grow(capacity)

    def reset(self, rows: np.ndarray) -> None:
        """Forget the history of ``rows`` (a new UE takes them)."""
        for k, v in _empty_scalars(len(rows)).items():
            self._scalars[k][rows] = v
        for ring in self._rings.values():
            ring.reset(rows)
        self.outer_loop.reset(rows)

    def export_rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """A copy of the history of ``rows`` (with the OLLA offset, ``olla_offset_db``),
        one array per field, first axis = ``rows``: what :meth:`import_rows` takes, so a
        UE's history can move to another ``FeatureHistory`` (another process)."""
        # rows are the last axis inside (feature-major rings); the first axis outside
        out = {k: np.moveaxis(v[..., rows], -1, 0).copy() for k, v in self._arrays.items()}
        out["olla_offset_db"] = self.outer_loop.offset_db[rows].copy()
        return out

    def import_rows(self, rows: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Set the history of ``rows`` from :meth:`export_rows` output (same fields, same
        per-row shapes, first axis = ``rows``); ``ValueError`` naming the field otherwise,
        before anything is changed."""
        n = len(rows)
        expected = {**self._arrays, "olla_offset_db": self.outer_loop.offset_db}
        if set(values) != set(expected):
            raise ValueError(f"fields {sorted(values)} != {sorted(expected)}")
        for k, ref in expected.items():
            v = np.asarray(values[k])
            per_row = ref.shape[:-1]  # rows are the last axis inside
            if v.shape != (n, *per_row):
                raise ValueError(f"{k}: shape {v.shape} != {(n, *per_row)}")
            if not np.can_cast(v.dtype, ref.dtype, casting="same_kind"):
                raise ValueError(f"{k}: dtype {v.dtype} does not fit {ref.dtype}")
        for k, v in values.items():
            if k == "olla_offset_db":
                self.outer_loop.offset_db[rows] = v
            else:
                self._arrays[k][..., rows] = np.moveaxis(np.asarray(v), 0, -1)

    def update(self, rows: np.ndarray | None, reports: ReportBatch) -> None:
        """Fold the reports of one slot into the history of ``rows``.

        Per row: the latest CQI, its age, rank, PRBs, symbols and buffer replace the
        previous ones; the slots since feedback grow by one. Rows with feedback
        (``harq_ack`` ≥ 0) push it into their last-8 ACK/NACK and MCS rings, move their
        ACK-rate EWMAs, r ← r + α·(ack − r) with α = 0.3 (fast) and 0.05 (slow), and step
        the OLLA offset on first-transmission (or unknown-index) feedback.

        Input
        -----
        rows : int ``[k]`` | None
            History rows of the batch's UEs, unique; ``None``: every row in order (the
            simulator's case: slices, no gathers; then ``k = capacity``).
        reports : ReportBatch
            ``k`` reports of one slot (:mod:`linkadapt.reports`), in ``rows`` order.
        """
        a = self._scalars
        fb = reports.harq_ack >= 0
        fb_rows = np.flatnonzero(fb) if rows is None else rows[fb]
        at: np.ndarray | slice = slice(None) if rows is None else rows
        a["cqi"][at] = reports.cqi
        a["cqi_age"][at] = reports.cqi_age_slots
        a["rank"][at] = reports.rank
        a["n_prb"][at] = reports.n_prb
        a["n_symbols"][at] = reports.n_symbols
        a["buffer"][at] = reports.buffer_bytes
        # one gather and one scatter: slots since feedback grow by one, 0 with feedback
        fb_age = a["feedback_age"][at] + 1
        fb_age[fb] = 0
        a["feedback_age"][at] = fb_age

        ack = reports.harq_ack[fb]
        sign = np.where(ack == 1, 1, -1).astype(np.int8)
        self._rings["harq_ack"].push(fb_rows, sign)
        self._rings["harq_mcs"].push(fb_rows, reports.harq_mcs[fb])
        ackf = ack.astype(np.float32)
        for name, alpha in (("ack_fast", FAST_ALPHA), ("ack_slow", SLOW_ALPHA)):
            rate = a[name][fb_rows]  # r + α·(ack − r), in float32 as ever
            rate += alpha * (ackf - rate)
            a[name][fb_rows] = rate
        # OLLA steps on first-transmission feedback only where the index is known; the
        # ack/mcs history above records every feedback
        self.outer_loop.update(fb_rows, ack, reports.harq_tx_index[fb])

    def encode(self, rows: np.ndarray | None) -> np.ndarray:
        """The observation of ``rows`` from their history (schema v1, module doc).

        Input
        -----
        rows : int ``[k]`` | None
            History rows; ``None``: every row in order (``k = capacity``).

        Output
        ------
        obs : float32 ``[k, OBS_DIM]``
            Columns in :data:`FEATURE_NAMES` order, each scaled to about [−1, 1].

        ``rows=None`` (the simulator, every slot) goes through a cache of the last full
        observation (:meth:`_encode_all`): the same values, recomputed only for rows
        whose history changed. It makes ``encode(None)`` stateful: one thread at a time
        per history (``encode(rows)`` only reads).
        """
        if rows is None:
            return self._encode_all()
        return self._encode(rows)

    def _encode_all(self) -> np.ndarray:
        """``encode(None)``: the last full observation with the rows whose inputs changed
        since (compared with a copy of those inputs, whatever changed them) recomputed,
        and the two ages, which move every slot for every row, recomputed whole."""
        a = self._scalars
        offset = self.outer_loop.offset_db
        valid = a["cqi_age"] >= 0
        cache = self._cache
        # per row: the scalar fields, and the rings as their packed words ([capacity,
        # words]: one comparison per word, not per value)
        src = {k: self._rings[k].packed if k in self._rings else a[k] for k in _CACHED_INPUTS}
        if cache is None or cache.obs.shape[0] != self.capacity:
            obs = self._encode(None)
            inputs = {k: v.copy() for k, v in src.items()}
            self._cache = _EncodeCache(obs.copy(), inputs, offset.copy(), valid)
            return obs
        changed = valid != cache.valid
        changed |= offset != cache.offset
        for k, v in src.items():
            differs = v != cache.inputs[k]
            changed |= differs.any(axis=1) if differs.ndim == 2 else differs
        dirty = np.flatnonzero(changed)
        obs = cache.obs
        if dirty.size:
            obs[dirty] = self._encode(dirty)
            for k, v in src.items():
                cache.inputs[k][dirty] = v[dirty]
            cache.offset[dirty] = offset[dirty]
            cache.valid[dirty] = valid[dirty]
        age = a["cqi_age"]
        np.divide(np.minimum(np.where(valid, age, AGE_CAP), AGE_CAP), AGE_CAP, out=obs[:, 2])
        fb_age = np.minimum(a["feedback_age"], AGE_CAP)
        np.divide(fb_age, AGE_CAP, out=obs[:, FEEDBACK_AGE_COLUMN])
        return obs.copy()

    def _encode(self, rows: np.ndarray | None) -> np.ndarray:
        """The observation of ``rows`` (``None``: all) computed from the history."""
        a = self._scalars
        n = self.capacity if rows is None else len(rows)
        at: np.ndarray | slice = slice(None) if rows is None else rows
        # built feature-major in a per-thread scratch buffer (each feature a contiguous
        # row, each value computed in float64 and rounded once into it), then transposed
        # into the result in one pass: writing the columns of an [n, OBS_DIM] array one
        # by one is strided, a cache line per value
        col = _feature_major_scratch(n)
        age = a["cqi_age"][at]
        valid = age >= 0
        cqi = np.where(valid, a["cqi"][at], 0)
        sinr = link_map.sinr_from_cqi(cqi, cqi_table=self.cqi_table)
        offset = self.outer_loop.offset_db[at]
        np.divide(cqi, 15.0, out=col[0])
        col[1] = valid
        np.divide(np.minimum(np.where(valid, age, AGE_CAP), AGE_CAP), AGE_CAP, out=col[2])
        np.divide(np.where(valid, sinr, -10.0), 30.0, out=col[3])
        np.divide(offset, 10.0, out=col[4])
        olla_mcs = link_map.illa_mcs(sinr - offset, table=self.mcs_table) * valid
        np.divide(olla_mcs, MCS_SCALE, out=col[5])
        col[6] = a["ack_fast"][at]
        col[7] = a["ack_slow"][at]
        h = 8 + HISTORY_LEN
        acks, mcss = self._rings["harq_ack"], self._rings["harq_mcs"]
        np.copyto(col[8:h], acks.values(acks.take(at)).T)
        np.divide(mcss.values(mcss.take(at)).T, MCS_SCALE, out=col[h : h + HISTORY_LEN])
        c = h + HISTORY_LEN
        np.divide(np.minimum(a["feedback_age"][at], AGE_CAP), AGE_CAP, out=col[c])
        np.divide(a["rank"][at], MAX_LAYERS, out=col[c + 1])
        np.divide(np.log2(np.maximum(a["n_prb"][at], 1)), np.log2(MAX_PRB), out=col[c + 2])
        np.divide(a["n_symbols"][at], MAX_SYMBOLS, out=col[c + 3])
        buf = a["buffer"][at]
        col[c + 4] = buf < 0  # unknown: 1; empty: log10(1) = 0
        queued = np.flatnonzero(buf > 0)  # the log only where bytes are queued
        col[c + 4, queued] = np.minimum(np.log10(1.0 + buf[queued]) / 7.0, 1.0)
        out = np.empty((n, OBS_DIM), dtype=np.float32)
        np.copyto(out, col.T)
        return out


# what every column but the two ages is computed from (with the OLLA offset and whether a
# CQI was received); the ages are recomputed whole every call
_CACHED_INPUTS = (
    "cqi", "ack_fast", "ack_slow", "harq_ack", "harq_mcs", "rank", "n_prb", "n_symbols", "buffer",
)  # fmt: skip
FEEDBACK_AGE_COLUMN = FEATURE_NAMES.index("feedback_age")


@dataclass
class _EncodeCache:
    """The last full observation of a :class:`FeatureHistory` and the inputs it came from."""

    obs: np.ndarray  # float32 [capacity, OBS_DIM]
    inputs: dict[str, np.ndarray]  # copies of _CACHED_INPUTS
    offset: np.ndarray  # OLLA offset (dB)
    valid: np.ndarray  # bool: a CQI was received


_SCRATCH = threading.local()  # per thread: encode is not re-entrant, threads may share


def _feature_major_scratch(n: int) -> np.ndarray:
    """float32 ``[OBS_DIM, n]`` scratch of this thread, grown to the largest ``n`` it
    encoded (a persistent buffer: a fresh one per call costs page faults at 10k rows)."""
    scratch: np.ndarray | None = getattr(_SCRATCH, "buffer", None)
    if scratch is None or scratch.shape[1] < n:
        scratch = np.empty((OBS_DIM, n), dtype=np.float32)
        _SCRATCH.buffer = scratch
    return scratch[:, :n]


def privileged_features(true_sinr_db: np.ndarray, doppler_hz: np.ndarray) -> np.ndarray:
    """The privileged extension, float32 ``[n, PRIVILEGED_DIM]`` (teachers only)."""
    return np.stack(
        [np.asarray(true_sinr_db) / 30.0, np.asarray(doppler_hz) / 1000.0], axis=1
    ).astype(np.float32)


_RING_DTYPES: dict[str, np.dtype] = {"harq_ack": np.dtype(np.int8), "harq_mcs": np.dtype(np.int16)}
# the history's fields, in schema order (export_rows / import_rows)
_FIELDS = (
    "cqi", "cqi_age", "harq_ack", "harq_mcs", "ack_fast", "ack_slow", "feedback_age", "rank",
    "n_prb", "n_symbols", "buffer",
)  # fmt: skip


def _empty_scalars(n: int) -> dict[str, np.ndarray]:
    """The per-row fields (all but the rings) of ``n`` fresh rows."""
    return {
        "cqi": np.zeros(n, np.int16),
        "cqi_age": np.full(n, -1, np.int32),
        "ack_fast": np.full(n, ACK_RATE_PRIOR, np.float32),
        "ack_slow": np.full(n, ACK_RATE_PRIOR, np.float32),
        "feedback_age": np.full(n, AGE_CAP, np.int32),
        "rank": np.ones(n, np.int16),
        "n_prb": np.ones(n, np.int32),
        "n_symbols": np.full(n, 12, np.int16),
        "buffer": np.full(n, -1, np.int64),
    }
