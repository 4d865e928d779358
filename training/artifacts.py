"""Model directories and their manifests: the one place that reads and writes them.

A model directory holds some of:

- ``model.pt``: a torch Q-network's ``state_dict`` (load with ``weights_only=True``);
  distilled students written before ``model.pt`` was their name hold ``student.pt``
  instead (:func:`torch_weights_file` finds either, so any student can teach);
- ``model.onnx``: the exported network (format in ``docs/model-format.md``);
- ``manifest.json``: what the model is, where it came from, how good it was;
- ``config.json``: the training configuration of a run (a run trained through the
  Python API has no manifest until ``ran-distill train-teacher`` writes one).

Writers: :func:`write_teacher_manifest` (a trained teacher) and :func:`write_manifest`
(any manifest dict, e.g. the ONNX export's). Readers: :func:`read_manifest`,
:func:`model_meta` (architecture and sizes, with or without a manifest),
:func:`load_torch_qnet`, :func:`onnx_model_file`, :func:`has_torch_weights`. Importing
this module does not import torch (the readers that need it import it when called).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.json"
TORCH_WEIGHTS_FILE = "model.pt"
LEGACY_STUDENT_WEIGHTS_FILE = "student.pt"
ONNX_MODEL_FILE = "model.onnx"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def observation_schema(obs_dim: int) -> dict[str, Any]:
    """Schema version, privileged flag and feature names when ``obs_dim`` is the
    simulator's observation size (with or without the privileged columns); Nones for
    any other task (e.g. CartPole)."""
    from linkadapt import features

    if obs_dim == features.OBS_DIM:
        return {
            "obs_schema_version": features.OBS_SCHEMA_VERSION,
            "privileged": False,
            "feature_names": list(features.FEATURE_NAMES),
        }
    if obs_dim == features.OBS_DIM + features.PRIVILEGED_DIM:
        return {
            "obs_schema_version": features.OBS_SCHEMA_VERSION,
            "privileged": True,
            "feature_names": list(features.FEATURE_NAMES) + list(features.PRIVILEGED_NAMES),
        }
    return {"obs_schema_version": None, "privileged": False, "feature_names": None}


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """``model_dir/manifest.json`` as a dict (``FileNotFoundError`` when absent)."""
    return json.loads((Path(model_dir) / MANIFEST_FILE).read_text())


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``out_dir/manifest.json`` (numpy scalars and arrays become JSON numbers and
    lists); returns its path."""
    path = Path(out_dir) / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, default=jsonable) + "\n")
    return path


def model_meta(model_dir: str | Path) -> dict[str, Any]:
    """What is needed to rebuild the torch Q-network of ``model_dir``: at least ``arch``,
    ``obs_dim`` and ``n_actions``.

    The manifest when there is one (all of it: it is also the provenance an export
    keeps); otherwise the architecture from the run's ``config.json`` and the sizes from
    the shapes of ``model.pt`` (its first layer's inputs, its last layer's outputs).
    """
    d = Path(model_dir)
    if (d / MANIFEST_FILE).exists():
        return read_manifest(d)
    config_path = d / CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(f"{d}: neither {MANIFEST_FILE} nor {CONFIG_FILE}")
    import torch

    from training.networks import state_dict_dims

    arch = json.loads(config_path.read_text())["arch"]
    state = torch.load(torch_weights_file(d), weights_only=True, map_location="cpu")
    obs_dim, n_actions = state_dict_dims(state)
    return {"arch": arch, "obs_dim": obs_dim, "n_actions": n_actions}


def torch_weights_file(model_dir: str | Path) -> Path:
    """The torch weights of a model directory: ``model.pt``, else a distilled student's
    ``student.pt``; ``FileNotFoundError`` naming both when neither exists."""
    d = Path(model_dir)
    for name in (TORCH_WEIGHTS_FILE, LEGACY_STUDENT_WEIGHTS_FILE):
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(f"{d}: neither {TORCH_WEIGHTS_FILE} nor {LEGACY_STUDENT_WEIGHTS_FILE}")


def load_torch_qnet(model_dir: str | Path) -> Any:
    """Rebuild the Q-network of a run/model directory and load its weights
    (:func:`torch_weights_file`, weights only); returned in eval mode. Architecture and
    sizes: :func:`model_meta`."""
    import torch

    from training.networks import build_qnet

    d = Path(model_dir)
    meta = model_meta(d)
    net = build_qnet(meta["arch"], int(meta["obs_dim"]), int(meta["n_actions"]))
    state = torch.load(torch_weights_file(d), weights_only=True, map_location="cpu")
    net.load_state_dict(state)
    return net.eval()


def onnx_model_file(path: str | Path) -> Path | None:
    """The ONNX model a path names: the ``.onnx`` file itself or ``DIR/model.onnx``."""
    p = Path(path)
    if p.is_file() and p.suffix == ".onnx":
        return p
    if p.is_dir() and (p / ONNX_MODEL_FILE).exists():
        return p / ONNX_MODEL_FILE
    return None


def has_torch_weights(path: str | Path) -> bool:
    """True when ``path`` is a directory holding ``model.pt`` (or a student's ``student.pt``)."""
    p = Path(path)
    return p.is_dir() and any(
        (p / name).is_file() for name in (TORCH_WEIGHTS_FILE, LEGACY_STUDENT_WEIGHTS_FILE)
    )


def write_teacher_manifest(
    out_dir: str | Path,
    *,
    cfg: Any,
    net: Any,
    wall_s: float,
    transitions: int,
    updates: int,
    command: list[str] | None,
    kpis: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/manifest.json`` for a trained Q-network (``out_dir/model.pt``).

    ``cfg`` is the run's ``DQNConfig`` (read for ``arch``, ``env``, ``seed``, ``backend``),
    ``net`` the trained module (``obs_dim``, ``n_actions``).

    Keys: ``kind``, ``arch``, ``parameter_count``, ``obs_dim``, ``n_actions``,
    ``obs_schema_version``, ``privileged``, ``feature_names``, ``env``, ``seed``,
    ``command`` (argv), ``wall_time_s``, ``transitions``, ``gradient_updates``,
    ``kpis`` (evaluation results), ``weights`` (file and sha256), versions, timestamp.
    """
    import torch

    from training.networks import parameter_count

    out = Path(out_dir)
    obs_dim, n_actions = int(net.obs_dim), int(net.n_actions)
    manifest: dict[str, Any] = {
        "kind": "dqn-teacher",
        "arch": cfg.arch,
        "parameter_count": parameter_count(net),
        "obs_dim": obs_dim,
        "n_actions": n_actions,
        **observation_schema(obs_dim),
        "env": cfg.env,
        "seed": cfg.seed,
        "backend": cfg.backend,
        "command": command if command is not None else sys.argv,
        "wall_time_s": round(wall_s, 1),
        "transitions": transitions,
        "gradient_updates": updates,
        "kpis": kpis or {},
        "weights": {
            "file": TORCH_WEIGHTS_FILE,
            "sha256": sha256_file(out / TORCH_WEIGHTS_FILE),
            "load": "torch.load(path, weights_only=True)",
        },
        "config": CONFIG_FILE,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if extra:
        manifest.update(extra)
    return write_manifest(out, manifest)


def jsonable(x: Any) -> Any:
    """``json.dumps`` fallback: numpy values as Python numbers / lists, anything else as str."""
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
