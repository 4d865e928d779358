"""Acting with a Q-network in a vector env: choose on the deciding rows only, carry GRU state.

In the simulator only the UEs that start a transport block this slot make a decision
(:func:`linkadapt.policy.act_on_deciding_rows`); the others get action 0, which the env
ignores, and a recurrent network's state does not move for them. Used by the DQN
rollouts (ε-greedy), the DQN's periodic greedy evaluation and distillation's data
collection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from linkadapt.policy import act_on_deciding_rows


def greedy(q: torch.Tensor) -> np.ndarray:
    """Argmax actions int64 ``[N]`` of Q-values ``[N, A]`` (ties: lowest index)."""
    return q.argmax(dim=1).numpy()


def epsilon_greedy(q: torch.Tensor, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Greedy argmax of ``q`` ``[N, A]``, replaced by a uniform action with prob. ``epsilon``."""
    best = greedy(q)
    if epsilon <= 0.0:
        return best
    explore = rng.random(best.shape[0]) < epsilon
    random = rng.integers(0, q.shape[1], size=best.shape[0])
    return np.where(explore, random, best).astype(np.int64)


def act_q_network(
    net: nn.Module,
    obs: np.ndarray,
    deciding: np.ndarray | None,
    pick: Callable[[torch.Tensor], np.ndarray] = greedy,
    hidden: torch.Tensor | None = None,
) -> tuple[np.ndarray, torch.Tensor | None]:
    """Actions int64 ``[N]`` chosen by ``pick(q)`` on the deciding rows of ``obs``.

    Args:
        net: a Q-network of :mod:`training.networks`.
        obs: float32 ``[N, obs_dim]``.
        deciding: bool ``[N]`` rows that decide this step (``None``: all rows), e.g.
            :func:`training.vector_envs.upcoming_decisions`.
        pick: Q-values ``[n, A]`` of the deciding rows -> their actions.
        hidden: a recurrent network's state ``[1, N, H]`` before this step; ``None`` for a
            feed-forward network.

    Returns the actions and, for a recurrent network, the state after this step
    ``[1, N, H]`` (the rows that did not decide keep theirs); ``hidden`` itself is not
    modified (see :func:`advance_hidden`).
    """
    h_next = None if hidden is None else hidden.clone()

    def choose(rows: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs[rows])
        if hidden is None or h_next is None:
            return pick(net(x))
        q, h_rows = net.forward_seq(x.unsqueeze(1), hidden[:, rows])
        h_next[:, rows] = h_rows
        return pick(q.squeeze(1))

    with torch.no_grad():
        actions = act_on_deciding_rows(deciding, obs.shape[0], choose)
    return actions, h_next


def advance_hidden(
    hidden: torch.Tensor, h_next: torch.Tensor, decision: np.ndarray, done: np.ndarray
) -> None:
    """Move ``hidden`` ``[1, N, H]`` to ``h_next`` on the rows whose action was a real
    decision (as in serving: the state moves on decisions only), and back to zero on the
    rows whose episode ended. In place."""
    dec = torch.as_tensor(decision)
    hidden[:, dec] = h_next[:, dec]
    hidden[:, torch.as_tensor(done)] = 0.0
