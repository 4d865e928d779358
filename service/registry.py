"""Model registry: the served ONNX student, hot reload, and model swaps.

:meth:`ModelRegistry.reload` loads the active model's directory through
:func:`service.model.load_model` (every check of docs/model-format.md) and, only when it
passes, swaps it in (one reference assignment, so a request sees either the old or the
new model, never a mix). A failed (re)load keeps the previous model serving and is
reported by :meth:`ModelRegistry.status`, the log and
``ran_distill_model_reloads_total{result="failure"}``. Hot reload: the data plane polls
:meth:`ModelRegistry.changed`, which compares the files' (mtime, size, inode) with those
seen at the last load attempt.

Every swap of the active model (reload, promotion of a shadow candidate,
:meth:`ModelRegistry.rollback`) keeps the replaced model as :attr:`ModelRegistry.previous`
and tells the swap listeners (the shadow comparison restarts). The directory hot reload
watches is the active model's: after a promotion, the candidate's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.model import LoadedModel, ModelError, fingerprint, load_model

__all__ = ["LoadedModel", "ModelError", "ModelRegistry", "ReloadStatus", "load_model"]

log = logging.getLogger("service.registry")

# fn(replaced, new) after every swap of the active model (replaced None: there was none)
SwapListener = Callable[[LoadedModel | None, LoadedModel], None]


@dataclass
class ReloadStatus:
    """Outcome of the last load attempt (``result`` is "", "ok" or "failed")."""

    result: str = ""
    error: str = ""
    at: float = 0.0


class ModelRegistry:
    """Holds the serving model (and the one it replaced); loads, validates and swaps.

    ``current`` is read lock-free by the data plane (a single attribute read); loads and
    swaps run in worker threads and are serialized by a lock.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        mcs_table: int = 2,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        warmup_max: int = 1024,
        metrics: Any = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.mcs_table = mcs_table
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.warmup_max = warmup_max
        self.metrics = metrics
        self.current: LoadedModel | None = None
        # the model the last swap replaced: what rollback() makes active again
        self.previous: LoadedModel | None = None
        self.status = ReloadStatus()
        self._lock = threading.Lock()
        self._last_seen: tuple[Any, ...] | None = None
        self._swap_listeners: list[SwapListener] = []
        self._publish()

    def add_swap_listener(self, fn: SwapListener) -> None:
        """Call ``fn(replaced, new)`` (in the swapping thread) after every swap."""
        self._swap_listeners.append(fn)

    def load(self, model_dir: Path) -> LoadedModel:
        """Load and validate ``model_dir`` with this registry's settings, without swapping
        it in (a shadow candidate); raises :class:`ModelError`."""
        return load_model(
            model_dir,
            mcs_table=self.mcs_table,
            intra_op_threads=self.intra_op_threads,
            inter_op_threads=self.inter_op_threads,
            warmup_max=self.warmup_max,
        )

    def reload(self) -> tuple[bool, str]:
        """Load the active model's directory; swap on success. Returns (ok, error)."""
        with self._lock:
            self._last_seen = fingerprint(self.model_dir)
            try:
                model = self.load(self.model_dir)
            except ModelError as exc:
                self.status = ReloadStatus("failed", str(exc), time.time())
                if self.metrics is not None:
                    self.metrics.reloads.labels("failure").inc()
                keep = self.current.version if self.current else "none (OLLA fallback)"
                log.error(
                    "model load rejected",
                    extra={"model_dir": str(self.model_dir), "error": str(exc), "serving": keep},
                )
                self._publish()
                return False, str(exc)
            self.status = ReloadStatus("ok", "", time.time())
            if self.metrics is not None:
                self.metrics.reloads.labels("success").inc()
            same = self.current
            if same is not None and (same.version, same.manifest) == (
                model.version,
                model.manifest,
            ):
                # the same model again (an admin reload with unchanged files): no swap, so
                # the previous model and the shadow comparison stay as they are
                return True, ""
            self._swap(model, "loaded", self._last_seen)
            return True, ""

    def swap(self, model: LoadedModel, why: str) -> None:
        """Make ``model`` (already validated: a promoted candidate) the active model at
        once; hot reload follows its directory from now on (files changed since it was
        loaded are reloaded at the next poll)."""
        with self._lock:
            self._swap(model, why, model.fingerprint)

    def rollback(self) -> LoadedModel | None:
        """Make :attr:`previous` active again (the model it replaces becomes
        :attr:`previous`, so a second rollback undoes the first); None when there is no
        previous model. The files as they are now count as seen: hot reload does not undo
        the rollback, only a later change of the files does."""
        with self._lock:
            target = self.previous
            if target is None:
                return None
            self._swap(target, "rolled back", fingerprint(Path(target.path)))
            return target

    def _swap(self, model: LoadedModel, why: str, seen: tuple[Any, ...] | None) -> None:
        """The atomic swap (caller holds the lock): one reference assignment."""
        replaced = self.current
        self.current = model
        if replaced is not None:
            self.previous = replaced
        self.model_dir = Path(model.path)
        self._last_seen = seen
        log.info(
            f"model {why}",
            extra={
                "model_dir": model.path,
                "version": model.version,
                "previous": replaced.version if replaced else None,
                "parameters": model.parameters,
            },
        )
        self._publish()
        for fn in self._swap_listeners:
            fn(replaced, model)

    def changed(self) -> bool:
        """True when the files differ from those seen at the last load attempt."""
        return fingerprint(self.model_dir) != self._last_seen

    def info(self) -> dict[str, Any]:
        """The model + last reload outcome (what GetModel / GET /v1/model return)."""
        m = self.current
        return {
            "loaded": m is not None,
            "version": m.version if m else "",
            "path": m.path if m else str(self.model_dir),
            "obs_schema_version": str(m.manifest.get("obs_schema_version")) if m else "",
            "obs_dim": m.obs_dim if m else 0,
            "n_actions": m.n_actions if m else 0,
            "parameters": m.parameters if m else 0,
            "loaded_at_unix": m.loaded_at if m else 0.0,
            "last_reload_result": self.status.result,
            "last_reload_error": self.status.error,
            "last_reload_at_unix": self.status.at,
            "previous_version": self.previous.version if self.previous else "",
        }

    def _publish(self) -> None:
        if self.metrics is None:
            return
        m = self.current
        self.metrics.model_loaded.set(1 if m else 0)
        self.metrics.model_parameters.set(m.parameters if m else 0)
        self.metrics.model_info.info(
            {
                "version": m.version if m else "",
                "obs_schema_version": str(m.manifest.get("obs_schema_version")) if m else "",
                "path": m.path if m else "",
            }
        )
