"""ONNX export of feed-forward Q-networks, with the manifest the xApp verifies on load.

Format (documented in ``docs/model-format.md``): ``model.onnx`` with one input ``obs``
float32 ``[batch, obs_dim]`` (dynamic batch) and one output ``q_values`` float32
``[batch, n_actions]``; the action is ``argmax(q_values)`` = MCS index. Beside it,
``manifest.json`` carries the observation schema, sizes and golden input/output rows
the serving side replays to prove that it reproduces training exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import (
    ONNX_MODEL_FILE,
    load_torch_qnet,
    model_meta,
    observation_schema,
    read_manifest,
    sha256_file,
    write_manifest,
)

MODEL_FORMAT = "ran-distill-qnet"
MODEL_FORMAT_VERSION = 1
ONNX_OPSET = 17
GOLDEN_ATOL = 1e-4  # |q_onnx - q_torch| bound; float32 reassociation stays far below it


def golden_observations(obs_dim: int, n: int = 8, seed: int = 0) -> np.ndarray:
    """Deterministic synthetic observations float32 ``[n, obs_dim]`` in [-1, 1]
    (our features are scaled to about that range)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, obs_dim)).astype(np.float32)


def export_qnet(
    module,
    out_dir: str | Path,
    *,
    golden_obs: np.ndarray | None = None,
    n_golden: int = 8,
    seed: int = 0,
    arch: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Export a feed-forward Q-network to ``out_dir/model.onnx`` + ``out_dir/manifest.json``.

    Args:
        module: torch module mapping ``[B, obs_dim]`` → ``[B, n_actions]`` and exposing
            ``obs_dim`` / ``n_actions`` attributes (every :mod:`training.networks` MLP).
        out_dir: created if missing; existing ``model.onnx`` / ``manifest.json`` replaced.
        golden_obs: float32 ``[k, obs_dim]`` rows to record with their outputs
            (default: ``n_golden`` synthetic rows, :func:`golden_observations`).
        seed: seed of the synthetic golden rows.
        arch: architecture name to record.
        extra: more manifest keys (e.g. the training manifest's provenance).

    Returns the ``model.onnx`` path. Raises ``ValueError`` for recurrent networks (their
    state interface is not part of this format) and ``RuntimeError`` when onnxruntime
    does not reproduce torch's outputs on the golden rows.
    """
    import onnxruntime as ort
    import torch

    from training.networks import is_recurrent, parameter_count

    if is_recurrent(module):
        raise ValueError("recurrent Q-networks cannot be exported to the stateless ONNX format")
    obs_dim, n_actions = int(module.obs_dim), int(module.n_actions)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_MODEL_FILE
    module = module.eval()
    dummy = torch.zeros(1, obs_dim)
    with warnings.catch_warnings():
        # The legacy exporter is deprecated but is the one our format is pinned to: it
        # yields a plain static graph (Gemm/Relu) that every onnxruntime reads.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (dummy,),
            str(onnx_path),
            dynamo=False,
            input_names=["obs"],
            output_names=["q_values"],
            dynamic_axes={"obs": {0: "batch"}, "q_values": {0: "batch"}},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )
    golden = (
        golden_observations(obs_dim, n_golden, seed)
        if golden_obs is None
        else np.ascontiguousarray(golden_obs, np.float32)
    )
    if golden.ndim != 2 or golden.shape[1] != obs_dim:
        raise ValueError(f"golden_obs must be [k, {obs_dim}], got {golden.shape}")
    with torch.no_grad():
        q_torch = module(torch.as_tensor(golden)).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    q_onnx = sess.run(["q_values"], {"obs": golden})[0]
    err = float(np.abs(q_onnx - q_torch).max(initial=0.0))
    if err > GOLDEN_ATOL or not np.array_equal(q_onnx.argmax(1), q_torch.argmax(1)):
        raise RuntimeError(f"ONNX export mismatch: max |Δq| = {err:.3g}")
    manifest = qnet_manifest(
        arch=arch,
        obs_dim=obs_dim,
        n_actions=n_actions,
        n_params=parameter_count(module),
        onnx_path=onnx_path,
        golden_obs=golden,
        golden_q=q_torch.astype(np.float32),
    )
    if extra:
        manifest.update({k: v for k, v in extra.items() if k not in manifest})
    write_manifest(out, manifest)
    return onnx_path


def qnet_manifest(
    *,
    arch: str,
    obs_dim: int,
    n_actions: int,
    n_params: int,
    onnx_path: Path,
    golden_obs: np.ndarray,
    golden_q: np.ndarray,
) -> dict[str, Any]:
    """The model-format manifest (docs/model-format.md) of an exported Q-network: format,
    observation schema, I/O, action rule, size, the ONNX file's SHA-256 and the golden rows
    (``golden_obs`` ``[k, obs_dim]`` and their Q-values ``[k, n_actions]``) the xApp checks."""
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        **observation_schema(obs_dim),
        "obs_dim": obs_dim,
        "n_actions": n_actions,
        "mcs_table": 2,
        "input": {"name": "obs", "dtype": "float32", "shape": ["batch", obs_dim]},
        "output": {"name": "q_values", "dtype": "float32", "shape": ["batch", n_actions]},
        "action": "mcs = argmax(q_values, axis=1) (ties: lowest index)",
        "arch": arch,
        "parameter_count": n_params,
        "weight_bits_fp32": 32 * n_params,
        "onnx_opset": ONNX_OPSET,
        "model_sha256": sha256_file(onnx_path),
        "golden": {
            "obs": golden_obs.tolist(),
            "q_values": golden_q.tolist(),
            "mcs": golden_q.argmax(1).astype(int).tolist(),
            "atol": GOLDEN_ATOL,
        },
    }


def refuse_recurrent(arch: str | None, what: str) -> None:
    """``ValueError`` before any work when ``arch`` is recurrent: this stateless format
    cannot carry a GRU's hidden state (``ran-distill distill --arch gru-W`` exports one
    with its state as ONNX input/output, which the xApp does not serve)."""
    from training.networks import arch_spec

    if arch is not None and arch_spec(arch).kind == "gru":
        raise ValueError(
            f"{what}: {arch} is recurrent; the stateless ONNX format has no hidden state "
            "(ran-distill distill --arch gru-W exports it with the state as input/output, "
            "evaluated in-process; the xApp refuses it)"
        )


def verify_export(out_dir: str | Path) -> float:
    """Re-run the golden rows of ``out_dir/manifest.json`` through ``model.onnx``.

    Returns the max |Δq|; raises ``AssertionError`` on a hash, shape, value or argmax
    mismatch. This is what a consumer of the format should do on load.
    """
    import onnxruntime as ort

    d = Path(out_dir)
    man = read_manifest(d)
    assert man["format"] == MODEL_FORMAT, man["format"]
    onnx_path = d / ONNX_MODEL_FILE
    assert sha256_file(onnx_path) == man["model_sha256"], "model.onnx hash mismatch"
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    obs = np.asarray(man["golden"]["obs"], np.float32)
    q = sess.run([man["output"]["name"]], {man["input"]["name"]: obs})[0]
    expect = np.asarray(man["golden"]["q_values"], np.float32)
    assert q.shape == expect.shape == (obs.shape[0], man["n_actions"])
    err = float(np.abs(q - expect).max(initial=0.0))
    assert err <= man["golden"]["atol"], f"max |Δq| {err}"
    assert q.argmax(1).tolist() == man["golden"]["mcs"], "argmax mismatch"
    return err


def simulator_golden_obs(
    scenario: str, n: int = 8, seed: int = 0, warmup_steps: int = 50, privileged: bool = False
) -> np.ndarray:
    """Realistic golden rows: observations of ``n`` UEs of ``scenario`` after
    ``warmup_steps`` slots of random MCS choices (so HARQ history columns are filled)."""
    from training.vector_envs import make_vector_env

    env = make_vector_env(scenario, n, seed, privileged=privileged)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(warmup_steps):
        obs, *_ = env.step(rng.integers(0, env.single_action_space.n, size=n))
    env.close()
    return np.asarray(obs, np.float32)


def export_from_run(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    golden_scenario: str | None = "mimo",
    n_golden: int = 8,
) -> Path:
    """Export the Q-network of a training run directory (``model.pt`` + manifest/config).

    Golden rows come from ``golden_scenario`` (simulator observations) when the model
    reads simulator observations, else synthetic rows. Provenance (training command,
    seed, source weights hash, KPIs: the whole training manifest) is kept under ``source``,
    so one ``manifest.json`` can sit beside both ``model.onnx`` and ``model.pt``.
    """
    src = Path(model_dir)
    meta = model_meta(src)
    refuse_recurrent(meta.get("arch"), str(src))
    net = load_torch_qnet(src)
    schema = observation_schema(int(net.obs_dim))
    golden = None
    if golden_scenario and schema["obs_schema_version"] is not None:
        golden = simulator_golden_obs(golden_scenario, n_golden, privileged=schema["privileged"])
    extra = {"source": meta}
    return export_qnet(
        net, out_dir, golden_obs=golden, n_golden=n_golden, arch=meta.get("arch"), extra=extra
    )
