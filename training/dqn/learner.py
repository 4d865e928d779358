"""The DQN learner: online and target Q-networks, loss, optimizer, target updates.

Loss for a batch of n-step transitions ``(s, a, R, s', d)`` where ``d`` is
``gamma**k`` (0 if the episode terminated):

    y = R + d · Q_target(s', argmax_a' Q_online(s', a'))   (double DQN)
    y = R + d · max_a' Q_target(s', a')                     (plain DQN)
    loss = mean_i w_i · Huber(Q_online(s, a) − y)

with ``w`` the prioritized-replay importance weights (ones for uniform replay).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.dqn.config import DQNConfig
from training.dqn.transitions import TransitionBatch


@dataclass
class UpdateStats:
    """Diagnostics of one gradient step."""

    loss: float
    q_mean: float
    td_abs: np.ndarray  # float [B] |TD error| for priority updates


class DQNLearner:
    """Owns the networks and performs gradient steps on replayed transitions."""

    def __init__(self, online: nn.Module, cfg: DQNConfig) -> None:
        self.cfg = cfg
        self.online = online
        self.target = copy.deepcopy(online)
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            online.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps
        )
        self.updates = 0

    def _targets(
        self, ret: torch.Tensor, next_obs: torch.Tensor, discount: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            q_next_target = self.target(next_obs)
            if self.cfg.double_dqn:
                best = self.online(next_obs).argmax(dim=1, keepdim=True)
                bootstrap = q_next_target.gather(1, best).squeeze(1)
            else:
                bootstrap = q_next_target.max(dim=1).values
            return ret + discount * bootstrap

    def update(self, batch: TransitionBatch, weights: np.ndarray | None = None) -> UpdateStats:
        """One gradient step on ``batch``; returns loss and per-sample |TD error|."""
        obs = torch.as_tensor(batch.obs)
        act = torch.as_tensor(batch.action).long()
        y = self._targets(
            torch.as_tensor(batch.ret),
            torch.as_tensor(batch.next_obs),
            torch.as_tensor(batch.discount),
        )
        q = self.online(obs).gather(1, act.unsqueeze(1)).squeeze(1)
        w = torch.ones_like(q) if weights is None else torch.as_tensor(weights)
        per_sample = F.huber_loss(q, y, reduction="none", delta=self.cfg.huber_delta)
        loss = (w * per_sample).mean()
        self._step(loss)
        q, y = q.detach(), y.detach()
        return UpdateStats(float(loss.detach()), float(q.mean()), (q - y).abs().numpy())

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self._update_target()

    def _update_target(self) -> None:
        if self.cfg.target_update == "hard":
            if self.updates % self.cfg.target_update_interval == 0:
                self.target.load_state_dict(self.online.state_dict())
            return
        with torch.no_grad():
            for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                t.lerp_(o, self.cfg.tau)

    def state_dict(self) -> dict[str, object]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.online.load_state_dict(state["online"])  # type: ignore[arg-type]
        self.target.load_state_dict(state["target"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[arg-type]
