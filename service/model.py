"""A model directory (docs/model-format.md): load, validate and warm up one ONNX student.

A directory holding ``model.onnx`` and ``manifest.json`` is accepted only when

1. the manifest has ``format == "ran-distill-qnet"`` v1, its ``model_sha256`` matches
   ``model.onnx``, it is neither ``privileged`` nor ``recurrent`` (a GRU's per-UE state is
   not kept here), and it matches the encoder:
   ``obs_schema_version == linkadapt.features.OBS_SCHEMA_VERSION``, ``obs_dim ==
   OBS_DIM``, ``n_actions`` == the served MCS table's size (28 for table 2);
2. onnxruntime loads it with one 2-D float input ``[batch, obs_dim]`` and a
   ``[batch, n_actions]`` output;
3. the manifest's golden inputs reproduce its golden outputs (and argmax actions);
4. a warm-up at several batch sizes succeeds.

The active model and a shadow candidate go through exactly the same :func:`load_model`,
and decide through the same :func:`infer`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from linkadapt import features, nr
from linkadapt.baselines import BASELINE_NAMES
from service.wire import SOURCE_FALLBACK, SOURCE_MODEL

log = logging.getLogger("service.model")

MANIFEST_FORMAT = "ran-distill-qnet"
MANIFEST_FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
WARMUP_SIZES = (1, 64, 1024)


class ModelError(ValueError):
    """A model directory was rejected; the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    """A validated, warmed-up model ready to serve."""

    version: str
    path: str
    manifest: dict[str, Any]
    session: ort.InferenceSession
    input_name: str
    output_name: str
    obs_dim: int
    n_actions: int
    parameters: int
    loaded_at: float
    fingerprint: tuple[Any, ...]
    reference_kpis: dict[str, dict[str, float]] = field(default_factory=dict)

    def infer(self, obs: np.ndarray) -> np.ndarray:
        """Raw model output (Q-values / logits), float32 ``[n, n_actions]``."""
        return self.session.run([self.output_name], {self.input_name: obs})[0]


def fingerprint(model_dir: Path) -> tuple[Any, ...]:
    """(inode, size, mtime_ns) of both files; changes when either is replaced or edited."""
    out: list[Any] = []
    for name in (MODEL_FILE, MANIFEST_FILE):
        try:
            st = os.stat(model_dir / name)  # follows symlinks (ConfigMap ..data swaps)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def _require(manifest: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in manifest:
        raise ModelError(f"manifest: missing '{key}'")
    value = manifest[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ModelError(f"manifest: '{key}' has wrong type {type(value).__name__}")
    return value


def _golden(
    manifest: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float]:
    """(obs, expected q_values or None, expected mcs or None, atol) from ``golden``."""
    g = manifest.get("golden")
    if not isinstance(g, dict):
        raise ModelError("manifest: missing 'golden' object with golden observations")
    try:
        inputs = np.asarray(g["obs"], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"manifest: golden.obs unreadable ({exc!r})") from exc
    try:
        outputs = np.asarray(g["q_values"], dtype=np.float32) if "q_values" in g else None
        actions = np.asarray(g["mcs"], dtype=np.int64) if "mcs" in g else None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"manifest: golden outputs unreadable ({exc})") from exc
    if outputs is None and actions is None:
        raise ModelError("manifest: golden needs 'q_values' and/or 'mcs'")
    atol = float(g.get("atol", 1e-4))
    return inputs, outputs, actions, atol


def load_model(
    model_dir: Path,
    *,
    mcs_table: int = 2,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
    warmup_max: int = 1024,
) -> LoadedModel:
    """Load and fully validate a model directory; raise :class:`ModelError` if unusable."""
    model_dir = Path(model_dir)
    fp = fingerprint(model_dir)
    manifest_path = model_dir / MANIFEST_FILE
    model_path = model_dir / MODEL_FILE
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: not a directory")
    try:
        manifest = json.loads(manifest_path.read_text())
        model_bytes = model_path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(f"{model_dir}: missing {Path(exc.filename).name}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{manifest_path}: invalid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_path}: top level must be an object")

    fmt = manifest.get("format")
    if fmt != MANIFEST_FORMAT or manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        raise ModelError(
            f"manifest: format {fmt!r} v{manifest.get('format_version')!r} is not "
            f"{MANIFEST_FORMAT!r} v{MANIFEST_FORMAT_VERSION} (docs/model-format.md)"
        )
    digest_full = hashlib.sha256(model_bytes).hexdigest()
    want_sha = manifest.get("model_sha256")
    if want_sha != digest_full:
        raise ModelError(f"manifest: model_sha256 {want_sha!r} != sha256(model.onnx) {digest_full}")
    if manifest.get("privileged"):
        raise ModelError("manifest: privileged model (reads true SINR/Doppler): cannot be served")
    if manifest.get("recurrent"):
        raise ModelError(
            "manifest: recurrent model (GRU hidden state as ONNX input/output): the xApp keeps "
            "no per-UE hidden state and serves stateless models only"
        )
    schema = str(_require(manifest, "obs_schema_version", (str, int)))
    if schema != str(features.OBS_SCHEMA_VERSION):
        raise ModelError(
            f"manifest: obs_schema_version {schema!r} != encoder's {features.OBS_SCHEMA_VERSION!r}"
        )
    obs_dim = _require(manifest, "obs_dim", int)
    if obs_dim != features.OBS_DIM:
        raise ModelError(f"manifest: obs_dim {obs_dim} != encoder's OBS_DIM {features.OBS_DIM}")
    n_actions = _require(manifest, "n_actions", int)
    want_actions = nr.n_mcs(mcs_table)
    if n_actions != want_actions:
        raise ModelError(
            f"manifest: n_actions {n_actions} != {want_actions} (MCS table {mcs_table})"
        )
    parameters = int(manifest.get("parameter_count", 0) or 0)
    golden_in, golden_out, golden_actions, atol = _golden(manifest)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise ModelError(f"{model_path}: onnxruntime cannot load it ({exc})") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelError(f"{model_path}: need exactly 1 input and >= 1 output")
    inp, out = inputs[0], outputs[0]
    if inp.type != "tensor(float)" or len(inp.shape) != 2 or inp.shape[1] != obs_dim:
        raise ModelError(
            f"{model_path}: input {inp.name} {inp.type} {inp.shape} != float [N, {obs_dim}]"
        )
    if len(out.shape) != 2 or out.shape[1] != n_actions:
        raise ModelError(f"{model_path}: output {out.name} {out.shape} != [N, {n_actions}]")

    name = str(manifest.get("version") or manifest.get("arch") or "model")
    model = LoadedModel(
        version=f"{name}+{digest_full[:12]}",
        path=str(model_dir),
        manifest=manifest,
        session=session,
        input_name=inp.name,
        output_name=out.name,
        obs_dim=obs_dim,
        n_actions=n_actions,
        parameters=parameters,
        loaded_at=time.time(),
        fingerprint=fp,
        reference_kpis=_reference_kpis(manifest),
    )
    if golden_in.ndim != 2 or golden_in.shape[1] != obs_dim or golden_in.shape[0] == 0:
        raise ModelError(f"manifest: golden.obs shape {golden_in.shape} != [n>0, {obs_dim}]")
    try:
        got = model.infer(golden_in)
    except Exception as exc:
        raise ModelError(f"golden inputs: inference failed ({exc})") from exc
    if golden_out is not None:
        if golden_out.shape != got.shape:
            raise ModelError(f"golden outputs shape {golden_out.shape} != model's {got.shape}")
        err = float(np.max(np.abs(got - golden_out)))
        if not np.allclose(got, golden_out, atol=atol, rtol=1e-3):
            raise ModelError(f"golden outputs differ from the model's (max abs error {err:.3g})")
    if golden_actions is not None:
        acts = np.argmax(got, axis=1)
        if golden_actions.shape != acts.shape or np.any(acts != golden_actions):
            raise ModelError("golden actions differ from the model's argmax")
    try:
        for n in sorted({min(s, warmup_max) for s in (*WARMUP_SIZES, warmup_max)}):
            model.infer(np.zeros((n, obs_dim), dtype=np.float32))
    except Exception as exc:
        raise ModelError(f"warm-up failed ({exc})") from exc
    return model


def _kpi_value(v: Any) -> float | None:
    if isinstance(v, dict):
        v = v.get("mean")
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return None


def _reference_kpis(manifest: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{scenario: {kpi: value}}``: the simulator's promise for this model.

    Taken from an explicit ``reference_kpis`` object if present, else from the training
    provenance ``source.kpis.simulator.scenarios[sc].summary[policy][kpi].mean`` for the
    first non-baseline policy (the model itself). Unknown layouts give ``{}``.
    """
    out: dict[str, dict[str, float]] = {}
    raw = manifest.get("reference_kpis")
    if isinstance(raw, dict):
        for scenario, kpis in raw.items():
            if isinstance(kpis, dict):
                nums = {k: x for k, v in kpis.items() if (x := _kpi_value(v)) is not None}
                if nums:
                    out[str(scenario)] = nums
        return out
    source = manifest.get("source")
    kpis = source.get("kpis") if isinstance(source, dict) else None
    sim = kpis.get("simulator") if isinstance(kpis, dict) else None
    scenarios = sim.get("scenarios") if isinstance(sim, dict) else None
    if not isinstance(scenarios, dict):
        return out
    for scenario, res in scenarios.items():
        summary = res.get("summary") if isinstance(res, dict) else None
        if not isinstance(summary, dict):
            continue
        own = [p for p in summary if p not in BASELINE_NAMES]
        if own and isinstance(summary[own[0]], dict):
            nums = {k: x for k, v in summary[own[0]].items() if (x := _kpi_value(v)) is not None}
            if nums:
                out[str(scenario)] = nums
    return out


def infer(
    model: LoadedModel | None, obs: np.ndarray, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """The student's greedy MCS where it gives finite Q-values, else the fallback's.

    Input
    -----
    model : LoadedModel or None
    obs : np.ndarray, float32 [n, OBS_DIM]
    fallback : np.ndarray, int [n]
        OLLA's MCS per UE.

    Output
    ------
    mcs : np.ndarray, int32 [n]
    source : np.ndarray, uint8 [n]
        :data:`~service.wire.SOURCE_MODEL` / :data:`~service.wire.SOURCE_FALLBACK`.
    model_version : str
        The model's version, ``""`` when it did not run (none loaded, or it raised).
    failed : bool
        Inference raised, or gave a NaN/inf row (counted as an inference error).
    """
    n = obs.shape[0]
    source = np.full(n, SOURCE_FALLBACK, dtype=np.uint8)
    mcs = np.asarray(fallback, dtype=np.int32)
    if model is None:
        return mcs, source, "", False
    try:
        q = model.infer(obs)
    except Exception:
        log.exception("inference of %s failed: OLLA's decisions for the batch", model.version)
        return mcs, source, "", True
    best = np.argmax(q, axis=1).astype(np.int32)
    # argmax lands on a NaN/inf if the row has one: one gather finds the bad rows
    ok = np.isfinite(q[np.arange(n), best])
    source[ok] = SOURCE_MODEL
    return np.where(ok, best, mcs), source, model.version, not ok.all()
