"""Tiny ONNX students for the service tests and benchmarks, built without torch.

``make_mlp`` writes a Gemm/Relu MLP with random weights using the ``onnx`` helper API;
``write_model_dir`` adds a manifest whose golden outputs come from an independent numpy
forward pass (so the registry's golden check really compares two implementations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from linkadapt import features


def mlp_weights(
    obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (64, 32), seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random (W [in, out], b [out]) per layer, He-scaled."""
    rng = np.random.default_rng(seed)
    dims = (obs_dim, *hidden, n_actions)
    return [
        (
            (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32),
            (rng.standard_normal(b) * 0.1).astype(np.float32),
        )
        for a, b in zip(dims[:-1], dims[1:], strict=True)
    ]


def numpy_forward(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Reference forward pass (float32)."""
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


def make_mlp(weights: list[tuple[np.ndarray, np.ndarray]], *, opset: int = 17) -> bytes:
    """Serialized ONNX model: input ``obs`` float [N, obs_dim] → output ``q`` [N, n_actions]."""
    obs_dim = weights[0][0].shape[0]
    n_actions = weights[-1][0].shape[1]
    nodes, inits = [], []
    prev = "obs"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "q" if i == len(weights) - 1 else f"h{i}"
        gemm_out = out if i == len(weights) - 1 else f"g{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [gemm_out]))
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "student",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", obs_dim])],
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["N", n_actions])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_model_dir(
    path: Path,
    *,
    seed: int = 0,
    hidden: tuple[int, ...] = (64, 32),
    version: str | None = None,
    n_golden: int = 8,
    manifest_overrides: dict[str, Any] | None = None,
    corrupt_golden: bool = False,
) -> Path:
    """Write ``model.onnx`` + ``manifest.json`` into ``path``; return ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    obs_dim, n_actions = features.OBS_DIM, 28
    weights = mlp_weights(obs_dim, n_actions, hidden, seed)
    rng = np.random.default_rng(seed + 1000)
    golden_in = rng.uniform(-1, 1, (n_golden, obs_dim)).astype(np.float32)
    golden_out = numpy_forward(weights, golden_in)
    if corrupt_golden:
        golden_out = golden_out + 1.0
    n_params = int(sum(w.size + b.size for w, b in weights))
    manifest: dict[str, Any] = {
        "name": f"test-mlp-{seed}",
        "version": version or f"test-{seed}",
        "obs_schema_version": features.OBS_SCHEMA_VERSION,
        "obs_dim": obs_dim,
        "n_actions": n_actions,
        "mcs_table": 2,
        "parameters": n_params,
        "golden": {
            "inputs": golden_in.tolist(),
            "outputs": golden_out.tolist(),
            "actions": np.argmax(golden_out, axis=1).tolist(),
            "atol": 1e-4,
        },
        "reference_kpis": {
            "mimo": {"throughput_mbps": 50.0, "bler": 0.1},
            "high-mobility": {"throughput_mbps": 20.0, "bler": 0.12},
        },
    }
    manifest.update(manifest_overrides or {})
    (path / "model.onnx").write_bytes(make_mlp(weights))
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path
