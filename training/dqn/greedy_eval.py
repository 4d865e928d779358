"""Periodic greedy evaluation during training (a fixed-seed env, no exploration)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from linkadapt.sim.reward import RewardConfig
from training.acting import act_q_network, advance_hidden, greedy
from training.networks import is_recurrent
from training.vector_envs import (
    decision_mask,
    decision_reward,
    make_vector_env,
    step_throughput,
    upcoming_decisions,
)


@dataclass
class GreedyEvalResult:
    """Greedy performance on the evaluation env.

    Attributes:
        mean_return: mean undiscounted return of the episodes that ended (NaN if none).
        episodes: number of such episodes.
        reward_per_decision: mean reward over real decisions (env reward units).
        throughput_mbps: mean ``info["throughput_mbps"]`` (NaN if the env has none).
    """

    mean_return: float
    episodes: int
    reward_per_decision: float
    throughput_mbps: float


def greedy_evaluate(
    net: nn.Module,
    env_name: str,
    *,
    num_envs: int,
    steps: int,
    seed: int,
    privileged: bool = False,
    episode_slots: int = 200,
    reward: RewardConfig | str = "harq",
) -> GreedyEvalResult:
    """Run the greedy policy of ``net`` for ``steps`` vector steps on a fresh env seeded ``seed``.

    The same seed at every evaluation makes successive points of the learning curve
    comparable (same channel realizations / initial states).
    """
    env = make_vector_env(
        env_name, num_envs, seed, privileged=privileged, episode_slots=episode_slots, reward=reward
    )
    obs, _ = env.reset(seed=seed)
    hidden = net.initial_state(num_envs) if is_recurrent(net) else None
    ep_ret = np.zeros(num_envs)
    returns: list[float] = []
    reward_sum, decisions, tput = 0.0, 0, []
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for _ in range(steps):
            action, h_next = act_q_network(
                net, np.asarray(obs, np.float32), upcoming_decisions(env), greedy, hidden
            )
            obs, reward, term, trunc, info = env.step(action)
            done = np.asarray(term, bool) | np.asarray(trunc, bool)
            dec = decision_mask(info, num_envs)
            if hidden is not None and h_next is not None:
                advance_hidden(hidden, h_next, dec, done)
            reward = np.asarray(reward, np.float64)
            reward_sum += decision_reward(reward, info, dec)
            decisions += int(dec.sum())
            ep_ret += reward
            if done.any():
                returns.extend(ep_ret[done].tolist())
                ep_ret[done] = 0.0
            if (thr := step_throughput(info)) is not None:
                tput.append(thr)
    net.train(was_training)
    env.close()
    return GreedyEvalResult(
        mean_return=float(np.mean(returns)) if returns else math.nan,
        episodes=len(returns),
        reward_per_decision=reward_sum / decisions if decisions else math.nan,
        throughput_mbps=float(np.mean(tput)) if tput else math.nan,
    )
