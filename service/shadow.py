"""Shadow models: a candidate beside the active model, compared live, promoted safely.

A candidate model directory (the ``LoadCandidate`` admin call, or ``candidate_model_dir``
at start) goes through exactly the checks of the active model
(:meth:`service.registry.ModelRegistry.load`). While one is loaded, the decider runs it
on the same encoded observations of every inference group as the active model (one extra
onnxruntime call per group) and hands both decisions here: the responses are the active
model's, always. This module

* tallies agreement (same MCS, within ±1 MCS) and the mean MCS difference, since the
  candidate was loaded and per window of ``shadow_window_slots`` cell-slots;
* predicts the candidate's KPI change from the outcome reports of the active model's
  decisions (:mod:`service.shadow_stats`, method and limits in docs/service.md);
* promotes the candidate atomically (admin call, or automatically once its windows stayed
  inside the configured bounds for ``shadow_promote_after_slots`` cell-slots) and rolls
  back to the previous model.

Whenever the active model changes (hot reload, promotion, rollback) the comparison
restarts from zero and the candidate stays loaded; a reload that makes the candidate's own
model active ends its shadow run. Every such event is logged and shown in ``last_event``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linkadapt.reports import ReportBatch
from service.config import Settings
from service.errors import FailedPrecondition, InvalidArgument
from service.metrics import ServiceMetrics
from service.registry import LoadedModel, ModelError, ModelRegistry
from service.shadow_stats import AckModel, OutcomeMatcher, Tally, compare, pending_columns

log = logging.getLogger("service.shadow")

# A window's KPI prediction counts for automatic promotion only with at least this many
# matched first transmissions: fewer are noise.
MIN_WINDOW_OUTCOMES = 100
# shadow_outcomes_total{result}: fields of service.shadow_stats.Matched
OUTCOME_RESULTS = ("matched", "unmatched", "not_followed")
# (cell_id, slot, first row, end row) of each request of an inference group
Spans = list[tuple[int, int, int, int]]


@dataclass(frozen=True)
class PromotionBounds:
    """When a shadow window counts towards automatic promotion (config ``shadow_*``)."""

    auto: bool = False
    after_slots: int = 20000
    min_agreement: float = 0.9  # within ±1 MCS
    min_throughput_change: float = 0.0
    max_bler_change: float = 0.01

    def inside(self, window: dict[str, Any]) -> bool:
        return bool(
            window["matched_outcomes"] >= MIN_WINDOW_OUTCOMES
            and window["agreement_within_one"] >= self.min_agreement
            and window["predicted_throughput_change"] >= self.min_throughput_change
            and window["predicted_first_tx_bler_change"] <= self.max_bler_change
        )


def resolve_candidate_dir(given: Any, root: Path) -> Path:
    """The directory an admin call names, which must lie under ``root`` (symlinks
    resolved; a relative path is taken from ``root``); :class:`InvalidArgument` naming
    ``model_dir`` otherwise."""
    if not isinstance(given, str) or not given.strip():
        raise InvalidArgument("model_dir", "must be a non-empty path string", "bad_path")
    if "\x00" in given:
        raise InvalidArgument("model_dir", "must not contain NUL", "bad_path")
    base = root.resolve()
    path = (base / given).resolve()  # an absolute `given` replaces base
    if not path.is_relative_to(base):
        raise InvalidArgument(
            "model_dir", f"{given!r} is not under the candidate root {base}", "bad_path"
        )
    return path


class Shadow:
    """The candidate slot, its comparison with the active model, promotion and rollback.

    ``candidate`` is read lock-free by the decider; :meth:`observe` (inference worker)
    and :meth:`fold_outcome` (event loop) update the tallies under one lock; the admin
    operations (worker threads) are serialized by another.

    Parameters
    ----------
    registry : ModelRegistry
        Loads candidates and holds the active / previous model.
    metrics : ServiceMetrics
    root : Path
        Directory admin-loaded candidates must lie under.
    window_slots : int
        Cell-slots per comparison window.
    bounds : PromotionBounds
    ack_model : AckModel
        The predicted-KPI model (MCS table, BLER target).
    request_promotion : Callable[[LoadedModel], None]
        Called (from the inference worker) when automatic promotion of that candidate is
        due; it should call :meth:`promote` soon, off the worker.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        metrics: ServiceMetrics,
        *,
        root: Path,
        window_slots: int,
        bounds: PromotionBounds,
        ack_model: AckModel,
        request_promotion: Callable[[LoadedModel], None] = lambda model: None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.root = root
        self.window_slots = window_slots
        self.bounds = bounds
        self.request_promotion = request_promotion
        self.candidate: LoadedModel | None = None
        self.load_status = ("", "", 0.0)  # result, error, unix time of the last load
        self.last_event = ""
        self._lock = threading.Lock()  # tallies, windows, matcher
        self._admin = threading.Lock()  # load / unload / promote / rollback
        self._matcher = OutcomeMatcher(ack_model)
        self._reset_tallies()
        m = metrics
        self._agree = m.shadow_agreements.labels("exact")
        self._agree_one = m.shadow_agreements.labels("one_mcs")
        self._outcomes = {r: m.shadow_outcomes.labels(r) for r in OUTCOME_RESULTS}
        for result in ("success", "failure"):
            m.candidate_loads.labels(result)
        for trigger in ("admin", "auto"):
            m.promotions.labels(trigger)
        registry.add_swap_listener(self._on_swap)
        self._publish()

    @classmethod
    def from_settings(
        cls,
        registry: ModelRegistry,
        metrics: ServiceMetrics,
        s: Settings,
        request_promotion: Callable[[LoadedModel], None],
    ) -> Shadow:
        """The shadow of a data plane, configured by the ``candidate_*`` / ``shadow_*``
        settings (the predicted KPIs assume the OLLA fallback's BLER target)."""
        return cls(
            registry,
            metrics,
            root=Path(s.candidate_root) if s.candidate_root else s.model_dir.parent,
            window_slots=s.shadow_window_slots,
            bounds=PromotionBounds(
                auto=s.shadow_auto_promote,
                after_slots=s.shadow_promote_after_slots,
                min_agreement=s.shadow_promote_min_agreement,
                min_throughput_change=s.shadow_promote_min_throughput_change,
                max_bler_change=s.shadow_promote_max_bler_change,
            ),
            ack_model=AckModel(s.mcs_table, s.olla_bler_target),
            request_promotion=request_promotion,
        )

    def _reset_tallies(self) -> None:
        """Start the comparison afresh (caller holds ``_lock``, or nothing runs yet)."""
        self.total = Tally()
        self.window = Tally()
        self.last_window: dict[str, Any] = Tally().summary()
        self.last_window_inside = False
        self.streak = 0
        self._promotion_asked: LoadedModel | None = None
        self._matcher.clear()

    # ------------------------------------------------------------------ admin operations
    def load_candidate(self, model_dir: str, *, from_api: bool = True) -> LoadedModel:
        """Load and validate a candidate (replacing any) and start shadowing it.

        ``from_api``: the path must lie under :attr:`root`. Raises
        :class:`InvalidArgument` naming ``model_dir`` for a bad path or a refused model;
        the active model and the previous candidate are then untouched. Slow (loads,
        checks the golden rows, warms up): call it off the event loop.
        """
        path = resolve_candidate_dir(model_dir, self.root) if from_api else Path(model_dir)
        with self._admin:
            try:
                model = self.registry.load(path)
            except ModelError as exc:
                self.load_status = ("failed", str(exc), time.time())
                self.metrics.candidate_loads.labels("failure").inc()
                self._event(f"candidate {path} refused: {exc}", logging.ERROR)
                raise InvalidArgument(
                    "model_dir", f"candidate refused: {exc}", "invalid_model"
                ) from None
            with self._lock:
                self.candidate = model
                self._reset_tallies()
            self.load_status = ("ok", "", time.time())
            self.metrics.candidate_loads.labels("success").inc()
            self._event(f"candidate {model.version} loaded from {model.path}")
            self._publish()
            return model

    def unload_candidate(self) -> None:
        """Stop shadowing; nothing to do without a candidate."""
        with self._admin:
            if self.candidate is None:
                return
            version = self.candidate.version
            with self._lock:
                self.candidate = None
                self._reset_tallies()
            self._event(f"candidate {version} unloaded")
            self._publish()

    def promote(self, trigger: str = "admin", expected: LoadedModel | None = None) -> LoadedModel:
        """Make the candidate the active model at once (requests in flight see the old or
        the new model, none fails); the replaced model becomes the rollback target.

        ``expected``: promote only if that is still the candidate (automatic promotion).
        Raises :class:`FailedPrecondition` (``candidate``) when there is none.
        """
        with self._admin:
            model = self.candidate
            if model is None or (expected is not None and model is not expected):
                raise FailedPrecondition("candidate", "no candidate model loaded", "no_candidate")
            self.registry.swap(model, f"promoted ({trigger})")  # _on_swap ends the shadow run
            self.metrics.promotions.labels(trigger).inc()
            return model

    def rollback(self) -> LoadedModel:
        """Make the model replaced by the last swap active again; :class:`FailedPrecondition`
        (``previous``) when there is none. The candidate, if any, stays."""
        with self._admin:
            model = self.registry.rollback()
            if model is None:
                raise FailedPrecondition("previous", "no previous model to roll back to")
            self.metrics.rollbacks.inc()
            return model

    def _on_swap(self, replaced: LoadedModel | None, new: LoadedModel) -> None:
        """Registry listener: the active model changed (reload, promotion, rollback)."""
        with self._lock:
            cand = self.candidate
            if cand is None:
                return
            self._reset_tallies()
            if new is cand or (new.version, new.manifest) == (cand.version, cand.manifest):
                self.candidate = None
                event = f"candidate {cand.version} is now the active model"
            else:
                event = f"active model now {new.version}: shadow comparison restarted"
        self._event(event)
        self._publish()

    # ------------------------------------------------------------------ worker / event loop
    def observe(
        self,
        active: LoadedModel | None,
        candidate: LoadedModel,
        served: np.ndarray,
        proposed: np.ndarray,
        failed: bool,
        reports: ReportBatch,
        spans: Spans,
    ) -> None:
        """Inference worker: the candidate's decisions ``proposed`` for one group next to
        the served ones (the active model's; OLLA's where it fell back). Results of a group
        that straddled a swap or a candidate change are dropped."""
        m = self.metrics
        if failed:
            m.shadow_inference_errors.inc()
        due: LoadedModel | None = None
        with self._lock:
            if candidate is not self.candidate or active is not self.registry.current:
                return
            tally = compare(served, proposed, len(spans))
            cols = pending_columns(reports, served, proposed)
            for cell_id, slot, lo, hi in spans:
                self._matcher.add(cell_id, slot, reports.ue_id[lo:hi], cols[:, lo:hi])
            self.total.add(tally)
            self.window.add(tally)
            if self.window.cell_slots >= self.window_slots:
                due = self._close_window(candidate)
        m.shadow_decisions.inc(tally.compared)
        self._agree.inc(tally.agree)
        self._agree_one.inc(tally.agree_one)
        if due is not None:
            self.request_promotion(due)

    def _close_window(self, candidate: LoadedModel) -> LoadedModel | None:
        """Publish the full window, update the promotion streak; the candidate when its
        automatic promotion is due (caller holds ``_lock``)."""
        summary = self.window.summary()
        self.last_window = summary
        self.last_window_inside = inside = self.bounds.inside(summary)
        self.streak = self.streak + self.window.cell_slots if inside else 0
        self.window = Tally()
        for name, gauge in self.metrics.shadow_window.items():
            gauge.set(summary[name])
        self.metrics.shadow_streak.set(self.streak)
        b = self.bounds
        if b.auto and self.streak >= b.after_slots and self._promotion_asked is not candidate:
            self._promotion_asked = candidate
            return candidate
        return None

    def fold_outcome(self, cell_id: int, slot: int, cols: dict[str, np.ndarray]) -> None:
        """Event loop: one validated outcome report (docs/service.md "Shadow models")."""
        if self.candidate is None:
            return
        with self._lock:
            got = self._matcher.match(cell_id, slot, cols)
            self.total.add(got.tally)
            self.window.add(got.tally)
        for result in OUTCOME_RESULTS:
            if n := getattr(got, result):
                self._outcomes[result].inc(n)

    # ------------------------------------------------------------------ reporting
    def info(self) -> dict[str, Any]:
        """The ``CandidateInfo`` message as a dict (``GetModel`` / ``GET /v1/model``)."""
        m = self.candidate
        result, error, at = self.load_status
        with self._lock:
            total, window = self.total.summary(), dict(self.last_window)
            inside, streak = self.last_window_inside, self.streak
        return {
            "loaded": m is not None,
            "version": m.version if m else "",
            "path": m.path if m else "",
            "parameters": m.parameters if m else 0,
            "loaded_at_unix": m.loaded_at if m else 0.0,
            "last_load_result": result,
            "last_load_error": error,
            "last_load_at_unix": at,
            "total": total,
            "last_window": window,
            "last_window_inside_bounds": inside,
            "promotion_streak_slots": streak,
            "auto_promote": self.bounds.auto,
            "last_event": self.last_event,
        }

    def _event(self, text: str, level: int = logging.INFO) -> None:
        self.last_event = text
        log.log(level, text)

    def _publish(self) -> None:
        m, c = self.metrics, self.candidate
        m.candidate_loaded.set(1 if c else 0)
        m.candidate_info.info({"version": c.version if c else "", "path": c.path if c else ""})
        if c is None or not self.total.compared:  # nothing compared for this pair yet
            for gauge in m.shadow_window.values():
                gauge.set(0)
            m.shadow_streak.set(0)
