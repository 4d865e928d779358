"""The raw per-UE report: what a gNB knows about one UE in one slot.

The simulator emits it, the gRPC/REST request carries it, the xApp's per-UE history
stores it. It is columnar (struct of arrays): field ``f`` of a batch of ``n`` UEs is a
numpy array of shape ``[n]``. One row = one UE of one cell in one slot.

Semantics per row:

- ``cqi`` / ``cqi_age_slots``: latest wideband CQI the UE reported (38.214 Table
  5.2.2.1-2 or -3, 0..15) and how many slots ago it was measured. ``cqi_age_slots = -1``
  means no CQI received yet (``cqi`` is then ignored).
- ``harq_ack`` / ``harq_mcs``: HARQ feedback that reached the link adapter in this slot:
  1 = ACK, 0 = NACK, -1 = no feedback this slot; ``harq_mcs`` is the MCS that
  transmission was sent with (ignored when ``harq_ack == -1``).
- ``harq_tx_index``: HARQ transmission index of the feedback in ``harq_ack``
  (0 = first transmission, 1 = first retransmission, ... up to 7); -1 = unknown. Optional
  (defaults to -1 for every row); ignored when ``harq_ack == -1``. The OLLA loop
  (:mod:`linkadapt.olla`) steps only on first-transmission (or unknown) feedback.
- ``rank`` / ``n_prb`` / ``n_symbols``: the allocation of the transmission about to be
  decided (layers 1..8, PRBs 1..275, PDSCH symbols 1..14).
- ``buffer_bytes``: bytes waiting in the UE's downlink buffer, -1 if unknown / full buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from linkadapt.nr import MAX_LAYERS, MAX_PRB

MAX_CQI = 15  # CQI tables 38.214 Table 5.2.2.1-2/-3: indices 0..15
MAX_SYMBOLS = 14  # OFDM symbols per slot, normal cyclic prefix

# field name -> dtype of the columnar batch
REPORT_DTYPES: dict[str, np.dtype] = {
    "cell_id": np.dtype(np.int64),
    "ue_id": np.dtype(np.int64),
    "cqi": np.dtype(np.int16),
    "cqi_age_slots": np.dtype(np.int32),
    "harq_ack": np.dtype(np.int8),
    "harq_mcs": np.dtype(np.int16),
    "rank": np.dtype(np.int16),
    "n_prb": np.dtype(np.int32),
    "n_symbols": np.dtype(np.int16),
    "buffer_bytes": np.dtype(np.int64),
    "harq_tx_index": np.dtype(np.int16),
}


_I64_MAX = int(np.iinfo(np.int64).max)
# Valid range per field (inclusive). harq_mcs's upper bound is the MCS table's n_mcs − 1
# (None here); cqi is checked only where a CQI exists (cqi_age_slots ≥ 0), harq_mcs only
# where there is feedback (harq_ack ≥ 0), and so is harq_tx_index. The xApp's vectorized
# pre-check reads this too.
FIELD_RANGES: dict[str, tuple[int, int | None]] = {
    "cell_id": (0, _I64_MAX),
    "ue_id": (0, _I64_MAX),
    "cqi": (0, MAX_CQI),
    "cqi_age_slots": (-1, 1_000_000),
    "harq_ack": (-1, 1),
    "harq_mcs": (0, None),
    "rank": (1, MAX_LAYERS),
    "n_prb": (1, MAX_PRB),
    "n_symbols": (1, MAX_SYMBOLS),
    "buffer_bytes": (-1, _I64_MAX),
    "harq_tx_index": (-1, 7),
}
# optional columns and their value when absent
OPTIONAL_DEFAULTS: dict[str, int] = {"buffer_bytes": -1, "harq_tx_index": -1}


class ReportError(ValueError):
    """A report batch is malformed; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReportBatch:
    """Columnar reports of ``n`` UEs for one slot; every field has shape ``[n]``.

    ``harq_tx_index`` may be omitted when constructing directly: it then becomes -1
    (unknown) for every row.
    """

    cell_id: np.ndarray
    ue_id: np.ndarray
    cqi: np.ndarray
    cqi_age_slots: np.ndarray
    harq_ack: np.ndarray
    harq_mcs: np.ndarray
    rank: np.ndarray
    n_prb: np.ndarray
    n_symbols: np.ndarray
    buffer_bytes: np.ndarray
    harq_tx_index: np.ndarray = None  # type: ignore[assignment]  # None → all -1

    def __post_init__(self) -> None:
        if self.harq_tx_index is None:
            n = self.ue_id.shape[0]
            object.__setattr__(
                self, "harq_tx_index", np.full(n, -1, dtype=REPORT_DTYPES["harq_tx_index"])
            )

    def __len__(self) -> int:
        return int(self.ue_id.shape[0])

    @classmethod
    def from_arrays(cls, n_mcs: int = 28, **arrays: npt.ArrayLike | None) -> ReportBatch:
        """Build and validate a batch from array-likes (lists, numpy arrays).

        ``buffer_bytes`` and ``harq_tx_index`` default to -1 (unknown), ``cell_id`` to 0.
        Raises :class:`ReportError` naming the first bad field.
        """
        arrays.setdefault("cell_id", None)
        for name in OPTIONAL_DEFAULTS:
            arrays.setdefault(name, None)
        unknown = set(arrays) - set(REPORT_DTYPES)
        if unknown:
            name = sorted(unknown)[0]
            raise ReportError(name, "unknown field")
        missing = [k for k in REPORT_DTYPES if k not in arrays]
        if missing:
            raise ReportError(missing[0], "missing field")
        if arrays["ue_id"] is None:
            raise ReportError("ue_id", "missing field")
        n = np.asarray(arrays["ue_id"]).shape[0] if np.ndim(arrays["ue_id"]) == 1 else -1
        if n < 0:
            raise ReportError("ue_id", "must be a 1-D array")
        defaults = {"cell_id": 0, **OPTIONAL_DEFAULTS}
        columns: dict[str, np.ndarray] = {}
        for name, dtype in REPORT_DTYPES.items():
            value = arrays[name]
            if value is None:
                value = np.full(n, defaults[name], dtype=dtype)
            columns[name] = _as_column(name, value, dtype, n)
        batch = cls(**columns)
        batch.validate(n_mcs=n_mcs)
        return batch

    def validate(self, n_mcs: int = 28) -> None:
        """Raise :class:`ReportError` for the first out-of-range field."""
        n = len(self)
        for f in fields(self):
            col = getattr(self, f.name)
            if col.ndim != 1 or col.shape[0] != n:
                raise ReportError(f.name, f"length {col.shape[0]} != ue_id length {n}")
        feedback = self.harq_ack >= 0
        where = {"cqi": self.cqi_age_slots >= 0, "harq_mcs": feedback, "harq_tx_index": feedback}
        for name in (
            "cqi",
            "cqi_age_slots",
            "harq_ack",
            "harq_mcs",
            "harq_tx_index",
            "rank",
            "n_prb",
            "n_symbols",
            "buffer_bytes",
            "cell_id",
            "ue_id",
        ):
            low, high = FIELD_RANGES[name]
            col = getattr(self, name)
            if name in where:
                col = col[where[name]]
            _check_range(name, col, low, n_mcs - 1 if high is None else high)

    def take(self, index: np.ndarray) -> ReportBatch:
        """Rows ``index`` of this batch (a boolean mask or integer indices)."""
        return ReportBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def as_dict(self) -> dict[str, np.ndarray]:
        """The columns by field name (the arrays themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _as_column(name: str, value: npt.ArrayLike, dtype: np.dtype, n: int) -> np.ndarray:
    raw = np.asarray(value)
    if raw.ndim != 1:
        raise ReportError(name, "must be a 1-D array")
    if raw.shape[0] != n:
        raise ReportError(name, f"length {raw.shape[0]} != ue_id length {n}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise ReportError(name, "NaN or infinite value")
        if np.any(raw != np.round(raw)):
            raise ReportError(name, "must be integers")
    elif raw.dtype.kind not in "iub" and n > 0:
        raise ReportError(name, f"must be integers, got {raw.dtype}")
    info = np.iinfo(dtype)
    if n and (raw.min() < info.min or raw.max() > info.max):
        raise ReportError(name, f"value out of range for {dtype}")
    return raw.astype(dtype, copy=False)


def _check_range(name: str, col: np.ndarray, low: int, high: int) -> None:
    if col.size and (col.min() < low or col.max() > high):
        bad = col[(col < low) | (col > high)][0]
        raise ReportError(name, f"value {bad} outside [{low}, {high}]")
