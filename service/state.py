"""Per-UE state: rows of the shared :class:`linkadapt.features.FeatureHistory` (and of the
OLLA fallback) keyed by (cell, UE), with idle-TTL expiry, a per-cell quota and a hard cap.

Room for new UEs is made, never refused: a cell at its quota (``max_per_cell``) loses its
least recently seen UEs, and a full table first forgets idle UEs, then the least recently
seen UEs of any cell; a request's own known UEs are never the ones evicted. So whoever
fills the table with made-up UEs only pushes out the UEs nobody reported for longest (a
cell's live UEs report every slot), and a legitimate cell's request with new UEs is still
admitted whole. Only a request with more UEs than a cell's quota is refused. An evicted UE
starts again with a fresh history if it comes back.

The (cell, UE) → row map is one sorted ``int64`` array of UE ids per cell plus the rows in
the same order, so a request (one cell, many UEs) maps its ids with a single
``np.searchsorted``; no Python loop per UE. Rows are recycled through a free stack.

Threads: the inference worker admits (index + row allocation) and folds reports into
the history/OLLA arrays; the event loop releases UEs, expires idle ones and reports
flushed batches. The data plane serializes every index operation with one lock; the
history/OLLA arrays are only touched by the worker (:meth:`UeStateTable.prepare_rows`
sizes and resets them there).

Row reuse: a request's rows are looked up (and new UEs admitted) before its reports are
folded in. A row freed by a release or TTL expiry in between must not be handed to a new
UE before every request admitted earlier has been processed, so freed rows wait in a
quarantine tagged with the admission sequence number and return to the free stack only
once :meth:`UeStateTable.flushed` reports that sequence processed.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from linkadapt.baselines import OllaPolicy
from linkadapt.features import FeatureHistory
from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch


class CapacityError(RuntimeError):
    """The request alone has more UEs than a cell may hold (``max_per_cell``)."""


class UnknownUeError(LookupError):
    """Release named a cell or UE that is not tracked; ``field`` is cell_id or ue_id."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class _CellIndex:
    ues: np.ndarray  # sorted int64 UE ids
    rows: np.ndarray  # int64 rows, same order


_EMPTY = np.zeros(0, dtype=np.int64)


class UeStateTable:
    """Rows for (cell, UE) pairs; owns the feature history and the OLLA fallback state."""

    def __init__(
        self,
        *,
        max_tracked: int,
        ttl_seconds: float,
        mcs_table: int = 2,
        olla_bler_target: float = 0.1,
        olla_delta_up_db: float = 1.0,
        initial_capacity: int = 1024,
        max_per_cell: int | None = None,
    ) -> None:
        self.max_tracked = max_tracked
        self.max_per_cell = min(max_per_cell or max_tracked, max_tracked)
        self.ttl_seconds = ttl_seconds
        cap = max(1, min(initial_capacity, max_tracked))
        self.history = FeatureHistory(cap, mcs_table=mcs_table)
        self.olla = OllaPolicy(
            cap, bler_target=olla_bler_target, delta_up_db=olla_delta_up_db, mcs_table=mcs_table
        )
        self.capacity = cap
        self.row_cell = np.full(cap, -1, dtype=np.int64)
        self.row_ue = np.full(cap, -1, dtype=np.int64)
        self.last_seen = np.zeros(cap, dtype=np.float64)
        self.in_use = np.zeros(cap, dtype=bool)
        # free rows: a stack in an int64 array (top at [_n_free - 1]; low rows first), not
        # a list of Python ints (36 bytes a row, and a list rebuilt on every grow)
        self._free = np.arange(cap - 1, -1, -1, dtype=np.int64)
        self._n_free = cap
        self._quarantine: deque[tuple[int, np.ndarray]] = deque()
        self.cells: dict[int, _CellIndex] = {}
        self.n_tracked = 0
        self.seq = 0  # admissions so far
        self.flushed_seq = 0  # admissions whose reports were folded in
        # UEs forgotten inside admit (the worker's), not yet counted in the metrics (the
        # event loop's): taken by take_forgotten() on each TTL sweep
        self._forgotten = {"expired": 0, "cell_quota": 0, "capacity": 0}

    # ------------------------------------------------------------------ lookup / admit
    def lookup(self, cell_id: int, ue_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``ue_ids`` (-1 where unknown) and the boolean "known" mask. No mutation."""
        idx = self.cells.get(cell_id)
        if idx is None or idx.ues.size == 0:
            return np.full(ue_ids.shape[0], -1, dtype=np.int64), np.zeros(ue_ids.shape[0], bool)
        pos = np.searchsorted(idx.ues, ue_ids)
        pos_c = np.minimum(pos, idx.ues.size - 1)
        known = idx.ues[pos_c] == ue_ids
        rows = np.where(known, idx.rows[pos_c], -1)
        return rows, known

    def admit(
        self, cell_id: int, ue_ids: np.ndarray, now: float
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows for unique ``ue_ids`` of one cell, allocating new UEs.

        Returns (rows, newly allocated rows, admission sequence number); the new rows'
        history must be reset with :meth:`prepare_rows` before their reports are folded
        in. Room for new UEs is made by evicting (see the module docstring); raises
        :class:`CapacityError` without changing anything when the request alone has more
        UEs than ``max_per_cell``.
        """
        if ue_ids.shape[0] > self.max_per_cell:
            raise CapacityError(
                f"{ue_ids.shape[0]} UEs in one request exceed the per-cell quota "
                f"max_ues_per_cell={self.max_per_cell}"
            )
        rows, known = self.lookup(cell_id, ue_ids)
        n_new = int(ue_ids.shape[0] - np.count_nonzero(known))
        if n_new:
            self._make_room(cell_id, n_new, rows[known], now)
            new_rows = self._allocate(n_new)
            new_mask = ~known
            rows[new_mask] = new_rows
            new_ues = ue_ids[new_mask]
            self.row_cell[new_rows] = cell_id
            self.row_ue[new_rows] = new_ues
            self.in_use[new_rows] = True
            self.n_tracked += n_new
            self._index_insert(cell_id, new_ues, new_rows)
        else:
            new_rows = _EMPTY
        self.last_seen[rows] = now
        self.seq += 1
        return rows, new_rows, self.seq

    def prepare_rows(self, new_rows: np.ndarray) -> None:
        """Size the history/OLLA arrays to the table and reset freshly admitted rows.

        Called by whoever folds reports in (the inference worker) before using rows
        returned as new by :meth:`admit`; the index side never touches those arrays.
        """
        if self.history.capacity < self.capacity:
            self.history.grow(self.capacity)
            self.olla.grow(self.capacity)
        if new_rows.size:
            self.history.reset(new_rows)
            self.olla.reset(new_rows)

    def flushed(self, seq: int) -> None:
        """Every admission up to ``seq`` has been folded into the history."""
        if seq > self.flushed_seq:
            self.flushed_seq = seq
        q = self._quarantine
        while q and q[0][0] <= self.flushed_seq:
            self._push_free(q.popleft()[1])

    # ------------------------------------------------------------------ removal
    def release(self, cell_id: int, ue_ids: np.ndarray) -> int:
        """Forget UEs of one cell; unknown cell/UE raises :class:`UnknownUeError` first."""
        idx = self.cells.get(cell_id)
        if idx is None:
            raise UnknownUeError("cell_id", f"cell {cell_id} has no tracked UEs")
        rows, known = self.lookup(cell_id, ue_ids)
        if not known.all():
            bad = ue_ids[~known][0]
            raise UnknownUeError("ue_id", f"UE {bad} is not tracked in cell {cell_id}")
        if np.unique(ue_ids).size != ue_ids.size:
            raise UnknownUeError("ue_id", "duplicate UE id")
        self._remove(rows)
        return int(rows.size)

    def _make_room(self, cell_id: int, n_new: int, keep: np.ndarray, now: float) -> None:
        """Evict so that ``n_new`` more UEs of ``cell_id`` fit its quota and the table;
        rows in ``keep`` (the request's known UEs) stay. Enough others exist: the request
        has at most ``max_per_cell`` <= ``max_tracked`` UEs."""
        idx = self.cells.get(cell_id)
        over = (0 if idx is None else idx.ues.size) + n_new - self.max_per_cell
        if over > 0:
            assert idx is not None
            self._evict(idx.rows[~np.isin(idx.rows, keep)], over, "cell_quota")
        if self.n_tracked + n_new > self.max_tracked:
            self._forgotten["expired"] += self.expire(now)
            over = self.n_tracked + n_new - self.max_tracked
            if over > 0:
                rows = np.flatnonzero(self.in_use)
                self._evict(rows[~np.isin(rows, keep)], over, "capacity")

    def _evict(self, candidates: np.ndarray, n: int, reason: str) -> None:
        """Forget the ``n`` least recently seen of ``candidates`` (rows)."""
        if n < candidates.size:
            candidates = candidates[np.argpartition(self.last_seen[candidates], n - 1)[:n]]
        self._remove(candidates)
        self._forgotten[reason] += int(candidates.size)

    def take_forgotten(self) -> dict[str, int]:
        """UEs forgotten inside :meth:`admit` since the last call, by reason ("expired",
        "cell_quota", "capacity"), and reset."""
        out, self._forgotten = self._forgotten, dict.fromkeys(self._forgotten, 0)
        return out

    def expire(self, now: float) -> int:
        """Forget UEs idle for more than ``ttl_seconds``; returns how many."""
        stale = np.flatnonzero(self.in_use & (self.last_seen < now - self.ttl_seconds))
        if stale.size:
            self._remove(stale)
        return int(stale.size)

    def _remove(self, rows: np.ndarray) -> None:
        cells = self.row_cell[rows]
        for cell in np.unique(cells).tolist():
            idx = self.cells[cell]
            gone = self.row_ue[rows[cells == cell]]
            keep = ~np.isin(idx.ues, gone)
            if keep.any():
                self.cells[cell] = _CellIndex(idx.ues[keep], idx.rows[keep])
            else:
                del self.cells[cell]
        self.in_use[rows] = False
        self.row_cell[rows] = -1
        self.row_ue[rows] = -1
        self.n_tracked -= int(rows.size)
        if self.flushed_seq >= self.seq:
            self._push_free(rows)
        else:
            self._quarantine.append((self.seq, rows.copy()))

    # ------------------------------------------------------------------ internals
    def _allocate(self, n: int) -> np.ndarray:
        if self._n_free < n:
            quarantined = sum(r.size for _, r in self._quarantine)
            need = self.n_tracked + quarantined + n
            new_cap = min(max(need, 2 * self.capacity), self.max_tracked + quarantined)
            self._grow(max(new_cap, need))
        top = self._n_free
        self._n_free = top - n
        return self._free[top - n : top][::-1].copy()

    def _push_free(self, rows: np.ndarray) -> None:
        """Back on the free stack, ``rows[0]`` on top (the next one handed out)."""
        top = self._n_free
        self._free[top : top + rows.size] = rows[::-1]
        self._n_free = top + rows.size

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        if capacity <= old:
            return
        extra = capacity - old
        self.row_cell = np.concatenate([self.row_cell, np.full(extra, -1, np.int64)])
        self.row_ue = np.concatenate([self.row_ue, np.full(extra, -1, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.zeros(extra)])
        self.in_use = np.concatenate([self.in_use, np.zeros(extra, bool)])
        # the new rows go under the free ones (handed out after them), as before
        free = np.empty(capacity, dtype=np.int64)
        free[:extra] = np.arange(capacity - 1, old - 1, -1)
        free[extra : extra + self._n_free] = self._free[: self._n_free]
        self._free = free
        self._n_free += extra
        self.capacity = capacity

    def _index_insert(self, cell_id: int, ues: np.ndarray, rows: np.ndarray) -> None:
        idx = self.cells.get(cell_id)
        if idx is None:
            order = np.argsort(ues, kind="stable")
            self.cells[cell_id] = _CellIndex(ues[order].astype(np.int64), rows[order])
            return
        all_ues = np.concatenate([idx.ues, ues])
        all_rows = np.concatenate([idx.rows, rows])
        order = np.argsort(all_ues, kind="stable")
        self.cells[cell_id] = _CellIndex(all_ues[order], all_rows[order])


def warm_up(mcs_table: int, n_mcs: int) -> None:
    """Exercise the state/encoder/OLLA path once on a scratch table (first-call costs
    off the hot path)."""
    scratch = UeStateTable(
        max_tracked=64, ttl_seconds=1.0, mcs_table=mcs_table, initial_capacity=64
    )
    n = 64
    batch = ReportBatch.from_arrays(
        n_mcs=n_mcs,
        ue_id=np.arange(n),
        cqi=np.full(n, 9),
        cqi_age_slots=np.full(n, 2),
        harq_ack=np.ones(n, np.int8),
        harq_mcs=np.full(n, 10),
        rank=np.ones(n),
        n_prb=np.full(n, 50),
        n_symbols=np.full(n, 12),
    )
    rows, new_rows, _ = scratch.admit(0, batch.ue_id, time.monotonic())
    scratch.prepare_rows(new_rows)
    scratch.history.update(rows, batch)
    scratch.olla.act(DecisionBatch(obs=scratch.history.encode(rows), reports=batch, rows=rows))
