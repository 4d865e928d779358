"""Last-k rings of small integers, packed into whole 64-bit words per row.

:class:`~linkadapt.features.FeatureHistory` keeps each UE's last 8 ACK/NACKs (int8) and
MCSs (int16). Stored as ``[k, rows]`` arrays, pushing a value into the rings of a batch
of rows gathers and scatters ``k`` strided values per row, a cache line each; packed as
one (int8 × 8) or two (int16 × 8) 64-bit words per row, a row's ring moves with one
16-byte copy and is pushed with integer shifts.

Element ``i`` (0 = newest) sits at bytes ``[i·size, (i + 1)·size)`` of the row's words, so
:attr:`PackedRing.view` is the plain ``[k, rows]`` array the rest of the code (export,
import, reset, tests) reads and writes, without a copy.
"""

from __future__ import annotations

import sys

import numpy as np

WORD_BYTES = 8
# the shift-based push assumes element 0 in the low bits of the first word; elsewhere the
# byte-moving push (the same result) is used
LITTLE_ENDIAN = sys.byteorder == "little"


class PackedRing:
    """``length`` values of ``dtype`` per row for ``capacity`` rows, newest first.

    Parameters
    ----------
    capacity : int
        Rows; :meth:`grow` adds more (new rows are all zeros).
    length : int
        Values per row; ``length · itemsize`` must be a multiple of 8 bytes.
    dtype : integer dtype
    """

    def __init__(self, capacity: int, length: int, dtype: np.dtype | type) -> None:
        self.dtype = np.dtype(dtype)
        self.length = length
        nbytes = length * self.dtype.itemsize
        if nbytes % WORD_BYTES:
            raise ValueError(f"{length} x {self.dtype} is not a whole number of 64-bit words")
        self.words = nbytes // WORD_BYTES
        self._row = np.dtype((np.void, nbytes))  # one row's words as one element
        self._bits = 8 * self.dtype.itemsize
        self._unsigned = np.dtype(f"u{self.dtype.itemsize}")
        self.packed = np.zeros((capacity, self.words), dtype=np.uint64)
        self._views()

    def _views(self) -> None:
        cap = self.packed.shape[0]
        self._rows = self.packed.view(self._row).reshape(cap)
        self.view = self.packed.view(self.dtype).reshape(cap, self.length).T  # [length, cap]

    @property
    def capacity(self) -> int:
        return int(self.packed.shape[0])

    def grow(self, capacity: int) -> None:
        """Extend to ``capacity`` rows (zeros); existing rows keep their values."""
        extra = capacity - self.capacity
        if extra > 0:
            fresh = np.zeros((extra, self.words), dtype=np.uint64)
            self.packed = np.concatenate([self.packed, fresh])
            self._views()

    def take(self, rows: np.ndarray | slice) -> np.ndarray:
        """uint64 ``[k, words]``: the packed rings of ``rows`` (a copy)."""
        if isinstance(rows, slice):
            return self.packed[rows].copy()
        return self._rows.take(rows).view(np.uint64).reshape(-1, self.words)

    def values(self, packed: np.ndarray) -> np.ndarray:
        """``[k, length]`` of ``dtype``: what :meth:`take` returned, as values (a view)."""
        return packed.view(self.dtype).reshape(packed.shape[0], self.length)

    def put(self, rows: np.ndarray | slice, packed: np.ndarray) -> None:
        """Store ``packed`` (uint64 ``[k, words]``) as the rings of ``rows``."""
        if isinstance(rows, slice):
            self.packed[rows] = packed
        else:
            self._rows[rows] = packed.view(self._row).reshape(-1)

    def push(self, rows: np.ndarray | slice, newest: np.ndarray) -> None:
        """Push ``newest`` (``[k]``, one per row of ``rows``, unique) into the rings of
        ``rows``: each value moves one place older, the oldest drops out."""
        self.put(rows, pushed(self.take(rows), newest.astype(self.dtype, copy=False), self))

    def reset(self, rows: np.ndarray) -> None:
        """Zero the rings of ``rows``."""
        self.packed[rows] = 0


def pushed(packed: np.ndarray, newest: np.ndarray, ring: PackedRing) -> np.ndarray:
    """The packed rings ``packed`` (uint64 ``[k, words]``) with ``newest`` (``[k]`` of the
    ring's dtype) pushed in front: integer shifts across the words."""
    if not LITTLE_ENDIAN:
        return pushed_bytes(packed, newest, ring)
    bits = np.uint64(ring._bits)
    back = np.uint64(64 - ring._bits)
    out = np.left_shift(packed, bits)
    out[:, 0] |= newest.view(ring._unsigned).astype(np.uint64)
    for j in range(1, ring.words):  # what each word shifted out moves to the next
        out[:, j] |= packed[:, j - 1] >> back
    return out


def pushed_bytes(packed: np.ndarray, newest: np.ndarray, ring: PackedRing) -> np.ndarray:
    """:func:`pushed` by moving bytes: correct whatever the byte order (slower)."""
    k, size, nbytes = packed.shape[0], ring.dtype.itemsize, ring.words * WORD_BYTES
    src = packed.view(np.uint8).reshape(k, nbytes)
    out = np.empty_like(packed)
    dst = out.view(np.uint8).reshape(k, nbytes)
    dst[:, size:] = src[:, :-size]
    dst[:, :size] = np.ascontiguousarray(newest).view(np.uint8).reshape(k, size)
    return out
