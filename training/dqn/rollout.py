"""Rollout workers: ε-greedy acting in a vector env, producing replay-ready transitions.

A :class:`RolloutWorker` owns one vector env, a copy (or, in-process, the very object)
of the online Q-network and a transition builder (n-step for feed-forward nets,
sequences for the GRU). Backends (:mod:`training.dqn.backends`) drive one or many
workers behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from linkadapt.seeds import training_env_seed
from training.acting import act_q_network, advance_hidden, epsilon_greedy
from training.dqn.config import DQNConfig
from training.dqn.sequence import SequenceBatch, SequenceBuilder
from training.dqn.transitions import NStepBuilder, TransitionBatch, final_observations
from training.networks import build_qnet, is_recurrent
from training.vector_envs import (
    decision_mask,
    decision_reward,
    env_dims,
    make_vector_env,
    step_throughput,
    upcoming_decisions,
)


@dataclass
class RolloutResult:
    """What a worker produced since its last report.

    Attributes:
        transitions: a ``TransitionBatch`` (feed-forward) or ``SequenceBatch`` (GRU).
        n_decisions: decisions taken (= transitions that will eventually be stored).
        env_steps: vector-env steps taken.
        reward_sum: sum of rewards over decisions (env reward units).
        episode_returns: undiscounted returns of the sub-env episodes that ended.
        throughput_mbps: mean of ``info["throughput_mbps"]`` over steps, NaN if absent.
    """

    transitions: object
    n_decisions: int = 0
    env_steps: int = 0
    reward_sum: float = 0.0
    episode_returns: list[float] = field(default_factory=list)
    throughput_mbps: float = float("nan")


class RolloutWorker:
    """Steps one vector env with an ε-greedy Q-network and builds transitions.

    Args:
        cfg: run configuration (env, num_envs, n_step, gamma, seq_len...).
        worker_index: offsets the env seed so parallel workers see different worlds.
        network: reuse this module (in-process backend); ``None`` builds a private copy.
    """

    def __init__(
        self, cfg: DQNConfig, worker_index: int = 0, network: nn.Module | None = None
    ) -> None:
        self.cfg = cfg
        seed = training_env_seed(cfg.seed, worker_index)
        self.env = make_vector_env(
            cfg.env,
            cfg.num_envs,
            seed,
            privileged=cfg.privileged,
            episode_slots=cfg.episode_slots,
            reward=cfg.reward_config(),
        )
        self.obs_dim, n_actions = env_dims(self.env)
        self.net = network if network is not None else build_qnet(cfg.arch, self.obs_dim, n_actions)
        self.recurrent = is_recurrent(self.net)
        self.rng = np.random.default_rng(seed)
        n = cfg.num_envs
        if self.recurrent:
            self.builder: NStepBuilder | SequenceBuilder = SequenceBuilder(
                n, self.obs_dim, self.net.hidden_size, cfg.seq_len, cfg.burn_in
            )
            self.hidden = self.net.initial_state(n)
        else:
            self.builder = NStepBuilder(n, self.obs_dim, cfg.n_step, cfg.gamma)
        self.obs, _ = self.env.reset(seed=seed)
        self.obs = np.asarray(self.obs, np.float32)
        self.episode_return = np.zeros(n, np.float64)

    def set_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(state_dict)

    def collect(self, n_steps: int, epsilon: float) -> RolloutResult:
        """Take ``n_steps`` vector-env steps with exploration rate ``epsilon``."""
        parts = []
        result = RolloutResult(transitions=None)
        tput: list[float] = []
        for _ in range(n_steps):
            # Rows known not to decide this step get action 0 (ignored by the env) and
            # keep their GRU state.
            action, h_next = act_q_network(
                self.net,
                self.obs,
                upcoming_decisions(self.env),
                lambda q: epsilon_greedy(q, epsilon, self.rng),
                self.hidden if self.recurrent else None,
            )
            next_obs, reward, term, trunc, info = self.env.step(action)
            next_obs = np.asarray(next_obs, np.float32)
            reward = np.asarray(reward, np.float64)
            term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
            done = term | trunc
            decision = decision_mask(info, self.cfg.num_envs)
            final = final_observations(info, next_obs, done)
            if self.recurrent:
                parts.append(
                    self.builder.add(
                        self.obs,
                        action,
                        reward,
                        term,
                        trunc,
                        final,
                        decision,
                        self.hidden,
                        info.get("credit"),
                    )
                )
                advance_hidden(self.hidden, h_next, decision, done)
            else:
                parts.append(
                    self.builder.add(
                        self.obs, action, reward, term, trunc, final, decision, info.get("credit")
                    )
                )
            result.n_decisions += int(decision.sum())
            result.reward_sum += decision_reward(reward, info, decision)
            self.episode_return += reward
            if done.any():
                result.episode_returns.extend(self.episode_return[done].tolist())
                self.episode_return[done] = 0.0
            if (thr := step_throughput(info)) is not None:
                tput.append(thr)
            self.obs = next_obs
            result.env_steps += 1
        if self.recurrent:
            result.transitions = SequenceBatch.concat(parts)
        else:
            result.transitions = TransitionBatch.concat(parts, self.obs_dim)
        if tput:
            result.throughput_mbps = float(np.mean(tput))
        return result

    def close(self) -> None:
        self.env.close()
