"""Run manifests: what a trained model is, where it came from, how good it was."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from training.export import sha256_file


def observation_schema(obs_dim: int) -> dict[str, Any]:
    """Schema version and feature names when ``obs_dim`` is the simulator's (else Nones)."""
    from training.export import _schema_info

    return _schema_info(obs_dim)


def write_manifest(
    out_dir: str | Path,
    *,
    cfg,
    net,
    wall_s: float,
    transitions: int,
    updates: int,
    command: list[str] | None,
    kpis: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/manifest.json`` for a trained Q-network.

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
            "file": "model.pt",
            "sha256": sha256_file(out / "model.pt"),
            "load": "torch.load(path, weights_only=True)",
        },
        "config": "config.json",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if extra:
        manifest.update(extra)
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(x: Any) -> Any:
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)
