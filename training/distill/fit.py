"""Fitting a student to its dataset: epochs through the shuffle buffer, early stopping.

After every epoch the student is scored on the held-out states
(:mod:`training.distill.validation`); a round stops after ``patience`` epochs without a
better held-out argmax agreement, and the round's best weights are kept (the next round
starts from them). The feature loss trains a linear projection beside the student; it is
not part of the exported model.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from training.distill.config import DistillConfig
from training.distill.dataset import Dataset
from training.distill.losses import distillation_loss
from training.distill.sources import Samples
from training.distill.students import forward_with_hidden, hidden_width
from training.distill.validation import evaluate_held_out


@dataclass
class Learner:
    """The student, the feature loss's projection (or ``None``) and their optimizer."""

    student: nn.Module
    projection: nn.Module | None
    optimizer: torch.optim.Optimizer
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, student: nn.Module, cfg: DistillConfig, teacher_width: int) -> Learner:
        projection = None
        params = list(student.parameters())
        if cfg.loss == "feature":
            projection = nn.Linear(hidden_width(student), teacher_width)
            params += list(projection.parameters())
        return cls(student, projection, torch.optim.Adam(params, lr=cfg.lr))

    def state_dict(self) -> dict[str, Any]:
        return {
            "student": self.student.state_dict(),
            "projection": None if self.projection is None else self.projection.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        if self.projection is not None and state.get("projection") is not None:
            self.projection.load_state_dict(state["projection"])
        self.optimizer.load_state_dict(state["optimizer"])


def batch_loss(learner: Learner, batch: Samples, cfg: DistillConfig) -> torch.Tensor:
    """The configured loss of one minibatch (sequences flattened to rows)."""
    x = torch.from_numpy(np.ascontiguousarray(batch.obs))
    q_s, h_s = forward_with_hidden(learner.student, x)
    n_actions = q_s.shape[-1]
    q_t = torch.from_numpy(np.ascontiguousarray(batch.q)).reshape(-1, n_actions)
    teacher_hidden = None
    if batch.feat is not None:
        teacher_hidden = torch.from_numpy(np.ascontiguousarray(batch.feat))
        teacher_hidden = teacher_hidden.reshape(-1, teacher_hidden.shape[-1])
    return distillation_loss(
        cfg.loss,
        q_s.reshape(-1, n_actions),
        q_t,
        cfg.temperature,
        student_hidden=h_s.reshape(-1, h_s.shape[-1]),
        teacher_hidden=teacher_hidden,
        projection=learner.projection,
        feature_weight=cfg.feature_weight,
    )


def train_round(
    learner: Learner,
    data: Dataset,
    held: Samples,
    cfg: DistillConfig,
    rng: np.random.Generator,
    round_index: int,
) -> list[dict[str, Any]]:
    """Up to ``cfg.epochs`` epochs over ``data`` with early stopping; appends one record
    per epoch to ``learner.history`` (and returns this round's) and leaves the student at
    the round's best held-out agreement."""
    student = learner.student
    best_score, best_state, stale = -math.inf, None, 0
    records: list[dict[str, Any]] = []
    for epoch in range(cfg.epochs):
        started = time.perf_counter()
        student.train()
        total, rows = 0.0, 0
        for batch in data.batches(cfg.batch_size, rng, cfg.shuffle_buffer):
            loss = batch_loss(learner, batch, cfg)
            learner.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            learner.optimizer.step()
            total += float(loss.detach()) * len(batch)
            rows += len(batch)
        student.eval()
        metrics = evaluate_held_out(student, held, cfg.temperature)
        record = {
            "round": round_index,
            "epoch": epoch,
            "samples": len(data),
            "train_loss": total / max(rows, 1),
            **{f"val_{k}": v for k, v in metrics.items()},
            "wall_s": round(time.perf_counter() - started, 3),
        }
        records.append(record)
        score = metrics["argmax_agreement"]
        if score > best_score:
            best_score, best_state, stale = score, copy.deepcopy(learner.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                record["early_stop"] = epoch < cfg.epochs - 1
                break
    if best_state is not None:
        learner.load_state_dict(best_state)
    student.eval()
    learner.history.extend(records)
    return records
