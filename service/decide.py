"""Deciding a micro-batch: admission to per-UE state, encoding, inference, split.

:meth:`Decider.process` is the micro-batcher's ``process`` (worker thread). Per
micro-batch, in arrival order:

1. each request is parsed (:mod:`service.wire`) and validated as a whole
   (:mod:`service.validation`; the protobuf ones of the micro-batch in one merged pass),
   checked against its cell's newest slot, and its (cell, UE) pairs mapped to rows of the
   per-UE state (:mod:`service.state`); a refusal (also of a request routed for another
   cell, :mod:`service.cell_affinity`) changes nothing and fails only that request;
2. the admitted requests run in groups without a repeated UE (so every UE's reports are
   folded in arrival order): one history update, one encode with the linkadapt encoder,
   one OLLA step (always, so the fallback is warm), one onnxruntime call;
3. the decisions are split back per request, each saying whether the model or the
   fallback produced it, and serialized in the request's format; a shadow candidate
   (:mod:`service.shadow`) decides the same observations for comparison only.
Releases come through the same queue, so they apply in arrival order too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linkadapt.policy import DecisionBatch
from linkadapt.reports import REPORT_DTYPES, ReportBatch
from service.batcher import Processed, Request
from service.cell_affinity import check_cell_hint
from service.errors import InternalError, InvalidArgument, RequestError, ResourceExhausted, Stale
from service.metrics import ServiceMetrics
from service.model import LoadedModel, infer
from service.registry import ModelRegistry
from service.shadow import Shadow
from service.state import CapacityError, UeStateTable, UnknownUeError, warm_up
from service.validation import RequestValidator, check_unique_ues
from service.wire import SOURCE_MODEL, RequestKind, decide_head, encode_decision

log = logging.getLogger("service.decide")

# A slot this far behind its cell's newest slot is taken as a restarted slot counter (a
# gNB restart), not as a late request: accepted, and the newest slot follows it. So a
# restart makes a cell's requests stale for at most about this many slots.
SLOT_RESET_LAG = 1024
_NO_ROWS = np.zeros(0, dtype=np.int64)

Outcomes = list[tuple[Any, Any]]  # (future, DecideResult | int | RequestError)


@dataclass
class DecideResult:
    """The decisions of one request, in request order."""

    cell_id: int
    slot: int
    mcs: np.ndarray  # int32 [n]
    source: np.ndarray  # uint8 [n], service.wire.SOURCE_*
    model_version: str  # "" when no model served
    queue_wait: float = 0.0  # seconds, submit → micro-batch start
    state_features: float = 0.0  # seconds: history update, encoding, OLLA
    inference: float = 0.0  # seconds: onnxruntime
    wire: bytes | None = None  # the serialized response ("pb" / "json" requests)


@dataclass
class _Admitted:
    """A validated request with its rows of the per-UE state."""

    req: Request
    cell_id: int
    slot: int
    reports: ReportBatch
    rows: np.ndarray
    new_rows: np.ndarray
    seq: int
    base: ReportBatch | None = None  # merged batch this request's reports are a slice of
    lo: int = 0
    hi: int = 0


class Decider:
    """Worker-side request processing over the per-UE state (see the module docstring).

    Parameters
    ----------
    state : UeStateTable
    registry : ModelRegistry
        ``current`` is read once per group.
    validator : RequestValidator
    metrics : ServiceMetrics
    max_group_ues : int
        UEs per onnxruntime call (``microbatch_max_ues``).
    max_slot_lag : int
        Slots a decide request may lag its cell's newest (0: no stale check).
    shadow : Shadow or None
        Runs the candidate model in shadow (:mod:`service.shadow`).
    """

    def __init__(
        self,
        state: UeStateTable,
        registry: ModelRegistry,
        validator: RequestValidator,
        metrics: ServiceMetrics,
        *,
        max_group_ues: int,
        max_slot_lag: int,
        shadow: Shadow | None = None,
    ) -> None:
        self.state = state
        self.registry = registry
        self.validator = validator
        self.metrics = metrics
        self.max_group_ues = max_group_ues
        self.max_slot_lag = max_slot_lag
        self.shadow = shadow
        # the state's index: the worker admits, the event loop releases and expires
        self.lock = threading.Lock()
        # newest decided slot per cell (stale check); cells leave it with their last
        # tracked UE, so it is bounded by the tracked cells
        self.newest_slot: dict[int, int] = {}
        self.restore_cell: Callable[[int], object] | None = None  # see _admit_rows
        self._stale = metrics.shed_requests.labels("stale")
        self._mark = np.zeros(0, dtype=bool)  # see _marks
        lat = metrics.latency
        self._lat = (lat["queue_wait"], lat["state_features"], lat["inference"])

    # ------------------------------------------------------------------ micro-batch
    def process(self, requests: list[Request]) -> Processed:
        """Admit ``requests``, decide them as collision-free groups (the batcher's
        ``process``); a group that fails fails only its own requests."""
        done: Outcomes = []
        items = self._admit(requests, done)
        fresh = [it.new_rows for it in items if it.new_rows.size]
        self.state.prepare_rows(np.concatenate(fresh) if fresh else _NO_ROWS)
        start = 0
        while start < len(items):
            group = [items[start]]
            ues = items[start].rows.shape[0]
            if start + 1 < len(items):  # a lone request needs no collision check
                mark = self._marks()
                mark[items[start].rows] = True
                for it in items[start + 1 :]:
                    n = it.rows.shape[0]
                    if ues + n > self.max_group_ues or mark[it.rows].any():
                        break
                    mark[it.rows] = True
                    group.append(it)
                    ues += n
                for it in group:  # clean for the next group: only the rows marked
                    mark[it.rows] = False
            start += len(group)
            try:
                done.extend(zip((it.req.fut for it in group), self._run_group(group), strict=True))
            except Exception as exc:  # a bug, not bad input: fail only this group
                log.exception("decision group failed")
                err = InternalError("request", f"internal error: {exc}")
                done.extend((it.req.fut, err) for it in group)
        seq = items[-1].seq if items else 0
        return Processed(done, lambda: self._flushed(seq))

    def _marks(self) -> np.ndarray:
        """All-False bool ``[capacity]`` scratch of the worker (callers clear what they
        set): a fresh one per group would zero the whole table, a megabyte at 1 M rows."""
        cap = self.state.history.capacity
        if self._mark.shape[0] < cap:
            self._mark = np.zeros(cap, dtype=bool)
        return self._mark

    def _flushed(self, seq: int) -> None:
        """Event loop, after delivery: rows quarantined up to ``seq`` may be reused."""
        if seq:
            with self.lock:
                self.state.flushed(seq)
        self.metrics.tracked_ues.set(self.state.n_tracked)

    def _admit(self, requests: list[Request], done: Outcomes) -> list[_Admitted]:
        """Parse, validate and admit ``requests`` in order; refusals and releases go to
        ``done``."""
        items: list[_Admitted] = []
        merged, spans = self.validator.premerge(
            [r.payload if r.kind == "pb" else None for r in requests]
        )
        for i, r in enumerate(requests):
            try:
                span = spans.get(i)
                if span is not None and merged is not None:
                    cell_id, slot, lo, hi = span
                    check_cell_hint(r.cell_hint, cell_id)
                    part = ReportBatch(**{k: v[lo:hi] for k, v in merged.as_dict().items()})
                    check_unique_ues(part.ue_id)
                    self.metrics.batch_size.observe(hi - lo)
                    rows, new_rows, seq = self._admit_rows(cell_id, slot, part.ue_id)
                    items.append(
                        _Admitted(r, cell_id, slot, part, rows, new_rows, seq, merged, lo, hi)
                    )
                elif r.kind == "release":
                    done.append((r.fut, self.release(*r.payload)))
                else:
                    cell_id, slot, mcs_table, columns = decide_head(r.kind, r.payload)
                    check_cell_hint(r.cell_hint, cell_id)
                    batch = self.validator.decide(cell_id, slot, mcs_table, columns)
                    self.metrics.batch_size.observe(len(batch))
                    if len(batch) == 0:
                        done.append((r.fut, self._empty(r.kind, cell_id, slot)))
                        continue
                    rows, new_rows, seq = self._admit_rows(cell_id, slot, batch.ue_id)
                    items.append(_Admitted(r, cell_id, slot, batch, rows, new_rows, seq))
            except RequestError as exc:
                done.append((r.fut, exc))
            except Exception as exc:  # a bug, not bad input: fail only this request
                log.exception("request admission failed")
                done.append((r.fut, InternalError("request", f"internal error: {exc}")))
        return items

    def _empty(self, kind: RequestKind, cell_id: int, slot: int) -> DecideResult:
        model = self.registry.current
        mcs, source = np.zeros(0, np.int32), np.zeros(0, np.uint8)
        res = DecideResult(cell_id, slot, mcs, source, model.version if model else "")
        res.wire = encode_decision(kind, cell_id, slot, res.mcs, res.source, res.model_version)
        return res

    def _admit_rows(
        self, cell_id: int, slot: int, ue_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows for the UEs of one valid request, after the stale-slot check (a stale or
        refused request changes nothing); records ``slot`` as the cell's newest. A cell
        with no tracked UE is first restored (``restore_cell``: the state handover's)."""
        if self.restore_cell is not None and cell_id not in self.state.cells:
            self.restore_cell(cell_id)
        lag_max = self.max_slot_lag
        with self.lock:
            newest = self.newest_slot.get(cell_id)
            lag = newest - slot if newest is not None else 0
            if lag_max and lag_max < lag <= SLOT_RESET_LAG:
                self._stale.inc()
                raise Stale(
                    "slot",
                    f"slot {slot} is {lag} slots behind the newest slot {newest} of cell "
                    f"{cell_id} (max_slot_lag={lag_max})",
                    "stale",
                )
            try:
                admitted = self.state.admit(cell_id, ue_ids, time.monotonic())
            except CapacityError as exc:
                self.metrics.ue_capacity_rejections.inc()
                raise ResourceExhausted("ue_id", str(exc), "ue_capacity") from None
            if lag_max and (newest is None or slot > newest or lag > SLOT_RESET_LAG):
                self.newest_slot[cell_id] = slot
            return admitted

    def _run_group(self, group: list[_Admitted]) -> list[DecideResult]:
        """One history update, encode, OLLA step and inference for ``group``; the
        decisions split back per request, serialized in each request's format."""
        t0 = time.perf_counter()
        first = group[0]
        rows = first.rows if len(group) == 1 else np.concatenate([it.rows for it in group])
        if len(group) == 1:
            reports = first.reports
        elif first.base is not None and all(
            b.base is first.base and b.lo == a.hi for a, b in zip(group, group[1:], strict=False)
        ):  # consecutive slices of one merged batch: slice it, no copy
            lo, hi = first.lo, group[-1].hi
            reports = ReportBatch(**{k: v[lo:hi] for k, v in first.base.as_dict().items()})
        else:
            parts = [it.reports.as_dict() for it in group]
            reports = ReportBatch(
                **{k: np.concatenate([p[k] for p in parts]) for k in REPORT_DTYPES}
            )
        st = self.state
        st.history.update(rows, reports)
        obs = st.history.encode(rows)
        fallback = st.olla.act(DecisionBatch(obs=obs, reports=reports, rows=rows))
        t1 = time.perf_counter()
        active = self.registry.current
        mcs, source, version, failed = infer(active, obs, fallback)
        t2 = time.perf_counter()
        self._shadow(active, obs, fallback, mcs, reports, group)
        m = self.metrics
        if failed:
            m.inference_errors.inc()
        n = rows.shape[0]
        m.microbatch_size.observe(n)
        m.microbatch_requests.observe(len(group))
        n_model = int(np.count_nonzero(source == SOURCE_MODEL))
        if n_model:
            m.decisions_model.inc(n_model)
        if n - n_model:
            m.decisions_fallback.inc(n - n_model)
        lat_queue, lat_state, lat_inf = self._lat
        off = 0
        results: list[DecideResult] = []
        for it in group:
            k = it.rows.shape[0]
            res = DecideResult(
                it.cell_id,
                it.slot,
                mcs[off : off + k],
                source[off : off + k],
                version,
                t0 - it.req.t_submit,
                t1 - t0,
                t2 - t1,
            )
            off += k
            res.wire = encode_decision(
                it.req.kind, res.cell_id, res.slot, res.mcs, res.source, version
            )
            lat_queue.observe(res.queue_wait)
            lat_state.observe(res.state_features)
            lat_inf.observe(res.inference)
            m.cell_mcs.add(it.cell_id, res.mcs)
            results.append(res)
        return results

    def _shadow(
        self,
        active: LoadedModel | None,
        obs: np.ndarray,
        fallback: np.ndarray,
        served: np.ndarray,
        reports: ReportBatch,
        group: list[_Admitted],
    ) -> None:
        """The shadow candidate, if any, on the same observations (one more onnxruntime
        call per group); its decisions go to the comparison only, never to a response.
        It runs before the group's responses go out, so its decisions are on record before
        the gNB can report their outcomes."""
        shadow = self.shadow
        cand = shadow.candidate if shadow is not None else None
        if shadow is None or cand is None:
            return
        t0 = time.perf_counter()
        proposed, _, _, failed = infer(cand, obs, fallback)
        ends = np.cumsum([it.rows.shape[0] for it in group])
        spans = [
            (it.cell_id, it.slot, int(e - it.rows.shape[0]), int(e))
            for it, e in zip(group, ends, strict=True)
        ]
        try:
            shadow.observe(active, cand, served, proposed, failed, reports, spans)
        except Exception:  # a bug in the comparison must not fail the decisions
            log.exception("shadow comparison failed")
        self.metrics.latency["shadow"].observe(time.perf_counter() - t0)

    # ------------------------------------------------------------------ release / expiry
    def release(self, cell_id: Any, ue_ids: Any) -> int:
        """Forget UEs of one cell now (worker side of a queued release).

        Input
        -----
        cell_id : int
        ue_ids : sequence of int
            Distinct, all tracked in ``cell_id``.

        Output
        ------
        released : int
            UEs forgotten.

        Raises
        ------
        InvalidArgument
            Naming ``cell_id`` / ``ue_id`` (reason ``unknown_ue`` for a cell or UE that is
            not tracked); nothing changed.
        """
        ues = self.validator.release(cell_id, ue_ids)
        try:
            with self.lock:
                n = self.state.release(cell_id, ues)
        except UnknownUeError as exc:
            raise InvalidArgument(exc.field, exc.message, "unknown_ue") from None
        self.metrics.ues_released.inc(n)
        self.metrics.tracked_ues.set(self.state.n_tracked)
        return n

    def expire(self, now: float) -> int:
        """Forget UEs idle since before ``now - ttl`` (monotonic), and the newest-slot
        entries and MCS histograms of cells left with no UE; returns the UEs forgotten."""
        with self.lock:
            n = self.state.expire(now)
            cells = self.state.cells
            for cell in [c for c in self.newest_slot if c not in cells]:
                del self.newest_slot[cell]
            self.metrics.cell_mcs.retain(cells)
        return n

    def warm_up(self) -> None:
        """First-call costs of the state/encoder/OLLA path off the hot path."""
        warm_up(self.validator.mcs_table, self.validator.n_mcs)
