"""Policy distillation: a teacher's Q-values -> a small student, exported and evaluated.

One concept per module:

- :mod:`.config`: :class:`DistillConfig` (one option of ``ran-distill distill`` per field);
- :mod:`.teachers`: torch directories, ONNX models and modules as one :class:`Teacher`;
  the student's columns sliced from the teacher's view by name;
- :mod:`.sources`, :mod:`.synthetic`: teacher-driven, student-driven (DAgger) and
  synthetic data from the simulator or any Gymnasium task;
- :mod:`.dataset`: content-hashed chunks on disk, reused by a rerun, read through a
  shuffle buffer;
- :mod:`.losses`: kl, reverse-kl, mse, nll, feature matching;
- :mod:`.students`, :mod:`.fit`, :mod:`.validation`: the students, the epochs with early
  stopping on held-out states;
- :mod:`.engine`: the loop of rounds for one student; :mod:`.strategies`: single,
  privileged, multi-policy, progressive (and the DQN-trained modes via ``runners``);
- :mod:`.export`, :mod:`.writer`, :mod:`.provenance`, :mod:`.evaluation`: the student
  directory: ONNX with parity, int8, manifest, evaluation;
- :mod:`.cli`: ``ran-distill distill``; :mod:`.report`: ``ran-distill report``.

Names below load on first use: importing the package loads neither torch nor the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.distill.cli import register
    from training.distill.config import FLAGS, LOSSES, STRATEGIES, DistillConfig
    from training.distill.losses import distillation_loss
    from training.distill.strategies import run
    from training.distill.teachers import Teacher, load_teacher

_WHERE = {
    "DistillConfig": "training.distill.config",
    "FLAGS": "training.distill.config",
    "LOSSES": "training.distill.config",
    "STRATEGIES": "training.distill.config",
    "distillation_loss": "training.distill.losses",
    "register": "training.distill.cli",
    "run": "training.distill.strategies",
    "Teacher": "training.distill.teachers",
    "load_teacher": "training.distill.teachers",
}

__all__ = [
    "FLAGS",
    "LOSSES",
    "STRATEGIES",
    "DistillConfig",
    "Teacher",
    "distillation_loss",
    "load_teacher",
    "register",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'training.distill' has no attribute {name!r}")
