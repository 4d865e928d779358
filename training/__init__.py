"""Offline training (torch): DQN teachers, distillation, ONNX export, evaluation reports.

Where things are:

- :mod:`training.dqn`: the DQN teacher (CleanRL-style): :class:`~training.dqn.config.DQNConfig`,
  :func:`~training.dqn.trainer.train`, replay, learners, rollout backends (local, Ray) and
  ``ran-distill train-teacher`` (:mod:`training.dqn.cli`). It sits on top: it may import
  the rest of ``training``, nothing here imports it
  (``tests/training/test_training_imports.py``).
- :mod:`training.distill`: teacher -> student (:class:`DistillConfig`,
  :func:`training.distill.distill`) and ``ran-distill distill``.
- :mod:`training.networks`: the Q-networks and their architecture names.
- :mod:`training.acting`: acting with a Q-network on the rows that decide a slot.
- :mod:`training.policies`: baselines, torch and ONNX models as ``linkadapt`` policies
  (:func:`resolve_policy`); :mod:`training.evaluate`: ``ran-distill evaluate``'s reports.
- :mod:`training.artifacts`: model directories and manifests (read and write);
  :mod:`training.export`: the ONNX model format the xApp loads.
- :mod:`training.vector_envs`: the simulator or a Gymnasium id as one vector env;
  :mod:`training.plots`: learning curves and KPI bars.
- :mod:`training.config_fields`, :mod:`training.config_cli`: configuration dataclasses
  documented field by field, and their command-line options.
- :mod:`training.cli`: ``ran-distill evaluate`` and ``export-onnx``.

Names below load on first use (PEP 562): importing ``training`` or :mod:`training.cli`
loads neither torch nor the simulator (the serving image has no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.artifacts import load_torch_qnet, model_meta, read_manifest
    from training.distill import DistillConfig
    from training.evaluate import run_evaluation
    from training.export import export_from_run, export_qnet, verify_export
    from training.networks import ARCHITECTURES, build_qnet
    from training.policies import OnnxQPolicy, TorchQPolicy, resolve_policy

_WHERE = {
    "load_torch_qnet": "training.artifacts",
    "model_meta": "training.artifacts",
    "read_manifest": "training.artifacts",
    "DistillConfig": "training.distill",
    "run_evaluation": "training.evaluate",
    "export_from_run": "training.export",
    "export_qnet": "training.export",
    "verify_export": "training.export",
    "ARCHITECTURES": "training.networks",
    "build_qnet": "training.networks",
    "OnnxQPolicy": "training.policies",
    "TorchQPolicy": "training.policies",
    "resolve_policy": "training.policies",
}

__all__ = [
    "ARCHITECTURES",
    "DistillConfig",
    "OnnxQPolicy",
    "TorchQPolicy",
    "build_qnet",
    "export_from_run",
    "export_qnet",
    "load_torch_qnet",
    "model_meta",
    "read_manifest",
    "resolve_policy",
    "run_evaluation",
    "verify_export",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
