"""Service test helpers: tiny ONNX students built without torch, a real server on loopback.

``make_mlp`` writes a Gemm/Relu MLP with random weights using the ``onnx`` helper API;
``write_model_dir`` adds a manifest whose golden outputs come from an independent numpy
forward pass (so the registry's golden check really compares two implementations).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from linkadapt import features

ADMIN_TOKEN = "test-admin-token"  # the admin token of the test servers


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
    model_bytes = make_mlp(weights)
    manifest: dict[str, Any] = {
        "format": "ran-distill-qnet",
        "format_version": 1,
        "version": version or f"test-{seed}",
        "arch": "mlp-" + "x".join(str(h) for h in hidden),
        "obs_schema_version": features.OBS_SCHEMA_VERSION,
        "obs_dim": obs_dim,
        "privileged": False,
        "feature_names": list(features.FEATURE_NAMES),
        "n_actions": n_actions,
        "mcs_table": 2,
        "input": {"name": "obs", "dtype": "float32", "shape": ["batch", obs_dim]},
        "output": {"name": "q", "dtype": "float32", "shape": ["batch", n_actions]},
        "parameter_count": n_params,
        "onnx_opset": 17,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "golden": {
            "obs": golden_in.tolist(),
            "q_values": golden_out.tolist(),
            "mcs": np.argmax(golden_out, axis=1).tolist(),
            "atol": 1e-4,
        },
        "source": {
            "kind": "test",
            "kpis": {
                "simulator": {
                    "scenarios": {
                        "mimo": {
                            "summary": {
                                "student": {
                                    "throughput_mbps": {"mean": 50.0, "ci95": 1.0},
                                    "bler": {"mean": 0.1, "ci95": 0.01},
                                },
                                "olla": {"throughput_mbps": {"mean": 45.0, "ci95": 1.0}},
                            }
                        },
                        "high-mobility": {
                            "summary": {
                                "student": {
                                    "throughput_mbps": {"mean": 20.0, "ci95": 1.0},
                                    "bler": {"mean": 0.12, "ci95": 0.01},
                                }
                            }
                        },
                    }
                }
            },
        },
    }
    manifest.update(manifest_overrides or {})
    (path / "model.onnx").write_bytes(model_bytes)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


# ---------------------------------------------------------------- a real server on loopback
class ServerThread:
    """The full xApp (gRPC + REST) on 127.0.0.1 ephemeral ports, in a background thread
    with its own event loop; tests reach into ``app.dataplane`` through :meth:`call`."""

    def __init__(self, *, use_uvloop: bool = False, **settings: Any) -> None:
        """``use_uvloop``: the event loop ``ran-distill serve`` runs on (uvloop); the
        default asyncio loop answers a keep-alive HTTP request only after ~40 ms while the
        grpc.aio server shares it, which matters to tests sending thousands."""
        import asyncio
        import threading

        from service.app import XApp
        from service.config import load_settings

        defaults: dict[str, Any] = {
            "host": "127.0.0.1",
            "grpc_port": 0,
            "http_port": 0,
            "drain_seconds": 0.0,
            "reload_poll_seconds": 0,
            "log_level": "WARNING",
        }
        defaults.update(settings)
        self.settings = load_settings(**defaults)
        if use_uvloop:
            import uvloop

            self.loop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.app = XApp(self.settings)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="xapp-test")
        self.thread.start()
        if not self._started.wait(30):
            raise RuntimeError("server did not start within 30 s")
        if self._error is not None:
            raise self._error
        self.grpc_target = f"127.0.0.1:{self.app.grpc_port}"
        scheme = "https" if self.settings.tls_cert_file else "http"
        self.http_base = f"{scheme}://127.0.0.1:{self.app.http_port}"

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.app.start())
        except BaseException as exc:  # surfaced to the constructor
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop thread (safe access to its state)."""
        import asyncio

        async def _wrap() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(_wrap(), self.loop).result(30)

    def run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        self.run(self.app.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def random_reports(
    rng: np.random.Generator, ue_ids: np.ndarray, *, harq_tx_index: bool = False
) -> dict[str, np.ndarray]:
    """Valid random report columns for ``ue_ids`` (one slot); with ``harq_tx_index`` also
    that optional column (-1..3, about half retransmissions)."""
    n = ue_ids.shape[0]
    age = rng.integers(-1, 30, n)
    ack = rng.integers(-1, 2, n)
    cols = {
        "ue_id": ue_ids.astype(np.int64),
        "cqi": rng.integers(0, 16, n),
        "cqi_age_slots": age,
        "harq_ack": ack,
        "harq_mcs": rng.integers(0, 28, n),
        "rank": rng.integers(1, 5, n),
        "n_prb": rng.integers(1, 276, n),
        "n_symbols": rng.integers(1, 15, n),
        "buffer_bytes": np.where(rng.random(n) < 0.5, -1, rng.integers(0, 10**6, n)),
    }
    if harq_tx_index:
        cols["harq_tx_index"] = rng.integers(-1, 4, n)
    return cols


def json_request(cell_id: int, slot: int, cols: dict[str, np.ndarray]) -> dict[str, Any]:
    """The REST body for report columns."""
    doc: dict[str, Any] = {"cell_id": cell_id, "slot": slot}
    doc.update({k: np.asarray(v).tolist() for k, v in cols.items()})
    return doc


def grpc_request(cell_id: int, slot: int, cols: dict[str, np.ndarray]) -> Any:
    """The protobuf ``DecideRequest`` for report columns."""
    from service.proto_gen import link_adaptation_pb2 as pb

    return pb.DecideRequest(
        cell_id=cell_id, slot=slot, **{k: np.asarray(v).tolist() for k, v in cols.items()}
    )


def wait_for(cond: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Bounded wait for a condition (not a timing assertion)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def sample(srv: ServerThread, name: str, labels: dict[str, str] | None = None) -> float:
    value = srv.app.dataplane.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def raw_decide(cell: int, slot: int, n: int = 16, seed: int = 0) -> bytes:
    cols = random_reports(np.random.default_rng(seed), np.arange(n))
    return grpc_request(cell, slot, cols).SerializeToString()


class Gate:
    """Holds the inference worker before it processes a micro-batch, so requests stay
    admitted-and-unanswered for as long as the test wants (deterministic overload)."""

    def __init__(self, srv: ServerThread) -> None:
        self.dp = srv.app.dataplane
        self.open = threading.Event()
        self.entered = threading.Event()
        self._orig = self.dp.batcher.process

        def gated(requests: list[Any]) -> Any:
            self.entered.set()
            self.open.wait(30)
            return self._orig(requests)

        self.dp.batcher.process = gated

    def release(self) -> None:
        self.open.set()
        self.dp.batcher.process = self._orig
