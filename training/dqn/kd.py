"""Online distillation: a student learns by DQN *and* from a teacher's softened Q-values.

The student acts and learns from its own replay like any DQN agent; on every replayed
batch its loss gains a knowledge-distillation term

    λ_t · T² · KL(softmax(q_T(s) / T) ‖ softmax(q_S(s) / T)),   λ_t = λ_0 · decay^t

(Hinton et al. 2015's softened targets at temperature T, T² keeping the gradient scale;
the weight decays with the gradient step t so the student ends on its own TD objective, as
in the KD-for-DQN setting of "Knowledge Distillation for Deep Q-Networks": teachers of
128-128, students of 64-64, T = 5, CartPole). The teacher only labels replayed states;
it never acts. A recurrent teacher labels each state from a zero state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from training.dqn.config import DQNConfig
from training.dqn.learner import DQNLearner, UpdateStats
from training.dqn.transitions import TransitionBatch


def kd_term(student_q: torch.Tensor, teacher_q: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(q_T/T) ‖ softmax(q_S/T)), mean over rows."""
    target = F.softmax(teacher_q / temperature, dim=1)
    log_student = F.log_softmax(student_q / temperature, dim=1)
    return temperature**2 * F.kl_div(log_student, target, reduction="batchmean")


class KDLearner(DQNLearner):
    """:class:`DQNLearner` whose every gradient step adds the decaying KD term.

    Args:
        online: the student Q-network (feed-forward).
        cfg: the DQN configuration.
        teacher: labels replayed observations: ``teacher(obs) -> (q, _)`` on numpy rows
            (a :class:`training.distill.teachers.Teacher`'s ``q_values``).
        temperature, weight, decay: T, λ_0 and the per-step factor of λ.
    """

    def __init__(
        self,
        online: nn.Module,
        cfg: DQNConfig,
        teacher: Any,
        *,
        temperature: float,
        weight: float,
        decay: float,
    ) -> None:
        if getattr(online, "recurrent", False):
            raise ValueError("online distillation trains feed-forward students")
        super().__init__(online, cfg)
        self.teacher, self.temperature = teacher, temperature
        self.weight0, self.decay = weight, decay
        self._obs: torch.Tensor | None = None
        self.last_kd = float("nan")

    @property
    def kd_weight(self) -> float:
        """λ at the current gradient step."""
        return self.weight0 * self.decay**self.updates

    def update(self, batch: TransitionBatch, weights: np.ndarray | None = None) -> UpdateStats:
        self._obs = torch.as_tensor(batch.obs)
        return super().update(batch, weights)

    def _step(self, loss: torch.Tensor) -> None:
        weight = self.kd_weight
        if self._obs is not None and weight > 0:
            teacher_q, _ = self.teacher(self._obs.numpy())
            kd = kd_term(self.online(self._obs), torch.as_tensor(teacher_q), self.temperature)
            self.last_kd = float(kd.detach())
            loss = loss + weight * kd
        super()._step(loss)
