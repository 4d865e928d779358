"""Per-cell state handover through Redis (the near-RT RIC's shared data layer).

Behind a cell-affine proxy (``deploy/haproxy``) a cell's calls reach one replica, which
holds its UEs' history (feature ring buffers, the OLLA offsets). When that replica drains
(SIGTERM: scale-in, rolling update, eviction) its cells move to others, which would start
them from empty history and decide differently for a while. With ``state_handover_url``:

- **drain**: the moment the replica stops reporting ready it writes every cell it holds to
  Redis (one key per cell, ``state_handover_ttl_seconds`` TTL, at most
  ``state_handover_max_ues`` UEs), and while it still serves during the drain window it
  rewrites each cell it decides for *before* answering, so the snapshot is never older
  than the last answer the gNB got from this replica;
- **restore**: a replica that gets a call for a cell it holds no UE of takes that cell's
  snapshot (``GETDEL``: a snapshot is used once, never twice) before admitting the call.

Both run in the inference worker (the only thread that touches the history arrays), so a
snapshot is a consistent cut between micro-batches: :meth:`StateHandover.attach` hooks the
restore into :class:`~service.decide.Decider` admission and wraps its ``process`` for the
micro-batcher (:mod:`service.batcher`), which the drain's snapshot request goes through.
A restore costs one Redis round trip per newly seen cell, bounded by
``state_handover_timeout_seconds``; after a Redis error restores pause for
:data:`PAUSE_AFTER_ERROR_S` (cells start fresh, as without handover).

Not covered: a cell that moves without a drain (a replica killed, or a new replica taking
cells on scale-out) starts fresh on its new replica; the old replica's copy expires with
its UEs' idle TTL.

Snapshot format: an uncompressed ``.npz`` (no pickle) with the UE ids, every
:meth:`linkadapt.features.FeatureHistory.export_rows` field and the fallback OLLA offset,
plus the format, observation schema and MCS table it was made for; anything else is
ignored on restore.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import Counter

from linkadapt.features import OBS_SCHEMA_VERSION
from service.batcher import Process, Processed, Request
from service.config import Settings
from service.decide import Decider, DecideResult
from service.metrics import PREFIX, ServiceMetrics
from service.state import CapacityError, UeStateTable

log = logging.getLogger("service.state_handover")

FORMAT = 1
KEY_PREFIX = "ran-distill:state:v1:cell:"
PAUSE_AFTER_ERROR_S = 5.0
BYTES_PER_UE_MAX = 512  # a snapshot larger than this per UE (+ 64 KiB) is not read
_META = ("format", "obs_schema", "mcs_table", "ue_id", "fallback_offset_db")


class SnapshotError(ValueError):
    """A snapshot that this replica cannot use (other format, schema or MCS table)."""


def cell_key(cell_id: int) -> str:
    return f"{KEY_PREFIX}{cell_id}"


def cell_arrays(state: UeStateTable, cell_id: int, mcs_table: int) -> dict[str, Any] | None:
    """Copies of one cell's per-UE state (None when it has no UE). Worker thread, with the
    index lock held (rows must not be released meanwhile); cheap numpy gathers."""
    idx = state.cells.get(cell_id)
    if idx is None or idx.ues.size == 0:
        return None
    arrays: dict[str, Any] = {
        "format": np.int64(FORMAT),
        "obs_schema": np.array(OBS_SCHEMA_VERSION),
        "mcs_table": np.int64(mcs_table),
        "ue_id": idx.ues,
        "fallback_offset_db": state.olla.loop.offset_db[idx.rows],
    }
    for k, v in state.history.export_rows(idx.rows).items():
        arrays[f"h_{k}"] = v
    return arrays


def to_npz(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def encode_cell(state: UeStateTable, cell_id: int, mcs_table: int) -> tuple[bytes, int] | None:
    """The snapshot of one cell's UEs and their count (None when the cell has none)."""
    arrays = cell_arrays(state, cell_id, mcs_table)
    return None if arrays is None else (to_npz(arrays), int(arrays["ue_id"].size))


def decode_cell(blob: bytes, mcs_table: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(UE ids, fallback OLLA offsets, history fields) of a snapshot; :class:`SnapshotError`
    when it was made for another format, observation schema or MCS table, or is malformed."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise SnapshotError(f"not a snapshot ({exc})") from None
    missing = [k for k in _META if k not in arrays]
    if missing:
        raise SnapshotError(f"missing {missing}")
    if int(arrays["format"]) != FORMAT:
        raise SnapshotError(f"format {int(arrays['format'])} != {FORMAT}")
    if str(arrays["obs_schema"]) != OBS_SCHEMA_VERSION:
        raise SnapshotError(f"observation schema {arrays['obs_schema']} != {OBS_SCHEMA_VERSION}")
    if int(arrays["mcs_table"]) != mcs_table:
        raise SnapshotError(f"MCS table {int(arrays['mcs_table'])} != {mcs_table}")
    ues = np.asarray(arrays["ue_id"])
    n = ues.shape[0]
    if ues.ndim != 1 or ues.dtype != np.int64 or np.unique(ues).size != n:
        raise SnapshotError("ue_id must be unique int64 ids")
    fallback = np.asarray(arrays["fallback_offset_db"], dtype=np.float64)
    if fallback.shape != (n,):
        raise SnapshotError("fallback_offset_db does not match ue_id")
    history = {k[2:]: v for k, v in arrays.items() if k.startswith("h_")}
    return ues, fallback, history


class StateHandover:
    """Writes cells to Redis on drain and restores them on first sight (see module doc)."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics, client: Any = None) -> None:
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise RuntimeError(
                    "state_handover_url needs the redis client: pip install 'ran-distill[handover]'"
                ) from exc
            timeout = settings.state_handover_timeout_seconds
            client = redis.Redis.from_url(
                settings.state_handover_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        self.redis = client
        self.ttl_ms = int(settings.state_handover_ttl_seconds * 1000)
        self.max_ues = settings.state_handover_max_ues
        self.max_blob = settings.max_tracked_ues * BYTES_PER_UE_MAX + 65536
        self.mcs_table = settings.mcs_table
        self._pause_until = 0.0
        self._written: dict[int, int] = {}  # this drain: cell → UEs written (tracked cells)
        self.draining = False  # worker side: set by the drain's "handover" request
        self._ops = Counter(
            f"{PREFIX}_state_handover_operations",
            "Redis state handover operations by kind (snapshot: a cell written on drain; "
            "restore: a newly seen cell looked up) and result (ok, miss: no snapshot, "
            "skipped: over state_handover_max_ues / tracked-UE cap / paused, invalid, error)",
            ["op", "result"],
            registry=metrics.registry,
        )
        self._ues = Counter(
            f"{PREFIX}_state_handover_ues",
            "UEs written to / restored from Redis",
            ["op"],
            registry=metrics.registry,
        )

    # ------------------------------------------------------------------ worker wiring
    def attach(self, decider: Decider) -> Process:
        """Hook into ``decider``: a cell it sees with no tracked UE is restored before its
        admission. Returns the micro-batcher's ``process``: the decider's, plus the drain.

        The drain's ``"handover"`` request (queued by
        :meth:`service.dataplane.DataPlane.begin_drain`) writes every held cell, after the
        decisions of the micro-batch it came in; from then on, the cells each micro-batch
        decided for are written again before its answers go out, so a snapshot is never
        older than what the gNB was told."""
        state, lock = decider.state, decider.lock
        decider.restore_cell = lambda cell_id: self.restore(state, lock, cell_id)

        def process(requests: list[Request]) -> Processed:
            drains = [r for r in requests if r.kind == "handover"]
            if drains:
                requests = [r for r in requests if r.kind != "handover"]
            done = decider.process(requests) if requests else Processed()
            if drains:
                self.draining = True
                written = self.snapshot_all(state, lock)
                done.outcomes.extend((r.fut, written) for r in drains)
            elif self.draining:
                decided = {res.cell_id for _, res in done.outcomes if isinstance(res, DecideResult)}
                if decided:
                    self.snapshot_cells(state, lock, decided)
            return done

        return process

    # ------------------------------------------------------------------ drain side
    def snapshot_all(self, state: UeStateTable, lock: threading.Lock) -> int:
        """Write every held cell (largest budget first come, first served); UEs written."""
        self._written.clear()
        with lock:
            cells = list(state.cells)
        written = self.snapshot_cells(state, lock, cells)
        log.info(
            "state handover: cells written to Redis",
            extra={"cells": len(self._written), "ues": written, "held_cells": len(cells)},
        )
        return written

    def snapshot_cells(
        self, state: UeStateTable, lock: threading.Lock, cells: Iterable[int]
    ) -> int:
        """Write ``cells`` (one pipeline), within the drain's UE budget; UEs written."""
        taken: list[tuple[int, dict[str, Any], int]] = []
        budget = self.max_ues - sum(self._written.values())
        with lock:  # copies only; the encoding runs outside the index lock
            for cell in cells:
                arrays = cell_arrays(state, cell, self.mcs_table)
                if arrays is None:
                    continue
                n = int(arrays["ue_id"].size)
                extra = n - self._written.get(cell, 0)
                if extra > budget:
                    self._ops.labels("snapshot", "skipped").inc()
                    continue
                budget -= extra
                taken.append((cell, arrays, n))
        if not taken:
            return 0
        blobs = [(cell, to_npz(arrays), n) for cell, arrays, n in taken]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for cell, blob, _ in blobs:
                pipe.set(cell_key(cell), blob, px=self.ttl_ms)
            pipe.execute()
        except Exception as exc:  # Redis down or slow: the cells start fresh elsewhere
            self._ops.labels("snapshot", "error").inc(len(blobs))
            log.warning("state handover: snapshot failed", extra={"error": str(exc)})
            return 0
        n_ues = 0
        for cell, _, n in blobs:
            self._written[cell] = n
            n_ues += n
        self._ops.labels("snapshot", "ok").inc(len(blobs))
        self._ues.labels("snapshot").inc(n_ues)
        return n_ues

    # ------------------------------------------------------------------ restore side
    def restore(self, state: UeStateTable, lock: threading.Lock, cell_id: int) -> int:
        """Take ``cell_id``'s snapshot, if any, into ``state`` (the cell holds no UE yet);
        UEs restored. Worker thread, before the call's admission."""
        now = time.monotonic()
        if now < self._pause_until:
            self._ops.labels("restore", "skipped").inc()
            return 0
        try:
            blob = self.redis.getdel(cell_key(cell_id))
        except Exception as exc:
            self._pause_until = now + PAUSE_AFTER_ERROR_S
            self._ops.labels("restore", "error").inc()
            log.warning(
                "state handover: restore failed, restores paused",
                extra={"cell_id": cell_id, "error": str(exc), "pause_s": PAUSE_AFTER_ERROR_S},
            )
            return 0
        if blob is None:
            self._ops.labels("restore", "miss").inc()
            return 0
        try:
            if len(blob) > self.max_blob:
                raise SnapshotError(f"{len(blob)} bytes")
            ues, fallback, history = decode_cell(blob, self.mcs_table)
            return self._apply(state, lock, cell_id, ues, fallback, history)
        except (SnapshotError, ValueError) as exc:
            self._ops.labels("restore", "invalid").inc()
            log.warning(
                "state handover: unusable snapshot ignored",
                extra={"cell_id": cell_id, "error": str(exc)},
            )
            return 0

    def _apply(
        self,
        state: UeStateTable,
        lock: threading.Lock,
        cell_id: int,
        ues: np.ndarray,
        fallback: np.ndarray,
        history: dict[str, Any],
    ) -> int:
        with lock:
            if cell_id in state.cells:  # cannot happen (only the worker admits); be safe
                self._ops.labels("restore", "skipped").inc()
                return 0
            order = np.argsort(ues, kind="stable")
            try:
                rows, new_rows, _ = state.admit(cell_id, ues[order], time.monotonic())
            except CapacityError:
                self._ops.labels("restore", "skipped").inc()
                return 0
        state.prepare_rows(new_rows)  # sizes the arrays, resets the rows
        try:
            state.history.import_rows(rows, {k: v[order] for k, v in history.items()})
        except ValueError:
            with lock:  # leave no half-restored UEs behind
                state.release(cell_id, ues[order])
            raise
        state.olla.loop.offset_db[rows] = fallback[order]
        self._ops.labels("restore", "ok").inc()
        self._ues.labels("restore").inc(int(rows.size))
        return int(rows.size)


def make_handover(settings: Settings, metrics: ServiceMetrics) -> StateHandover | None:
    """The handover of ``settings`` (None when ``state_handover_url`` is empty)."""
    return StateHandover(settings, metrics) if settings.state_handover_url else None
