"""A student's ONNX: exported, proven equal to torch on held-out states, optionally int8.

- Feed-forward students use the model format of :mod:`training.export` (``obs`` ->
  ``q_values``, dynamic batch, opset 17, one file), which the xApp serves.
- A GRU student is exported *stateful*: inputs ``obs`` ``[batch, obs_dim]`` and ``h``
  ``[1, batch, H]``, outputs ``q_values`` and ``h_out``; the manifest says
  ``"recurrent"`` with the state's names and size. The caller keeps one state per UE and
  feeds ``h_out`` back on the UE's next decision. The xApp does not keep per-UE hidden
  state and refuses such a model at load (``service.registry``); it is evaluated
  in-process (:class:`training.policies.TorchQPolicy`).

Parity (:func:`parity_check`): the held-out observations (up to ``PARITY_ROWS``) go through
torch and onnxruntime; the export fails unless every argmax agrees and max |ΔQ| ≤
``PARITY_RTOL`` × (the Q range over those rows). A GRU runs each held-out sequence step by
step with the state fed back.

``--int8`` (:func:`quantize_int8`) writes ``model.int8.onnx`` with onnxruntime's dynamic
quantization (int8 weights, activations quantized on the fly) and reports its argmax
agreement with the float model on the same rows, both file sizes and both latencies.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import ONNX_MODEL_FILE, sha256_file, write_manifest
from training.export import ONNX_OPSET, qnet_manifest
from training.networks import is_recurrent, parameter_count

PARITY_ROWS = 10_000
PARITY_RTOL = 1e-5
INT8_MODEL_FILE = "model.int8.onnx"


def export_student(
    student: Any,
    out: Path,
    held_obs: np.ndarray,
    *,
    arch: str,
    feature_names: tuple[str, ...] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write ``out/model.onnx`` + ``manifest.json`` for ``student`` and prove parity on
    ``held_obs`` ``[n, T, obs_dim]``; returns the parity numbers (also in the manifest)."""
    from training.export import export_qnet

    golden = np.ascontiguousarray(held_obs[:8, 0], np.float32)
    if is_recurrent(student):
        _export_recurrent(student, out, golden, arch=arch, extra=extra)
    else:
        export_qnet(student, out, golden_obs=golden, arch=arch, extra=extra)
    manifest = _read(out)
    if feature_names is None and manifest.get("feature_names") is None:
        manifest["obs_schema_version"] = None
    parity = parity_check(student, out / ONNX_MODEL_FILE, held_obs)
    manifest["parity"] = parity
    write_manifest(out, manifest)
    return parity


def onnx_q_values(session: Any, obs: np.ndarray) -> np.ndarray:
    """Q-values ``[n, T, A]`` of an onnxruntime session for ``obs`` ``[n, T, D]``: one call
    for a stateless model, ``T`` steps with the state fed back for a stateful one."""
    names = [i.name for i in session.get_inputs()]
    obs = np.ascontiguousarray(obs, np.float32)
    if names == ["obs"]:
        n, t, d = obs.shape
        q = session.run(["q_values"], {"obs": obs.reshape(n * t, d)})[0]
        return q.reshape(n, t, -1)
    hidden = int(session.get_inputs()[1].shape[2])
    h = np.zeros((1, obs.shape[0], hidden), np.float32)
    steps = []
    for step in range(obs.shape[1]):
        q, h = session.run(["q_values", "h_out"], {"obs": obs[:, step], "h": h})
        steps.append(q)
    return np.stack(steps, axis=1)


def parity_check(student: Any, onnx_path: Path, held_obs: np.ndarray) -> dict[str, Any]:
    """Torch vs onnxruntime on the held-out rows (module doc); ``RuntimeError`` on a miss."""
    from training.distill.validation import student_q_values

    obs = _parity_rows(held_obs)
    q_torch = student_q_values(student, obs)
    q_onnx = onnx_q_values(_session(onnx_path), obs)
    q_range = float(q_torch.max() - q_torch.min()) if q_torch.size else 0.0
    err = float(np.abs(q_onnx - q_torch).max(initial=0.0))
    agree = float(np.mean(q_onnx.argmax(-1) == q_torch.argmax(-1)))
    bound = PARITY_RTOL * max(q_range, 1e-12)
    result = {
        "rows": int(obs.shape[0] * obs.shape[1]),
        "argmax_agreement": agree,
        "max_abs_dq": err,
        "q_range": q_range,
        "max_rel_dq": err / max(q_range, 1e-12),
        "rtol": PARITY_RTOL,
    }
    if agree < 1.0 or err > bound:
        raise RuntimeError(
            f"ONNX parity failed on {result['rows']} held-out rows: argmax agreement "
            f"{agree:.5f}, max |ΔQ| {err:.3g} > {PARITY_RTOL:g} × Q range {q_range:.3g}"
        )
    return result


def quantize_int8(out: Path, held_obs: np.ndarray) -> dict[str, Any]:
    """Write ``out/model.int8.onnx`` and compare it with ``out/model.onnx`` (module doc)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = out / ONNX_MODEL_FILE, out / INT8_MODEL_FILE
    import logging

    # quantize_dynamic logs a pre-processing hint at WARNING for every model; it does not apply
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    obs = _parity_rows(held_obs)
    float_s, int8_s = _session(src), _session(dst)
    q_float, q_int8 = onnx_q_values(float_s, obs), onnx_q_values(int8_s, obs)
    return {
        "file": INT8_MODEL_FILE,
        "sha256": sha256_file(dst),
        "rows": int(obs.shape[0] * obs.shape[1]),
        "argmax_agreement_vs_float": float(np.mean(q_float.argmax(-1) == q_int8.argmax(-1))),
        "max_abs_dq_vs_float": float(np.abs(q_float - q_int8).max(initial=0.0)),
        "bytes": {"float": src.stat().st_size, "int8": dst.stat().st_size},
        "latency_us": {"float": latency_us(float_s, obs), "int8": latency_us(int8_s, obs)},
    }


def latency_us(session: Any, obs: np.ndarray, reps: int = 200) -> dict[str, float]:
    """Median wall time (µs) of one call at batch 1, 64 (a cell's slot: the latency target)
    and 256 (one step)."""
    out = {}
    for batch in (1, 64, 256):
        x = np.ascontiguousarray(np.resize(obs[:, 0], (batch, obs.shape[-1])), np.float32)
        feed: dict[str, np.ndarray] = {"obs": x}
        inputs = session.get_inputs()
        if len(inputs) > 1:
            feed["h"] = np.zeros((1, batch, int(inputs[1].shape[2])), np.float32)
        session.run(None, feed)
        times = []
        for _ in range(reps if batch == 1 else reps // 4):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - t0)
        out[f"batch_{batch}"] = float(np.median(times) * 1e6)
    return out


def _export_recurrent(
    student: Any, out: Path, golden: np.ndarray, *, arch: str, extra: dict[str, Any]
) -> None:
    """The stateful GRU export and its manifest (module doc)."""
    import torch

    class Step(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, obs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            q, h_out = self.net.forward_seq(obs.unsqueeze(1), h)
            return q.squeeze(1), h_out

    out.mkdir(parents=True, exist_ok=True)
    obs_dim, n_actions, hidden = int(student.obs_dim), int(student.n_actions), student.hidden_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns about GRU batch_first
        torch.onnx.export(
            Step(student.eval()),
            (torch.zeros(2, obs_dim), torch.zeros(1, 2, hidden)),
            str(out / ONNX_MODEL_FILE),
            dynamo=False,
            input_names=["obs", "h"],
            output_names=["q_values", "h_out"],
            dynamic_axes={
                "obs": {0: "batch"},
                "h": {1: "batch"},
                "q_values": {0: "batch"},
                "h_out": {1: "batch"},
            },
            opset_version=ONNX_OPSET,
        )
    with torch.no_grad():
        q, _ = Step(student)(torch.from_numpy(golden), torch.zeros(1, len(golden), hidden))
    q_np = q.numpy()
    manifest = qnet_manifest(
        arch=arch,
        obs_dim=obs_dim,
        n_actions=n_actions,
        n_params=parameter_count(student),
        onnx_path=out / ONNX_MODEL_FILE,
        golden_obs=golden,
        golden_q=q_np,
    )
    manifest["recurrent"] = {
        "state_input": "h",
        "state_output": "h_out",
        "shape": [1, "batch", hidden],
        "rule": "one state per UE, zero at attach; feed h_out back on its next decision",
    }
    manifest["golden"]["state"] = "zeros"
    manifest.update({k: v for k, v in extra.items() if k not in manifest})
    write_manifest(out, manifest)


def _parity_rows(held_obs: np.ndarray) -> np.ndarray:
    """At most :data:`PARITY_ROWS` decisions of ``held_obs`` ``[n, T, D]`` (whole sequences)."""
    t = max(1, held_obs.shape[1])
    return np.ascontiguousarray(held_obs[: max(1, PARITY_ROWS // t)], np.float32)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _read(out: Path) -> dict[str, Any]:
    from training.artifacts import read_manifest

    return read_manifest(out)
