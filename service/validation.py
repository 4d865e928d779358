"""Whole-request validation: nothing is touched before a request passes.

Decide requests follow linkadapt's :class:`~linkadapt.reports.ReportBatch` rules: a single
stacked numpy comparison (:func:`fast_report_batch`) accepts exactly the batches
``ReportBatch.from_arrays`` accepts, anything else goes through ``from_arrays``, whose
:class:`~linkadapt.reports.ReportError` names the field. The protobuf requests of one
micro-batch can be checked in one pass (:meth:`RequestValidator.premerge`). Every refusal
is an :class:`~service.errors.InvalidArgument` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linkadapt import nr
from linkadapt.reports import (
    FIELD_RANGES,
    OPTIONAL_DEFAULTS,
    REPORT_DTYPES,
    ReportBatch,
    ReportError,
)
from service.errors import InvalidArgument
from service.proto_gen import link_adaptation_pb2 as pb
from service.wire import DECIDE_COLUMNS, OUTCOME_COLUMNS, parse_message, request_columns

# optional columns (absent, null or empty: the default for every UE, see linkadapt.reports)
OPTIONAL_COLUMNS = tuple(OPTIONAL_DEFAULTS)
# DecideRequest columns that must all have ue_id's length (the optional ones may be empty)
_LEN_CHECKED = tuple(k for k in DECIDE_COLUMNS if k not in OPTIONAL_DEFAULTS)
_I64_MAX = int(np.iinfo(np.int64).max)
_FLOAT_INT_LIMIT = 2.0**62  # floats this large are not trusted to be exact integers

# the fast path's bounds: dtype fit, then ReportBatch.validate()'s ranges (harq_mcs:
# n_mcs - 1, per served table)
_FAST_LO = np.array([[np.iinfo(REPORT_DTYPES[k]).min] for k in DECIDE_COLUMNS], dtype=np.int64)
_FAST_HI = np.array([[np.iinfo(REPORT_DTYPES[k]).max] for k in DECIDE_COLUMNS], dtype=np.int64)
_SEM_LO = np.array([[FIELD_RANGES[k][0]] for k in DECIDE_COLUMNS], dtype=np.int64)
_CQI, _AGE = DECIDE_COLUMNS.index("cqi"), DECIDE_COLUMNS.index("cqi_age_slots")
_ACK, _HMCS = DECIDE_COLUMNS.index("harq_ack"), DECIDE_COLUMNS.index("harq_mcs")
_HTX = DECIDE_COLUMNS.index("harq_tx_index")
_SEM_HI_CACHE: dict[int, np.ndarray] = {}
# Every semantic range lies inside its column's dtype, so a value that passes the range
# check fits its dtype; only the values the range check ignores (CQI without a CQI, HARQ
# MCS and index without feedback) need the dtype check of their own.
_IGNORABLE = (_CQI, _HMCS, _HTX)
assert all(
    _FAST_LO[i, 0] <= _SEM_LO[i, 0] and (FIELD_RANGES[k][1] or 0) <= _FAST_HI[i, 0]
    for i, k in enumerate(DECIDE_COLUMNS)
), "a semantic range exceeds its dtype: check every column's dtype fit"


def _outside(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Any ``x`` outside ``[lo, hi]`` (int64, broadcast): one pass, as x − lo (wrapping)
    read unsigned is ≤ hi − lo exactly for the values inside."""
    span = (hi - lo).view(np.uint64)  # hi - lo < 2**64: exact when read unsigned
    return bool((np.subtract(x, lo).view(np.uint64) > span).any())


def _sem_hi(n_mcs: int) -> np.ndarray:
    hi = _SEM_HI_CACHE.get(n_mcs)
    if hi is None:
        vals = [FIELD_RANGES[k][1] for k in DECIDE_COLUMNS]
        vals[_HMCS] = n_mcs - 1
        hi = _SEM_HI_CACHE[n_mcs] = np.array([[v] for v in vals], dtype=np.int64)
    return hi


def as_int_column(name: str, value: Any) -> np.ndarray:
    """A JSON/protobuf value as a 1-D numeric array (no copy when it already is one).

    Raises
    ------
    ReportError
        Naming ``name``: not 1-D, or not numbers (booleans are refused).
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ReportError(name, f"not a 1-D array of integers ({exc})") from None
    if arr.ndim != 1:
        raise ReportError(name, "must be a 1-D array of integers")
    if arr.size and arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "b":
            raise ReportError(name, "must be integers, got booleans")
        raise ReportError(name, f"must be integers, got {arr.dtype}")
    return arr


def int64_column(name: str, value: Any) -> np.ndarray:
    """:func:`as_int_column`, then floats must be exact integers; as ``int64``.

    Raises
    ------
    ReportError
        Naming ``name``: see :func:`as_int_column`; NaN, infinite, fractional or
        too large (>= 2^62) floats.
    """
    arr = as_int_column(name, value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ReportError(name, "NaN, infinite or non-integer value")
        if arr.size and np.abs(arr).max() >= _FLOAT_INT_LIMIT:
            raise ReportError(name, "value out of range")
    return arr.astype(np.int64)


def check_id(field: str, value: Any) -> None:
    """``value`` must be a plain ``int`` in [0, 2^63) (cell ids, slots).

    Raises
    ------
    InvalidArgument
        Naming ``field``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _I64_MAX:
        raise InvalidArgument(field, f"must be an integer in [0, 2^63), got {value!r}")


def check_unique_ues(ue_ids: np.ndarray) -> None:
    """The UE ids of one request must be distinct.

    Raises
    ------
    InvalidArgument
        On ``ue_id``, naming the smallest repeated id.
    """
    if ue_ids.shape[0] > 1:
        s = np.sort(ue_ids)
        dup = s[1:] == s[:-1]
        if dup.any():
            raise InvalidArgument("ue_id", f"duplicate UE id {int(s[1:][dup][0])}")


def fast_report_batch(
    cell_id: int | np.ndarray, n: int, cols: dict[str, np.ndarray | None], n_mcs: int
) -> ReportBatch | None:
    """``ReportBatch.from_arrays`` for the common case, without its per-column passes.

    When every column is a 1-D ``int64`` array of length ``n``, one stacked comparison
    checks that the values fit the columns' dtypes and a second one checks the ranges of
    :meth:`ReportBatch.validate` (CQI only where a CQI exists, HARQ MCS and transmission
    index only where there is feedback). ``tests/service/test_service_fastpath.py`` checks
    (property test) that this accepts exactly what ``from_arrays`` accepts, with identical
    arrays.

    Input
    -----
    cell_id : int or np.ndarray, int64 [n]
        The cell of every UE (one request) or per UE (a merged micro-batch).
    n : int
        UEs.
    cols : dict[str, np.ndarray | None]
        The :data:`~service.wire.DECIDE_COLUMNS`; an optional one given as ``None`` (or
        left out) takes its default (-1) for every UE.
    n_mcs : int
        MCS indices of the served table (``harq_mcs`` < ``n_mcs``).

    Output
    ------
    batch : ReportBatch or None
        ``None`` when anything is not plain, in-range ``int64 [n]``: the caller then runs
        ``from_arrays``, which raises the precise :class:`ReportError`.
    """
    arrays = []
    for name in DECIDE_COLUMNS:
        col = cols.get(name)
        if col is None:
            if name not in OPTIONAL_DEFAULTS:
                return None
            col = np.full(n, OPTIONAL_DEFAULTS[name], dtype=np.int64)
        if col.dtype != np.int64 or col.ndim != 1 or col.shape[0] != n:
            return None
        arrays.append(col)
    if n:
        if any(_outside(arrays[i], _FAST_LO[i], _FAST_HI[i]) for i in _IGNORABLE):
            return None
        stacked = np.stack(arrays)
        stacked[_CQI, stacked[_AGE] < 0] = 0  # ignored values are not range-checked
        no_fb = stacked[_ACK] < 0
        stacked[_HMCS, no_fb] = 0
        stacked[_HTX, no_fb] = 0
        if _outside(stacked, _SEM_LO, _sem_hi(n_mcs)):
            return None
    fields = {
        name: col.astype(REPORT_DTYPES[name], copy=False)
        for name, col in zip(DECIDE_COLUMNS, arrays, strict=True)
    }
    cells = cell_id if isinstance(cell_id, np.ndarray) else np.full(n, cell_id, dtype=np.int64)
    return ReportBatch(cell_id=cells, **fields)


class RequestValidator:
    """The server's validation rules (served MCS table, ``max_batch_ues``), per request kind.

    Parameters
    ----------
    mcs_table : int
        The served 38.214 MCS table (1 or 2).
    max_batch_ues : int
        Most UEs in one decide request.
    """

    def __init__(self, mcs_table: int, max_batch_ues: int) -> None:
        self.mcs_table = mcs_table
        self.n_mcs = nr.n_mcs(mcs_table)
        self.max_batch_ues = max_batch_ues

    def decide(
        self, cell_id: Any, slot: Any, mcs_table: int, columns: dict[str, Any]
    ) -> ReportBatch:
        """Validate one decide request as a whole.

        Input
        -----
        cell_id, slot : int
            In [0, 2^63).
        mcs_table : int
            0 (the served table) or the served table.
        columns : dict[str, Any]
            The :data:`~service.wire.DECIDE_COLUMNS` as arrays or lists of integers, all
            of ``ue_id``'s length; optional ones may be absent, ``None`` or empty.

        Output
        ------
        batch : ReportBatch
            ``[n]`` columns in linkadapt's dtypes, ``cell_id`` filled in.

        Raises
        ------
        InvalidArgument
            Naming the first bad field (reason ``batch_too_large`` above
            ``max_batch_ues``); duplicate UE ids on ``ue_id``.
        """
        check_id("cell_id", cell_id)
        check_id("slot", slot)
        if mcs_table not in (0, self.mcs_table):
            if mcs_table in (1, 2):
                msg = f"MCS table {mcs_table} is not served (serving table {self.mcs_table})"
            else:
                msg = f"unknown MCS table {mcs_table!r} (38.214 tables 1 or 2)"
            raise InvalidArgument("mcs_table", msg)
        ue = columns.get("ue_id")
        n = len(ue) if ue is not None and hasattr(ue, "__len__") else 0
        if n > self.max_batch_ues:
            raise InvalidArgument(
                "ue_id",
                f"batch of {n} UEs exceeds max_batch_ues={self.max_batch_ues}",
                "batch_too_large",
            )
        try:
            cols: dict[str, np.ndarray | None] = {}
            for k in DECIDE_COLUMNS:
                v = columns.get(k)
                if v is None and k not in OPTIONAL_COLUMNS:
                    raise ReportError(k, "missing field")
                if v is None or (type(v) is np.ndarray and v.dtype == np.int64 and v.ndim == 1):
                    cols[k] = v
                else:
                    cols[k] = as_int_column(k, v)
            for k in OPTIONAL_COLUMNS:
                opt = cols[k]
                if opt is not None and opt.shape[0] == 0 and n > 0:
                    cols[k] = None
            batch = fast_report_batch(cell_id, n, cols, self.n_mcs)
            if batch is None:  # not plain in-range int64 columns: the reference path
                batch = ReportBatch.from_arrays(
                    n_mcs=self.n_mcs, cell_id=np.full(n, cell_id, dtype=np.int64), **cols
                )
        except ReportError as exc:
            raise InvalidArgument(exc.field, exc.message) from None
        check_unique_ues(batch.ue_id)
        return batch

    def premerge(
        self, raws: Sequence[bytes | None]
    ) -> tuple[ReportBatch | None, dict[int, tuple[int, int, int, int]]]:
        """Validate the plain protobuf decide requests of a micro-batch in one pass.

        Concatenated serialized messages parse as one message whose repeated fields are
        the concatenation (protobuf merge semantics), so well-formed requests with
        consistent lengths are parsed, converted and range-checked once. (Converting each
        message's columns instead, to skip the second parse, measured slower: a column's
        conversion costs ~5 µs whatever its length, a 64-UE message's parse ~9 µs.) Pure:
        no state is touched. Duplicate UE ids are not checked here (per request, by the
        caller). Fewer than two protobuf requests: nothing to merge, nothing parsed.

        Input
        -----
        raws : sequence of bytes or None
            Serialized ``DecideRequest`` per queued request; ``None`` for other kinds.

        Output
        ------
        batch : ReportBatch or None
            The merged reports, ``None`` when fewer than two requests qualify or the
            merged check finds any bad value.
        spans : dict[int, tuple[int, int, int, int]]
            Per index into ``raws``: (cell_id, slot, lo, hi), its rows of ``batch``.
            Requests not in it (malformed, any inconsistency) take the per-request path,
            which reports the precise error.
        """
        if sum(raw is not None for raw in raws) < 2:  # e.g. a lone stream message
            return None, {}  # nothing to merge: not parsed twice
        idx: list[int] = []
        parts: list[bytes] = []
        heads: list[tuple[int, int]] = []
        lens: list[int] = []
        absent: tuple[bool, ...] | None = None  # per optional column: empty in the requests
        for i, raw in enumerate(raws):
            if raw is None:
                continue
            try:
                msg = parse_message(pb.DecideRequest, raw)
            except InvalidArgument:
                continue
            n = len(msg.ue_id)
            if not 0 < n <= self.max_batch_ues or any(
                len(getattr(msg, k)) != n for k in _LEN_CHECKED
            ):
                continue
            lens_opt = [len(getattr(msg, k)) for k in OPTIONAL_COLUMNS]
            if any(ln not in (0, n) for ln in lens_opt):
                continue
            if msg.mcs_table not in (0, self.mcs_table) or msg.cell_id < 0 or msg.slot < 0:
                continue
            empty = tuple(ln == 0 for ln in lens_opt)
            if absent is None:
                absent = empty
            elif absent != empty:  # the merged columns would not line up
                continue
            idx.append(i)
            parts.append(raw)
            heads.append((msg.cell_id, msg.slot))
            lens.append(n)
        if len(idx) < 2 or absent is None:
            return None, {}
        merged = pb.DecideRequest.FromString(b"".join(parts))
        cols: dict[str, np.ndarray | None] = dict(request_columns(merged))
        total = sum(lens)
        for k, missing in zip(OPTIONAL_COLUMNS, absent, strict=True):
            if missing:
                cols[k] = None
        cells = np.repeat(np.array([h[0] for h in heads], dtype=np.int64), lens)
        if any(c.shape[0] != total for c in cols.values() if c is not None):
            return None, {}
        batch = fast_report_batch(cells, total, cols, self.n_mcs)
        if batch is None:
            return None, {}
        spans: dict[int, tuple[int, int, int, int]] = {}
        off = 0
        for i, (cell_id, slot), n in zip(idx, heads, lens, strict=True):
            spans[i] = (cell_id, slot, off, off + n)
            off += n
        return batch, spans

    def outcome(
        self, cell_id: Any, slot: Any, columns: dict[str, Any], slot_us: Any
    ) -> dict[str, np.ndarray]:
        """Validate one outcome report.

        Input
        -----
        cell_id, slot : int
            In [0, 2^63).
        columns : dict[str, Any]
            :data:`~service.wire.OUTCOME_COLUMNS`: ``ue_id`` (>= 0), ``delivered_bits``
            (bits, >= 0), ``first_tx_ack`` (1 ACK, 0 NACK, -1 not a first transmission),
            optional ``mcs`` (absent or empty: left out), all of ``ue_id``'s length.
        slot_us : int
            Slot duration in µs, 0 (default) .. 1000.

        Output
        ------
        columns : dict[str, np.ndarray]
            The present columns as ``int64 [n]``.

        Raises
        ------
        InvalidArgument
            Naming the first bad field.
        """
        check_id("cell_id", cell_id)
        check_id("slot", slot)
        if not isinstance(slot_us, int) or isinstance(slot_us, bool) or not 0 <= slot_us <= 1000:
            raise InvalidArgument(
                "slot_duration_us", f"must be 0 (default 500) .. 1000, got {slot_us!r}"
            )
        ranges: dict[str, tuple[int, int | None]] = {
            "ue_id": (0, None),
            "delivered_bits": (0, None),
            "first_tx_ack": (-1, 1),
            "mcs": (0, self.n_mcs - 1),
        }
        try:
            cols: dict[str, np.ndarray] = {}
            for name in OUTCOME_COLUMNS:
                v = columns.get(name)
                if v is None or (name == "mcs" and len(v) == 0):
                    if name == "mcs":
                        continue
                    raise ReportError(name, "missing field")
                cols[name] = int64_column(name, v)
            n = cols["ue_id"].shape[0]
            for name, arr in cols.items():
                if arr.shape[0] != n:
                    raise ReportError(name, f"length {arr.shape[0]} != ue_id length {n}")
            for name, arr in cols.items():
                lo, hi = ranges[name]
                if arr.size and (arr.min() < lo or (hi is not None and arr.max() > hi)):
                    raise ReportError(
                        name, f"value outside [{lo}, {hi if hi is not None else 'inf'}]"
                    )
        except ReportError as exc:
            raise InvalidArgument(exc.field, exc.message) from None
        return cols

    def release(self, cell_id: Any, ue_ids: Any) -> np.ndarray:
        """Validate a release: ``cell_id`` in [0, 2^63), at least one integer UE id.

        Output
        ------
        ue_ids : np.ndarray, int64 [n]

        Raises
        ------
        InvalidArgument
            Naming ``cell_id`` or ``ue_id``.
        """
        check_id("cell_id", cell_id)
        try:
            ues = int64_column("ue_id", ue_ids)
        except ReportError as exc:
            raise InvalidArgument(exc.field, exc.message) from None
        if ues.size == 0:
            raise InvalidArgument("ue_id", "no UE ids given")
        return ues
